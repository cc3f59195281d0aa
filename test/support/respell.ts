// Other spellings of one signed JWT that a lenient verifier accepts: they are what an attacker
// would try against a one-time-token ledger keyed on the raw token text.
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
/** Order of the P-256 group (SEC 2). */
const P256_N = BigInt('0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551');

const parts = (token: string) => token.split('.') as [string, string, string];

/** `=` padding appended to the signature segment. */
export function withPadding(token: string): string {
  const [h, p, s] = parts(token);
  return `${h}.${p}.${s}${'='.repeat((4 - (s.length % 4)) % 4 || 2)}`;
}

/** The last signature character with an unused low bit set: decodes to the same bytes. */
export function withSpareBits(token: string): string {
  const [h, p, s] = parts(token);
  const spare = (s.length * 6) % 8;
  if (spare === 0) throw new Error('this signature length has no spare bits');
  const last = ALPHABET.indexOf(s.at(-1)!);
  return `${h}.${p}.${s.slice(0, -1)}${ALPHABET[last | 1]}`;
}

/** For ES256: the other valid signature of the same content, (r, n − s). */
export function ecdsaTwin(token: string): string {
  const [h, p, s] = parts(token);
  const sig = Buffer.from(s, 'base64url');
  if (sig.length !== 64) throw new Error('not an ES256 signature');
  const r = sig.subarray(0, 32);
  const sValue = BigInt(`0x${sig.subarray(32).toString('hex')}`);
  const twin = Buffer.from((P256_N - sValue).toString(16).padStart(64, '0'), 'hex');
  return `${h}.${p}.${Buffer.concat([r, twin]).toString('base64url')}`;
}
