// Config validation: every problem is reported at once with its path, and nothing partial loads.
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../server/src/config/load.js';
import { configJsonSchema } from '../../server/src/config/schema.js';
import type { Problem } from '../../server/src/core/problems.js';

const AUD = ['https://credbroker.example.com'];
const ARN = 'arn:aws:iam::111122223333:role/deploy';

/** A valid config; `edit` changes it in place before it is serialized. */
function configWith(edit: (c: Record<string, any>) => void): string {
  const c: Record<string, any> = {
    issuers: { gh: { preset: 'github-actions', audiences: AUD } },
    roles: { deploy: { arn: ARN, allow: [{ issuer: 'gh', claims: { repository_owner_id: '9919', repository_id: '487920697' } }] } },
  };
  edit(c);
  return JSON.stringify(c);
}

function problemsOf(text: string): Problem[] {
  try {
    parseConfig(text, 'test.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('a valid config', () => {
  it('loads, frozen, with no warnings', () => {
    const { config, warnings } = parseConfig(configWith(() => {}));
    expect(Object.isFrozen(config)).toBe(true);
    expect(warnings).toEqual([]);
    expect(config.issuers.get('gh')?.algorithms).toEqual(['RS256', 'ES256']);
  });
});

describe('every problem at once', () => {
  it('reports a missing audience, a bad ARN and an unknown issuer together, each with its path', () => {
    const problems = problemsOf(
      configWith((c) => {
        delete c.issuers.gh.audiences;
        c.roles.deploy.arn = 'arn:aws:iam::123:role/deploy';
        c.roles.deploy.allow[0].issuer = 'nope';
      }),
    );
    expect(problems.map((p) => p.path).sort()).toEqual(['issuers.gh.audiences', 'roles.deploy.allow[0].issuer', 'roles.deploy.arn']);
  });

  it('reports problems of a role, an issuer and a global deny rule together', () => {
    const problems = problemsOf(
      configWith((c) => {
        c.issuers.gh.algorithms = ['HS256'];
        c.roles.deploy.arn = 'nope';
        c.deny = [{ issuer: 'ghost', claims: { a: 'b' } }];
      }),
    );
    expect(problems.map((p) => p.path).sort()).toEqual(['deny[0].issuer', 'issuers.gh.algorithms[0]', 'roles.deploy.arn']);
  });

  it('does not report references to an issuer that has its own schema problem as unknown', () => {
    const problems = problemsOf(configWith((c) => { delete c.issuers.gh.audiences; }));
    expect(problems.map((p) => p.path)).toEqual(['issuers.gh.audiences']);
  });

  it('reports a schema problem and a cross-field problem of the same role together', () => {
    const problems = problemsOf(
      configWith((c) => {
        c.roles.deploy.max_duration_seconds = 10;
        c.roles.deploy.arn = 'arn:aws:iam::123:role/deploy';
        c.roles.deploy.allow[0].issuer = 'nope';
      }),
    );
    expect(problems.map((p) => p.path).sort()).toEqual(['roles.deploy.allow[0].issuer', 'roles.deploy.arn', 'roles.deploy.max_duration_seconds']);
  });

  it('reports several cross-field problems together, each with its path', () => {
    const problems = problemsOf(
      configWith((c) => {
        c.roles.deploy.arn = 'arn:aws:iam::123:role/deploy';
        c.roles.deploy.allow[0].issuer = 'nope';
        c.issuers.cci = { preset: 'circleci', audiences: AUD };
        c.roles.deploy.tags = { Env: '{a}', env: '{b}' };
      }),
    );
    expect(problems.map((p) => p.path).sort()).toEqual([
      'issuers.cci.url',
      'roles.deploy.allow[0].issuer',
      'roles.deploy.arn',
      'roles.deploy.tags.env',
    ]);
  });

  it('reports several schema problems together, each with its path', () => {
    const problems = problemsOf(
      configWith((c) => {
        delete c.issuers.gh.audiences;
        c.issuers.gh.algorithms = ['none'];
        c.roles.deploy.max_duration_seconds = 10;
      }),
    );
    expect(problems.map((p) => p.path).sort()).toEqual(['issuers.gh.algorithms[0]', 'issuers.gh.audiences', 'roles.deploy.max_duration_seconds']);
  });

  it('lists every problem in the error message', () => {
    try {
      parseConfig(configWith((c) => { c.roles.deploy.arn = 'x'; c.roles.deploy.allow[0].issuer = 'nope'; }), 'prod.yaml');
      expect.unreachable('parseConfig should throw');
    } catch (e) {
      expect((e as Error).message).toContain('invalid configuration (prod.yaml)');
      expect((e as Error).message).toContain('roles.deploy.arn: ');
      expect((e as Error).message).toContain('roles.deploy.allow[0].issuer: unknown issuer "nope"');
    }
  });
});

describe('single problems', () => {
  const cases: Array<[name: string, edit: (c: Record<string, any>) => void, path: string, message: RegExp]> = [
    ['rejects an unknown issuer reference', (c) => { c.roles.deploy.allow[0].issuer = 'gitlab'; }, 'roles.deploy.allow[0].issuer', /unknown issuer "gitlab" \(known: gh\)/],
    ['rejects an unknown issuer in a deny rule', (c) => { c.deny = [{ issuer: 'x', claims: { a: 'b' } }]; }, 'deny[0].issuer', /unknown issuer "x"/],
    ['rejects alg none', (c) => { c.issuers.gh.algorithms = ['RS256', 'none']; }, 'issuers.gh.algorithms[1]', /./],
    ['rejects HS256', (c) => { c.issuers.gh.algorithms = ['HS256']; }, 'issuers.gh.algorithms[0]', /./],
    ['rejects an empty algorithm list', (c) => { c.issuers.gh.algorithms = []; }, 'issuers.gh.algorithms', /./],
    ['rejects an empty audience list', (c) => { c.issuers.gh.audiences = []; }, 'issuers.gh.audiences', /./],
    ['rejects tag keys that collide case-insensitively', (c) => { c.roles.deploy.tags = { Env: '{a}', ENV: '{b}' }; }, 'roles.deploy.tags.ENV', /collides with "Env"/],
    ['rejects an aws: tag key', (c) => { c.roles.deploy.tags = { 'aws:env': '{a}' }; }, 'roles.deploy.tags.aws:env', /may not start with "aws:"/],
    ['rejects an AWS: tag key in capitals', (c) => { c.roles.deploy.tags = { 'AWS:env': '{a}' }; }, 'roles.deploy.tags.AWS:env', /may not start with "aws:"/],
    ['rejects a tag key of 129 characters', (c) => { c.roles.deploy.tags = { ['k'.repeat(129)]: '{a}' }; }, `roles.deploy.tags.${'k'.repeat(129)}`, /1–128/],
    ['rejects more than 50 tags', (c) => { c.roles.deploy.tags = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`t${i}`, '{a}'])); }, 'roles.deploy.tags', /51 tags; AWS allows 50/],
    ['rejects a transitive tag key that is not a tag', (c) => { c.roles.deploy.tags = { a: '{a}' }; c.roles.deploy.transitive_tag_keys = ['b']; }, 'roles.deploy.transitive_tag_keys[0]', /"b" is not a session tag/],
    ['rejects an http issuer URL', (c) => { c.issuers.gh = { url: 'http://issuer.example.com', audiences: AUD }; }, 'issuers.gh.url', /must use https/],
    ['rejects another scheme', (c) => { c.issuers.gh = { url: 'ftp://issuer.example.com', audiences: AUD }; }, 'issuers.gh.url', /must use https/],
    ['rejects an issuer URL with userinfo', (c) => { c.issuers.gh = { url: 'https://user:pw@issuer.example.com', audiences: AUD }; }, 'issuers.gh.url', /userinfo/],
    ['rejects an issuer URL with a user only', (c) => { c.issuers.gh = { url: 'https://user@issuer.example.com', audiences: AUD }; }, 'issuers.gh.url', /userinfo/],
    ['rejects an issuer URL with a query', (c) => { c.issuers.gh = { url: 'https://issuer.example.com/?a=1', audiences: AUD }; }, 'issuers.gh.url', /query/],
    ['rejects an issuer URL with an empty query', (c) => { c.issuers.gh = { url: 'https://issuer.example.com/?', audiences: AUD }; }, 'issuers.gh.url', /query/],
    ['rejects an issuer URL with a fragment', (c) => { c.issuers.gh = { url: 'https://issuer.example.com/#x', audiences: AUD }; }, 'issuers.gh.url', /fragment/],
    ['rejects an issuer URL with an empty fragment', (c) => { c.issuers.gh = { url: 'https://issuer.example.com/#', audiences: AUD }; }, 'issuers.gh.url', /fragment/],
    ['rejects a value that is not a URL', (c) => { c.issuers.gh = { url: 'issuer.example.com', audiences: AUD }; }, 'issuers.gh.url', /not a valid URL/],
    ['requires a URL without a preset', (c) => { c.issuers.gh = { audiences: AUD }; }, 'issuers.gh.url', /required when no preset/],
    ['requires org_id for circleci', (c) => { c.issuers.gh = { preset: 'circleci', audiences: AUD }; }, 'issuers.gh.url', /circleci preset needs org_id/],
    ['requires workspace for bitbucket', (c) => { c.issuers.gh = { preset: 'bitbucket', audiences: AUD }; }, 'issuers.gh.url', /bitbucket preset needs workspace/],
    ['requires org_id for azure-devops', (c) => { c.issuers.gh = { preset: 'azure-devops', audiences: AUD }; }, 'issuers.gh.url', /azure-devops preset needs org_id/],
    ['requires a url for jenkins', (c) => { c.issuers.gh = { preset: 'jenkins', audiences: AUD }; }, 'issuers.gh.url', /jenkins preset needs url/],
    ['rejects a GHES host that smuggles userinfo', (c) => { c.issuers.gh.host = 'user@ghe.example.com'; }, 'issuers.gh.url', /userinfo/],
    ['rejects a duplicate issuer URL', (c) => { c.issuers.dup = { url: 'https://token.actions.githubusercontent.com', audiences: AUD }; }, 'issuers.dup.url', /same issuer URL as issuers.gh/],
    ['rejects a binding with no claims', (c) => { c.roles.deploy.allow[0].claims = {}; }, 'roles.deploy.allow[0].claims', /at least one claim condition/],
    ['rejects a binding without a claims key', (c) => { delete c.roles.deploy.allow[0].claims; }, 'roles.deploy.allow[0].claims', /./],
    ['rejects a deny rule with no claims', (c) => { c.deny = [{ claims: {} }]; }, 'deny[0].claims', /at least one claim condition/],
    ['rejects a role without bindings', (c) => { c.roles.deploy.allow = []; }, 'roles.deploy.allow', /./],
    ['rejects a session policy over 2048 characters', (c) => { c.roles.deploy.allow[0].session_policy = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: 'x'.repeat(2100) }] }; }, 'roles.deploy.allow[0].session_policy', /AWS allows 2048/],
    ['rejects a session policy that is not JSON', (c) => { c.roles.deploy.allow[0].session_policy = '{"Version": '; }, 'roles.deploy.allow[0].session_policy', /not valid JSON/],
    ['rejects an invalid role ARN', (c) => { c.roles.deploy.arn = 'arn:aws:iam::111122223333:user/deploy'; }, 'roles.deploy.arn', /arn:aws:iam::<12-digit account>/],
    ['rejects a default duration above the maximum', (c) => { c.roles.deploy.max_duration_seconds = 1800; c.roles.deploy.default_duration_seconds = 3600; }, 'roles.deploy.default_duration_seconds', /exceeds max_duration_seconds/],
    ['rejects a duration under 900', (c) => { c.roles.deploy.allow[0].max_duration_seconds = 600; }, 'roles.deploy.allow[0].max_duration_seconds', /./],
    ['rejects an unknown preset', (c) => { c.issuers.gh.preset = 'travis'; }, 'issuers.gh.preset', /./],
    ['rejects an unknown condition operator', (c) => { c.roles.deploy.allow[0].claims.ref = { regex: '.*' }; }, 'roles.deploy.allow[0].claims.ref', /./],
    ['rejects an issuer id with odd characters', (c) => { c.issuers['g h'] = { url: 'https://x.example.com', audiences: AUD }; }, 'issuers.g h', /./],
    ['rejects a file audit sink without a path', (c) => { c.audit = { sink: 'file' }; }, 'audit.path', /required when audit.sink is "file"/],
  ];
  it.each(cases)('%s', (_name, edit, path, message) => {
    const problems = problemsOf(configWith(edit));
    expect(problems.map((p) => p.path)).toEqual([path]);
    expect(problems[0]!.message).toMatch(message);
  });

  it('accepts an http issuer with allow_insecure_http, with a warning', () => {
    const { config, warnings } = parseConfig(configWith((c) => {
      c.issuers.local = { url: 'http://127.0.0.1:9000', audiences: AUD, allow_insecure_http: true };
    }));
    expect(config.issuers.get('local')?.url).toBe('http://127.0.0.1:9000');
    expect(warnings).toEqual([{ path: 'issuers.local.allow_insecure_http', message: expect.stringMatching(/local testing/) }]);
  });

  it('accepts role ARNs of other partitions and with a path', () => {
    for (const arn of ['arn:aws-cn:iam::111122223333:role/a', 'arn:aws-us-gov:iam::111122223333:role/team/a', 'arn:aws:iam::999988887777:role/x/y/z']) {
      expect(() => parseConfig(configWith((c) => { c.roles.deploy.arn = arn; }))).not.toThrow();
    }
  });

  it('accepts a session policy as JSON text and stores it minified', () => {
    const { config } = parseConfig(configWith((c) => {
      c.roles.deploy.allow[0].session_policy = '{ "Version": "2012-10-17", "Statement": [] }';
    }));
    expect(config.policy.roles.get('deploy')?.bindings[0]?.sessionPolicy).toBe('{"Version":"2012-10-17","Statement":[]}');
  });
});

