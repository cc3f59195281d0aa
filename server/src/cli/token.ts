// `credbroker token decode [TOKEN | -]`: header and claims of a JWT, NOT verified — to help write
// policies. The signature is never printed; a still-valid token is flagged as a secret.
import { readFileSync } from 'node:fs';
import { decodeJwt, decodeProtectedHeader } from 'jose';

export async function main(argv: string[]): Promise<number> {
  const [sub, arg] = argv;
  if (sub !== 'decode') {
    process.stderr.write('usage: credbroker token decode [TOKEN | -]   (reads stdin when TOKEN is - or absent)\n');
    return 2;
  }
  const token = (arg === undefined || arg === '-' ? readFileSync(0, 'utf8') : arg).trim();
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
