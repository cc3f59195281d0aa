// An issuer URL is checked before any network call: https only (http only with an explicit
// allow-insecure setting, for local testing), no userinfo, query or fragment.

export function issuerUrlProblem(raw: string, allowInsecureHttp: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'not a valid URL';
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && allowInsecureHttp)) {
    return url.protocol === 'http:' ? 'must use https (allow_insecure_http is for local testing only)' : 'must use https';
  }
  if (url.username !== '' || url.password !== '') return 'must not contain userinfo';
  if (url.search !== '' || raw.includes('?')) return 'must not contain a query';
  if (url.hash !== '' || raw.includes('#')) return 'must not contain a fragment';
  if (url.hostname === '') return 'must have a host';
  return undefined;
}

/** Same rule for URLs the issuer hands us (jwks_uri), against the same insecure setting. */
export const fetchedUrlProblem = issuerUrlProblem;