describe('claim and role names that are Object.prototype members', () => {
  it('never silently drops a claim condition named __proto__', () => {
    const text = configWith((c) => {
      c.roles.deploy.allow[0].claims = JSON.parse('{"repository_owner_id":"9919","repository_id":"487920697","__proto__":"x"}');
    });
    expect(text).toContain('"__proto__":"x"');
    let honoured: boolean;
    try {
      const { config } = parseConfig(text);
      honoured = config.policy.roles.get('deploy')!.bindings[0]!.conditions.some((c) => c.claim === '__proto__');
    } catch (e) {
      honoured = (e as ConfigError).problems.some((p) => p.path.includes('__proto__'));
    }
    expect(honoured).toBe(true);
  });

  it('binds a claim named constructor with a preset', () => {
    const { config } = parseConfig(configWith((c) => { c.roles.deploy.allow[0].claims.constructor = 'x'; }));
    expect(config.policy.roles.get('deploy')!.bindings[0]!.conditions.map((c) => c.claim)).toContain('constructor');
  });
});

describe('invalid files', () => {
  it('reports invalid YAML as a ConfigError with the parser\'s message', () => {
    const problems = problemsOf('issuers:\n  gh: {preset: github-actions\nroles: {}\n');
    expect(problems).toHaveLength(1);
    expect(problems[0]!.message).toMatch(/Flow map/);
  });

  it('reports invalid YAML with the line of the problem', () => {
    const problems = problemsOf('issuers: {}\nroles: {}\nroles: {}\n');
    expect(problems).toEqual([{ path: 'line 3', message: expect.stringMatching(/^Map keys must be unique/) }]);
  });

  it('reports an empty file as missing issuers and roles', () => {
    expect(problemsOf('').map((p) => p.path).sort()).toEqual(['issuers', 'roles']);
  });

  it('reports an unknown top-level key', () => {
    const problems = problemsOf(configWith((c) => { c.bogus = 1; }));
    expect(problems).toHaveLength(1);
    expect(problems[0]!.message).toContain('bogus');
  });
});

