// @ts-check
// Output formats: where the credentials go, and the CI's log masking where it has one.
import { ClientError, EXIT, usage } from './errors.mjs';
import { info } from './log.mjs';
import { runCommand } from './providers.mjs';
import { appendPrivate, readIfExists, writePrivateFile } from './files.mjs';

// ---------------------------------------------------------------------------------------------
// Output formats
// ---------------------------------------------------------------------------------------------
const shQuote = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

export function envPairs(c, region) {
  const pairs = [
    ['AWS_ACCESS_KEY_ID', c.AccessKeyId],
    ['AWS_SECRET_ACCESS_KEY', c.SecretAccessKey],
    ['AWS_SESSION_TOKEN', c.SessionToken],
    ['AWS_CREDENTIAL_EXPIRATION', c.Expiration],
  ];
  if (region) pairs.push(['AWS_REGION', region], ['AWS_DEFAULT_REGION', region]);
  return pairs;
}

export const render = {
  env: (c, o) => envPairs(c, o.region).map(([k, v]) => `export ${k}=${shQuote(v)}\n`).join(''),
  dotenv: (c, o) => envPairs(c, o.region).map(([k, v]) => `${k}=${v}\n`).join(''),
  'credential-process': (c) =>
    `${JSON.stringify({ Version: 1, AccessKeyId: c.AccessKeyId, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, Expiration: c.Expiration })}\n`,
  json: (c) => `${JSON.stringify(Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined)), null, 2)}\n`,
};

/** Replaces (or adds) `[name]` in an INI text, keeping every other section and comment as it was. */
export function upsertIniSection(text, name, entries) {
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  const out = [];
  const section = [`[${name}]`, ...entries.map(([k, v]) => `${k} = ${v}`)];
  let inTarget = false;
  let placed = false;
  for (const line of lines) {
    const header = /^\s*\[\s*([^\]]+?)\s*\]\s*$/.exec(line);
    if (header) {
      inTarget = header[1] === name;
      if (inTarget) {
        if (!placed) out.push(...section);
        placed = true;
        continue;
      }
    }
    if (!inTarget) out.push(line);
  }
  if (!placed) {
    if (out.length && out[out.length - 1].trim() !== '') out.push('');
    out.push(...section);
  }
  return `${out.join('\n')}\n`;
}

/** Replaces our variables in a dotenv file (GitLab's dotenv report), keeping the others. */
function upsertDotenv(text, content) {
  const ours = new Set(content.split('\n').filter(Boolean).map((l) => l.slice(0, l.indexOf('='))));
  const kept = text
    .split('\n')
    .filter((l) => l !== '' && !ours.has(l.slice(0, l.indexOf('='))));
  return `${kept.map((l) => `${l}\n`).join('')}${content}`;
}

export function expiresNote(c) {
  return `credentials${c.AssumedRoleArn ? ` for ${c.AssumedRoleArn}` : ''} expire at ${c.Expiration}`;
}

/**
 * Registers the secrets with the CI's log masking, where it has one: Buildkite's redactor (values
 * on stdin) for every format; GitHub's ::add-mask:: and Azure's ##vso[task.setsecret] on stdout,
 * but only when stdout is not the output itself (profile, bash-env, --output).
 */
export async function maskCommands(opts, env, c) {
  if (opts.noMask) return '';
  const secrets = [c.AccessKeyId, c.SecretAccessKey, c.SessionToken];
  if (env.BUILDKITE === 'true') {
    for (const secret of secrets) {
      let r;
      try {
        r = await runCommand('buildkite-agent', ['redactor', 'add'], opts.timeoutMs, `${secret}\n`);
      } catch (e) {
        r = { code: e && e.code ? e.code : 'error' };
      }
      if (r.code !== 0) {
        if (!opts.quiet) info(`warning: "buildkite-agent redactor add" failed (${r.code ?? r.signal}): the credentials are not redacted from the log`);
        break;
      }
    }
  }
  const stdoutFree = opts.format === 'profile' || opts.format === 'bash-env' || (opts.output && opts.format !== 'github-env');
  if (!stdoutFree) return '';
  if (env.GITHUB_ACTIONS === 'true') return secrets.map((v) => `::add-mask::${v}\n`).join('');
  if ((env.TF_BUILD || '').toLowerCase() === 'true') return secrets.map((v) => `##vso[task.setsecret]${v}\n`).join('');
  return '';
}

export async function emit(opts, env, c) {
  switch (opts.format) {
    case 'env':
    case 'json':
      if (opts.output) {
        writePrivateFile(opts.output, render[opts.format](c, opts));
        if (!opts.quiet) info(`wrote ${opts.output}: ${expiresNote(c)}`);
        return '';
      }
      return render[opts.format](c, opts);
    case 'dotenv':
      if (opts.output) {
        writePrivateFile(opts.output, upsertDotenv(readIfExists(opts.output), render.dotenv(c, opts)));
        if (!opts.quiet) info(`wrote ${opts.output}: ${expiresNote(c)}`);
        return '';
      }
      return render.dotenv(c, opts);
    case 'github-env': {
      const file = opts.output ?? env.GITHUB_ENV;
      if (!file) throw usage('--format github-env needs $GITHUB_ENV (or --output)');
      appendPrivate(file, envPairs(c, opts.region).map(([k, v]) => `${k}=${v}\n`).join(''));
      if (!opts.quiet) info(`added AWS credentials to ${opts.output ? file : '$GITHUB_ENV'}: ${expiresNote(c)}`);
      // Workflow commands go to stdout, where the runner reads them.
      return [c.AccessKeyId, c.SecretAccessKey, c.SessionToken].map((v) => `::add-mask::${v}\n`).join('');
    }
    case 'bash-env': {
      const file = opts.output ?? env.BASH_ENV;
      if (!file) throw usage('--format bash-env needs $BASH_ENV (or --output)');
      appendPrivate(file, render.env(c, opts));
      if (!opts.quiet) info(`added AWS credentials to ${opts.output ? file : '$BASH_ENV'}: ${expiresNote(c)}`);
      return '';
    }
    case 'profile': {
      const entries = [
        ['aws_access_key_id', c.AccessKeyId],
        ['aws_secret_access_key', c.SecretAccessKey],
        ['aws_session_token', c.SessionToken],
      ];
      if (opts.region) entries.push(['region', opts.region]);
      writePrivateFile(opts.credentialsFile, upsertIniSection(readIfExists(opts.credentialsFile), opts.profile, entries));
      if (!opts.quiet) info(`wrote profile ${opts.profile} to ${opts.credentialsFile}: ${expiresNote(c)}`);
      return '';
    }
    default:
      throw new ClientError(EXIT.INTERNAL, `unhandled format ${opts.format}`);
  }
}
