// @ts-check
// The command: options, then the exchange and the chosen output (or the credential-process cache).
import { ClientError, EXIT, PROG, VERSION } from './errors.mjs';
import { clean, formatError, setVerbose } from './log.mjs';
import { HELP, parseOptions } from './options.mjs';
import { tokenSource } from './providers.mjs';
import { exchange } from './exchange.mjs';
import { trustCaFor, useProxyEnvironment } from './transport.mjs';
import { emit, maskCommands } from './output.mjs';
import { cacheStatus, credentialProcess } from './cache.mjs';

function writeStdout(text) {
  return new Promise((resolve, reject) => {
    if (!text) return resolve(undefined);
    process.stdout.write(text, (e) => (e ? reject(e) : resolve(undefined)));
  });
}

/** Runs the client; resolves with the exit code. */
export async function main(argv = process.argv.slice(2), env = process.env) {
  try {
    const opts = parseOptions(argv, env);
    if (opts.help) {
      await writeStdout(HELP);
      return EXIT.OK;
    }
    if (opts.version) {
      await writeStdout(`${VERSION}\n`);
      return EXIT.OK;
    }
    setVerbose(opts.verbose);
    if (opts.ca) trustCaFor(new URL(opts.url).origin, opts.ca);
    useProxyEnvironment(env);
    let out;
    if (opts.status) {
      out = await cacheStatus(opts, env);
    } else if (opts.format === 'credential-process') {
      out = await credentialProcess(opts, env);
    } else {
      const c = await exchange(opts, tokenSource(opts, env));
      out = (await maskCommands(opts, env, c)) + (await emit(opts, env, c));
    }
    await writeStdout(out);
    return EXIT.OK;
  } catch (e) {
    if (e instanceof ClientError) {
      process.stderr.write(`${formatError(e)}\n`);
      return e.exitCode;
    }
    // Unexpected: the class and a cleaned message only (a stack could carry request details).
    process.stderr.write(`${PROG}: internal error: ${clean(e instanceof Error ? `${e.name}: ${e.message}` : 'unknown', 300)}\n`);
    return EXIT.INTERNAL;
  }
}
