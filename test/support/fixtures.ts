// Loads the provider claim sets from ../shared/fixtures/ci-tokens (realistic payloads from the
// providers' public docs). Tests re-sign them with a local issuer; time claims are replaced.
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

// A copy lives in test/fixtures/ci-tokens so the suite does not depend on the sibling folder.
const candidates = [
  fileURLToPath(new URL('../fixtures/ci-tokens', import.meta.url)),
  fileURLToPath(new URL('../../../shared/fixtures/ci-tokens', import.meta.url)),
];
const dir = candidates.find((d) => existsSync(path.join(d, 'github-actions.json')));

export type ProviderFixture =
  | 'github-actions'
  | 'gitlab'
  | 'circleci'
  | 'buildkite'
  | 'bitbucket'
  | 'jenkins'
  | 'azure-devops'
  | 'terraform-cloud';

/** The fixture's claims without iss/aud/iat/nbf/exp (the test issuer sets those). */
export function providerClaims(name: ProviderFixture): Record<string, unknown> {
  if (!dir) throw new Error('ci-tokens fixtures not found (test/fixtures/ci-tokens)');
  const raw = JSON.parse(readFileSync(path.join(dir, `${name}.json`), 'utf8')) as Record<string, unknown>;
  const { iss: _iss, aud: _aud, iat: _iat, nbf: _nbf, exp: _exp, jti: _jti, ...rest } = raw;
  return rest;
}
