// DurationSeconds = min(requested, role max, binding max, broker max), capped at 1 h for role
// chaining, never below AWS's 900 s minimum, and the role default (or the cap) when not requested.
import { describe, expect, it } from 'vitest';
import { clampDuration, evaluate } from '../../server/src/core/policy.js';
import { parseConfig } from '../../server/src/config/load.js';

type Case = [name: string, requested: number | undefined, roleMax: number, roleDefault: number | undefined, bindingMax: number | undefined, brokerMax: number, chaining: boolean, expected: number];

describe('clampDuration', () => {
  const cases: Case[] = [
    ['grants the requested duration under every cap', 1800, 3600, undefined, undefined, 3600, false, 1800],
    ['caps at the role maximum', 7200, 3600, undefined, undefined, 43200, false, 3600],
    ['caps at the binding maximum', 7200, 43200, undefined, 1200, 43200, false, 1200],
    ['caps at the broker maximum', 7200, 43200, undefined, undefined, 2000, false, 2000],
    ['takes the smallest of role, binding and broker caps', 43200, 20000, undefined, 10000, 15000, false, 10000],
    ['caps role chaining at 3600', 43200, 43200, undefined, undefined, 43200, true, 3600],
    ['keeps a smaller cap under role chaining', 43200, 1800, undefined, undefined, 43200, true, 1800],
    ['grants a request under the chaining cap', 2000, 43200, undefined, undefined, 43200, true, 2000],
    ['never goes below 900', 60, 3600, undefined, undefined, 3600, false, 900],
    ['never goes below 900 for a zero request', 0, 3600, undefined, undefined, 3600, false, 900],
    ['uses the role default when nothing is requested', undefined, 3600, 1200, undefined, 3600, false, 1200],
    ['caps the role default at the binding maximum', undefined, 43200, 7200, 1000, 43200, false, 1000],
    ['caps the role default under role chaining', undefined, 43200, 7200, undefined, 43200, true, 3600],
    ['uses the cap when nothing is requested and there is no default', undefined, 7200, undefined, undefined, 43200, false, 7200],
    ['uses the chaining cap when nothing is requested', undefined, 43200, undefined, undefined, 43200, true, 3600],
    ['grants exactly 900', 900, 3600, undefined, undefined, 3600, false, 900],
    ['grants exactly the cap', 3600, 3600, undefined, undefined, 3600, false, 3600],
  ];
  it.each(cases)('%s', (_name, requested, maxDuration, defaultDuration, bindingMax, brokerMax, chaining, expected) => {
    expect(clampDuration(requested, { maxDuration, defaultDuration }, bindingMax, brokerMax, chaining)).toBe(expected);
  });
});

describe('duration in an allow decision', () => {
  const { config } = parseConfig(
    JSON.stringify({
      server: { max_session_duration_seconds: 7200 },
      issuers: { p: { url: 'https://p.example.com', audiences: ['https://credbroker.example.com'] } },
      roles: {
        deploy: {
          arn: 'arn:aws:iam::111122223333:role/deploy',
          max_duration_seconds: 43200,
          default_duration_seconds: 1800,
          allow: [
            { issuer: 'p', claims: { project: 'limited' }, max_duration_seconds: 1000 },
            { issuer: 'p', claims: { project: 'free' } },
          ],
        },
      },
    }),
  );
  const at = (project: string, requested: number | undefined, roleChaining: boolean) => {
    const d = evaluate(config.policy, {
      issuer: 'p', claims: { project }, role: 'deploy', requestedDuration: requested, tokenHash: 'f'.repeat(64), roleChaining, now: new Date(0),
    });
    return d.effect === 'allow' ? d.durationSeconds : d.reason;
  };
  const cases: Array<[name: string, project: string, requested: number | undefined, chaining: boolean, expected: number]> = [
    ['applies the binding maximum', 'limited', 43200, false, 1000],
    ['applies the broker maximum from server.max_session_duration_seconds', 'free', 43200, false, 7200],
    ['applies the role chaining cap', 'free', 43200, true, 3600],
    ['applies the role default when nothing is requested', 'free', undefined, false, 1800],
  ];
  it.each(cases)('%s', (_name, project, requested, chaining, expected) => {
    expect(at(project, requested, chaining)).toBe(expected);
  });
});
