// The store section at config load: rotation refuses the in-memory store (a crash would forget
// which key was in flight), PostgreSQL needs its URL.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../server/src/config/load.js';

const base = {
  issuers: { gh: { url: 'https://token.actions.githubusercontent.com', audiences: ['https://credbroker.test'] } },
  roles: { deploy: { arn: 'arn:aws:iam::123456789012:role/deploy', allow: [{ issuer: 'gh', claims: { repository_id: '1' } }] } },
};
const rotation = { users: [{ name: 'ci-user', sinks: [{ type: 'command', name: 'f', command: ['/bin/true'] }] }] };
const problemsOf = (input: object): string[] => {
  try {
    parseConfig(JSON.stringify(input), 'test');
    return [];
  } catch (err) {
    return ((err as { problems?: Array<{ path: string }> }).problems ?? []).map((p) => p.path);
  }
};

describe('store config', () => {
  it('refuses rotation on the memory store, at store.driver', () => {
    expect(problemsOf({ ...base, rotation })).toContain('store.driver');
    expect(problemsOf({ ...base, rotation, store: { driver: 'memory' } })).toContain('store.driver');
  });

  it('accepts rotation on SQLite or PostgreSQL, and disabled rotation on memory', () => {
    expect(problemsOf({ ...base, rotation, store: { driver: 'sqlite' } })).toEqual([]);
    expect(problemsOf({ ...base, rotation, store: { driver: 'postgres', postgres_url: 'postgres://h/db' } })).toEqual([]);
    expect(problemsOf({ ...base, rotation: { ...rotation, enabled: false } })).toEqual([]);
  });

  it('needs postgres_url with the postgres driver', () => {
    expect(problemsOf({ ...base, store: { driver: 'postgres' } })).toContain('store.postgres_url');
  });
});