describe('JSON Schema', () => {
  it('is an object schema with the top-level properties of the config', () => {
    const schema = configJsonSchema() as { type?: string; properties?: Record<string, unknown>; required?: string[] };
    expect(schema.type).toBe('object');
    expect(Object.keys(schema.properties ?? {}).sort()).toEqual(
      expect.arrayContaining(['audit', 'aws', 'deny', 'issuers', 'logging', 'roles', 'server', 'store']),
    );
    expect(schema.required).toEqual(expect.arrayContaining(['issuers', 'roles']));
  });

  it('limits algorithms to the asymmetric allowlist', () => {
    const text = JSON.stringify(configJsonSchema());
    expect(text).toContain('"RS256"');
    expect(text).not.toContain('"none"');
    expect(text).not.toContain('"HS256"');
  });
});

describe('server.trust_proxy', () => {
  it.each([
    ['a hop count', 1],
    ['a list of CIDRs and addresses', ['10.0.0.0/8', '192.0.2.10', '2001:db8::/32', 'loopback']],
    ['false', false],
  ] as const)('accepts %s without a warning', (_name, value) => {
    const { config, warnings } = parseConfig(configWith((c) => (c.server = { trust_proxy: value })));
    expect(config.server.trust_proxy).toEqual(value);
    expect(warnings).toEqual([]);
  });

  it('warns that true lets any client choose its own IP', () => {
    const { warnings } = parseConfig(configWith((c) => (c.server = { trust_proxy: true })));
    expect(warnings).toEqual([{ path: 'server.trust_proxy', message: expect.stringMatching(/any client can pick its own IP/) }]);
  });

  it('reports every entry that is not an IP, a CIDR or a named range, with its index', () => {
    const problems = problemsOf(configWith((c) => (c.server = { trust_proxy: ['10.0.0.0/8', 'lb.internal', '10.0.0.0/33', '::1/129'] })));
    expect(problems.map((p) => p.path)).toEqual(['server.trust_proxy[1]', 'server.trust_proxy[2]', 'server.trust_proxy[3]']);
  });

  it('refuses a comma-separated string (ambiguous; give a list)', () => {
    expect(problemsOf(configWith((c) => (c.server = { trust_proxy: '10.0.0.1, 10.0.0.2' }))).map((p) => p.path)).toEqual(['server.trust_proxy']);
  });
});
