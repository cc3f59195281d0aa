// @ts-check
// The GitHub Action (action.yml at the repository root): the client's own modules, run by the
// runner on node24 with the inputs as INPUT_* variables. It gets the job's OIDC token from
// $ACTIONS_ID_TOKEN_REQUEST_URL, exchanges it at the broker, masks the values, and hands them to
// the following steps:
//   output: env      AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (+ region) in $GITHUB_ENV
//   output: profile  a 0600 credentials file in $RUNNER_TEMP; $GITHUB_ENV gets only
//                    AWS_SHARED_CREDENTIALS_FILE and AWS_PROFILE (no value ever in the environment)
// and sets the step outputs aws-account-id, role-arn and expiration.
import path from 'node:path';
import { ClientError, EXIT, usage } from '../../client/src/errors.mjs';
import { clean, describeError, setVerbose } from '../../client/src/log.mjs';
import { parseOptions } from '../../client/src/options.mjs';
import { tokenSource } from '../../client/src/providers.mjs';
import { exchange } from '../../client/src/exchange.mjs';
import { envPairs, upsertIniSection } from '../../client/src/output.mjs';
import { appendPrivate, readIfExists, writePrivateFile } from '../../client/src/files.mjs';

/** An input as the runner passes it: INPUT_<NAME>, upper case, trimmed; undefined when empty. */
const input = (env, name) => {
  const v = (env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] ?? '').trim();
  return v === '' ? undefined : v;
};

/** A workflow command's data, escaped as the runner expects (no injection through a message). */
const escapeData = (s) => String(s).replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');

/** NAME=value lines for $GITHUB_ENV / $GITHUB_OUTPUT; a value with a line break is refused. */
function keyValues(pairs) {
  for (const [k, v] of pairs) {
    if (/[\r\n]/.test(String(v))) throw new ClientError(EXIT.OUTPUT, `refusing to write ${k}: the value has a line break`);
  }
  return pairs.map(([k, v]) => `${k}=${v}\n`).join('');
}

const accountOf = (arn) => /^arn:aws[a-z-]*:(?:iam|sts)::(\d{12}):/.exec(arn ?? '')?.[1];

/**
 * Runs the action; resolves with the exit code (0 ok, else the client's exit codes).
 * @param {NodeJS.ProcessEnv} env
 * @param {(text: string) => void} out what the runner reads: stdout
 */
export async function run(env = process.env, out = (t) => process.stdout.write(t)) {
  try {
    const output = input(env, 'output') ?? 'env';
    if (output !== 'env' && output !== 'profile') throw usage('input "output" must be env or profile');
    const argv = ['--provider', 'github', '--format', 'json'];
    for (const name of ['url', 'role', 'duration', 'audience', 'region', 'profile']) {
      const v = input(env, name);
      if (v !== undefined) argv.push(`--${name}`, v);
    }
    if (!input(env, 'url')) throw usage('input "url" is required');
    if (!input(env, 'role')) throw usage('input "role" is required');
    // Only the inputs count: CREDBROKER_* variables of the job do not steer the action.
    const opts = parseOptions(argv, {});
    setVerbose(env.RUNNER_DEBUG === '1');
    for (const name of ['GITHUB_ENV', 'GITHUB_OUTPUT']) if (!env[name]) throw usage(`$${name} is not set: run this as a step of a GitHub Actions job`);
    if (output === 'profile' && !env.RUNNER_TEMP) throw usage('$RUNNER_TEMP is not set: run this as a step of a GitHub Actions job');

    const c = await exchange(opts, tokenSource(opts, env));
    // Masks first, before any value is anywhere the log could show it.
    out([c.AccessKeyId, c.SecretAccessKey, c.SessionToken].map((v) => `::add-mask::${v}\n`).join(''));

    if (output === 'env') {
      appendPrivate(env.GITHUB_ENV, keyValues(envPairs(c, opts.region)));
    } else {
      const file = path.join(env.RUNNER_TEMP, 'credbroker', 'aws-credentials');
      const entries = [
        ['aws_access_key_id', c.AccessKeyId],
        ['aws_secret_access_key', c.SecretAccessKey],
        ['aws_session_token', c.SessionToken],
      ];
      if (opts.region) entries.push(['region', opts.region]);
      writePrivateFile(file, upsertIniSection(readIfExists(file), opts.profile, entries));
      const vars = [
        ['AWS_SHARED_CREDENTIALS_FILE', file],
        ['AWS_PROFILE', opts.profile],
      ];
      if (opts.region) vars.push(['AWS_REGION', opts.region], ['AWS_DEFAULT_REGION', opts.region]);
      appendPrivate(env.GITHUB_ENV, keyValues(vars));
    }
    const outputs = [
      ['aws-account-id', accountOf(c.RoleArn) ?? accountOf(c.AssumedRoleArn) ?? ''],
      ['role-arn', c.RoleArn ?? ''],
      ['expiration', c.Expiration],
    ];
    appendPrivate(env.GITHUB_OUTPUT, keyValues(outputs));
    out(`credbroker: credentials${c.AssumedRoleArn ? ` for ${clean(c.AssumedRoleArn, 300)}` : ''} expire at ${c.Expiration} (${output === 'env' ? 'in the environment of the next steps' : `profile ${opts.profile}`})\n`);
    return EXIT.OK;
  } catch (e) {
    // usage() points at --help, which an action has not: the inputs are in action.yml.
    const message = e instanceof ClientError ? describeError(e).replace(' (see --help)', '') : `internal error: ${clean(e instanceof Error ? `${e.name}: ${e.message}` : 'unknown', 300)}`;
    out(`::error title=credbroker::${escapeData(message)}\n`);
    return e instanceof ClientError ? e.exitCode : EXIT.INTERNAL;
  }
}

run().then((code) => {
  process.exitCode = code;
});
