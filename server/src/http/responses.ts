// Credential response bodies in the three formats the API offers.
import type { ExchangeResult } from '../exchange.js';

export const FORMATS = ['json', 'credential-process', 'env'] as const;
export type Format = (typeof FORMATS)[number];

/** Single-quote a value for POSIX sh (`'` becomes `'\''`). */
export const shellQuote = (v: string): string => `'${v.replace(/'/g, `'\\''`)}'`;

export function renderCredentials(result: ExchangeResult, format: Format, requestId: string): { contentType: string; body: string } {
  const c = result.credentials;
  const expiration = c.expiration.toISOString();
  switch (format) {
    case 'credential-process':
      return {
        contentType: 'application/json',
        body: JSON.stringify({ Version: 1, AccessKeyId: c.accessKeyId, SecretAccessKey: c.secretAccessKey, SessionToken: c.sessionToken, Expiration: expiration }),
      };
    case 'env':
      return {
        contentType: 'text/plain; charset=utf-8',
        body:
          [
            ['AWS_ACCESS_KEY_ID', c.accessKeyId],
            ['AWS_SECRET_ACCESS_KEY', c.secretAccessKey],
            ['AWS_SESSION_TOKEN', c.sessionToken],
            ['AWS_CREDENTIAL_EXPIRATION', expiration],
          ]
            .map(([k, v]) => `export ${k}=${shellQuote(v!)}`)
            .join('\n') + '\n',
      };
    case 'json':
      return {
        contentType: 'application/json',
        body: JSON.stringify({
          AccessKeyId: c.accessKeyId,
          SecretAccessKey: c.secretAccessKey,
          SessionToken: c.sessionToken,
          Expiration: expiration,
          RoleArn: result.roleArn,
          AssumedRoleArn: c.assumedRoleArn,
          RoleSessionName: result.sessionName,
          SourceIdentity: result.sourceIdentity,
          DurationSeconds: result.durationSeconds,
          RequestId: requestId,
        }),
      };
  }
}
