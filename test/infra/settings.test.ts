// Stack settings: defaults, and validation that reports every problem at once with its path.
import { describe, expect, it } from 'vitest';
import { InfraSettingsError, parseStackSettings, type StackSettingsInput } from '../../infra/settings.js';
import { sourceIdentityPatternFor } from '../../infra/policies/target-trust.js';

const minimal: StackSettingsInput = {
  roles: { deploy: { sessionTags: { repository_id: '{repository_id}' } } },
};

function problemsOf(input: unknown): string[] {
  try {
    parseStackSettings(input as Record<string, unknown>);
  } catch (err) {
    expect(err).toBeInstanceOf(InfraSettingsError);
    return (err as InfraSettingsError).problems;
  }
  throw new Error('expected InfraSettingsError');
}

describe('parseStackSettings', () => {
  it('fills safe defaults', () => {
    const s = parseStackSettings(minimal);
    expect(s.broker).toEqual({
      roleName: 'credbroker-broker',
      path: '/credbroker-system/',
      trustedServices: ['ecs-tasks'],
      trustedPrincipalArns: [],
      eksServiceAccounts: [],
      maxSessionDurationSeconds: 3600,
    });
    expect(s.targetRolePath).toBe('/credbroker/');
    expect(s.rotation).toEqual({ enabled: true, path: '/credbroker/static/', tagKey: 'credbroker:rotate', tagValue: 'true', match: 'path-and-tag' });
    expect(s.revocation).toBe(true);
    expect(s.roles).toEqual([
      expect.objectContaining({ key: 'deploy', roleName: 'deploy', maxSessionDurationSeconds: 3600, requireSourceIdentity: true, sourceIdentityPattern: '*' }),
    ]);
  });

  it('derives the source identity pattern from the broker template', () => {
    const s = parseStackSettings({ roles: { deploy: { sessionTags: {}, sourceIdentity: 'gh-{repository_id}-{actor_id}' } } });
    expect(s.roles[0]!.sourceIdentityPattern).toBe('gh-*');
  });

  it('reports every problem of a bad config in one error, each with its path', () => {
    const problems = problemsOf({
      targetRolePath: '/',
      broker: { trustedServices: [], trustedPrincipalArns: ['not-an-arn'] },
      accounts: { prod: { accountId: '4444', deployRoleArn: 'arn:aws:iam::555555555555:role/deploy' } },
      roles: {
        'deploy prod': { sessionTags: { ref: '{ref}' } },
        deploy: {
          account: 'staging',
          sessionTags: { ref: '{ref}', Ref: '{ref}', 'aws:x': 'y' },
          sessionTagValues: { workflow: ['deploy'] },
          transitiveTagKeys: ['repository_id'],
          sourceIdentity: 'gh--{repository_id}',
          managedPolicyArns: ['ReadOnlyAccess'],
        },
      },
      rotation: { enabled: false },
      staticUsers: { travis: {} },
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^targetRolePath: must not be "\/"/),
        expect.stringMatching(/^roles\.deploy prod\.roleName: expected an IAM role name/),
        expect.stringMatching(/^broker\.trustedPrincipalArns\[0\]:/),
        expect.stringMatching(/^accounts\.prod\.accountId: expected a 12-digit account id/),
        expect.stringMatching(/^accounts\.prod\.deployRoleArn: is in account 555555555555, not 4444/),
        expect.stringMatching(/^roles\.deploy prod: role key must match/),
        expect.stringMatching(/^roles\.deploy\.account: unknown account "staging" \(known: prod\)/),
        expect.stringMatching(/^roles\.deploy\.sessionTags\.Ref: collides with "ref"/),
        expect.stringMatching(/^roles\.deploy\.sessionTags\.aws:x: a tag key may not start with "aws:"/),
        expect.stringMatching(/^roles\.deploy\.sessionTagValues\.workflow: not a key of sessionTags/),
        expect.stringMatching(/^roles\.deploy\.transitiveTagKeys\[0\]: "repository_id" is not a key of sessionTags/),
        expect.stringMatching(/^roles\.deploy\.sourceIdentity:/),
        expect.stringMatching(/^roles\.deploy\.managedPolicyArns\[0\]:/),
        expect.stringMatching(/^staticUsers: static users need rotation\.enabled/),
      ]),
    );
    expect(problems).toHaveLength(14);
  });

  it('rejects a broker identity nothing could run as', () => {
    expect(problemsOf({ ...minimal, broker: { trustedServices: [] } })).toEqual([expect.stringMatching(/^broker: nothing could run as the broker/)]);
  });

  it('reports shape errors (unknown keys, wrong types) with their paths', () => {
    const problems = problemsOf({ roles: { deploy: { sesionTags: {} } }, revocation: 'yes' });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^roles\.deploy: .*sesionTags/),
        expect.stringMatching(/^roles\.deploy\.sessionTags: /),
        expect.stringMatching(/^revocation: /),
      ]),
    );
  });

  it.each([
    ['/credbroker/', '/credbroker/', 'equal to it'],
    ['/credbroker/system/', '/credbroker/', 'inside it'],
    ['/', '/credbroker/', 'the root path, which contains it'],
  ])('rejects a broker path %s overlapping the target path %s (%s)', (brokerPath, targetRolePath) => {
    const problems = problemsOf({ ...minimal, broker: { path: brokerPath }, targetRolePath });
    expect(problems).toEqual([expect.stringMatching(/^broker\.path: must not overlap targetRolePath/)]);
  });

  it('rejects two roles with the same IAM name in one account, and the broker’s name for a target', () => {
    const problems = problemsOf({
      roles: {
        a: { roleName: 'Deploy', sessionTags: {} },
        b: { roleName: 'deploy', sessionTags: {} },
        c: { roleName: 'credbroker-broker', sessionTags: {} },
      },
    });
    expect(problems).toEqual([
      expect.stringMatching(/^roles\.b\.roleName: "deploy" is also roles\.a/),
      expect.stringMatching(/^roles\.c\.roleName: "credbroker-broker" is also broker\.roleName/),
    ]);
  });

  it('allows the same IAM role name in different accounts', () => {
    expect(() =>
      parseStackSettings({
        accounts: { prod: { accountId: '444455556666' } },
        roles: { deploy: { sessionTags: {} }, 'deploy-prod': { roleName: 'deploy', account: 'prod', sessionTags: {} } },
      }),
    ).not.toThrow();
  });

  it.each(['path', 'path-or-tag'] as const)('rejects rotation of every user (path "/" with match %s)', (match) => {
    expect(problemsOf({ ...minimal, rotation: { path: '/', match } })).toEqual([expect.stringMatching(/^rotation\.path: must not be "\/"/)]);
  });

  it('accepts the root rotation path when the tag is required', () => {
    expect(() => parseStackSettings({ ...minimal, rotation: { path: '/', match: 'path-and-tag' } })).not.toThrow();
  });

  it('rejects a role inline policy named like the broker’s revocation policy', () => {
    const inlinePolicies = { AWSRevokeOlderSessions: { Version: '2012-10-17', Statement: [{ Effect: 'Deny', Action: '*', Resource: '*' }] } };
    expect(problemsOf({ roles: { deploy: { sessionTags: {}, inlinePolicies } } })).toEqual([
      expect.stringMatching(/^roles\.deploy\.inlinePolicies\.AWSRevokeOlderSessions: is the name the broker uses/),
    ]);
  });

  it('rejects a static user that sets the rotation tag itself', () => {
    expect(problemsOf({ ...minimal, staticUsers: { u: { tags: { 'credbroker:rotate': 'false' } } } })).toEqual([
      expect.stringMatching(/^staticUsers\.u\.tags\.credbroker:rotate: is the rotation tag/),
    ]);
  });
});

describe('sourceIdentityPatternFor', () => {
  it.each([
    [undefined, '*'],
    ['gh-{repository_id}-{actor_id}', 'gh-*'],
    ['{@token_hash}', '*'],
    ['static-ci', 'static-ci*'],
  ])('%s → %s', (template, pattern) => {
    expect(sourceIdentityPatternFor(template)).toBe(pattern);
  });
});
