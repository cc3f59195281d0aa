// @ts-check

/** @param {string} text */
export const parseJson = (text) => {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
};

/** @type {typeof import('node:crypto').createHash | undefined} */
let createHash;
/** Loads node:crypto (for sha256) where hashing is needed, not at every start. */
export async function loadCrypto() {
  ({ createHash } = await import('node:crypto'));
}
/** @param {string} text */
export const sha256 = (text) => {
  if (!createHash) throw new Error('loadCrypto() first');
  return createHash('sha256').update(text).digest('hex');
};
