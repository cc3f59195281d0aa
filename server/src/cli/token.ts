// `credbroker token decode [--file PATH | -]`: header and claims of a JWT, NOT verified — to help
// write policies. The token is read from a file or stdin: on the command line it would sit in the
// shell history and the process list. The signature is never printed; a live token is flagged.
import { readFileSync } from 'node:fs';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { parseCommand, UsageError } from './args.js';

export async function main(argv: string[]): Promise<number> {
  const args = parseCommand('token decode', argv.slice(1));
  const arg = args.positionals[0];
  const file = args.string('file');
  if (arg !== undefined && file !== undefined) throw new UsageError('give --file PATH or the token, not both', 'token decode');
  let token: string;
  try {
    if (file !== undefined) token = readFileSync(file, 'utf8');
    else if (arg === undefined || arg === '-') token = readFileSync(0, 'utf8');
    else {
      process.stderr.write('warning: a token on the command line stays in the shell history and the process list; use --file or stdin\n');
      token = arg;
    }
  } catch (err) {
    process.stderr.write(`credbroker: cannot read the token: ${(err as NodeJS.ErrnoException).code ?? String(err)} (${file ?? 'stdin'})\n`);
    return 2;
  }
  token = token.trim();
  let header: unknown;
  let claims: Record<string, unknown>;
  try {
    header = decodeProtectedHeader(token);
    claims = decodeJwt(token) as Record<string, unknown>;
  } catch (err) {
    process.stderr.write(`credbroker: not a JWT: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  process.stdout.write(`${JSON.stringify({ header, claims }, null, 2)}\n`);
  process.stderr.write('note: decoded only, NOT verified.\n');
  const exp = typeof claims.exp === 'number' ? claims.exp : undefined;
  if (exp !== undefined && exp * 1000 > Date.now()) {
    process.stderr.write(`note: this token is valid for ${Math.round(exp - Date.now() / 1000)} more seconds: treat it as a secret.\n`);
  }
  return 0;
}
