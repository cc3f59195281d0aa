// The `service` stack setting: safe defaults, and every problem reported at once with its path.
import { describe, expect, it } from 'vitest';
import { InfraSettingsError, parseStackSettings } from '../../infra/settings.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const roles = {
  deploy: { sessionTags: { repository_id: '{repository_id}' }, allow: [{ issuer: 'github', claims: { repository_id: '1' } }] },
};
const service = {
  domainName: 'credbroker.example.com',
  certificateArn: 'arn:aws:acm:us-east-1:111111111111:certificate/abc-123',
  image: { repository: '111111111111.dkr.ecr.us-east-1.amazonaws.com/credbroker', digest: DIGEST },
  audit: { hmacKeySecretArn: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:credbroker/audit-hmac-key-Ab12Cd' },
  brokerConfig: { issuers: { github: { preset: 'github-actions', audiences: ['https://credbroker.example.com'] } } },
};

function problemsOf(input: Record<string, unknown>): string[] {
  try {
    parseStackSettings(input);
  } catch (err) {
    expect(err).toBeInstanceOf(InfraSettingsError);
    return (err as InfraSettingsError).problems;
  }
  throw new Error('expected InfraSettingsError');
}

describe('service settings', () => {
  it('default to an HA, HTTPS-only deployment with a created VPC', () => {
    const s = parseStackSettings({ roles, service }).service!;
    expect(s.tasks).toMatchObject({ desired: 2, min: 2, max: 6 });
    expect(s.network).toMatchObject({ availabilityZones: 2, natGateways: 'per-az' });
    expect(s.loadBalancer).toMatchObject({ tlsPolicy: 'ELBSecurityPolicy-TLS13-1-2-2021-06', httpRedirect: false, allowedCidrs: ['0.0.0.0/0'], trustProxyHops: 1 });
    expect(s.database).toMatchObject({ multiAz: true, deletionProtection: true, engineVersion: '16' });
    expect(s.admin.enabled).toBe(false);
  });

  it('report every problem at once, each with its path', () => {
    const problems = problemsOf({
      roles: { deploy: { sessionTags: {} } },
      service: {
        domainName: 'Not A Host',
        certificateArn: 'arn:aws:iam::111111111111:server-certificate/x',
        image: { repository: 'registry.example/credbroker:latest', digest: 'latest' },
        network: { vpcId: 'vpc-1' },
        tasks: { min: 2, desired: 3, max: 2, cpu: 512, memory: 512 },
        logs: { retentionDays: 10 },
        admin: { enabled: true, allowedCidrs: ['0.0.0.0/0'], tokens: [{ name: 'ops team' }] },
        brokerConfig: { roles: {}, store: { driver: 'memory' }, server: { port: 9000 } },
      },
    });
    expect(problems).toEqual([
      'service.domainName: expected a lower-case DNS name, e.g. credbroker.example.com',
      'service.certificateArn: expected an ACM certificate ARN',
      'service.image.digest: expected sha256:<64 hex> (images are pinned by digest)',
      'service.image.repository: a repository without tag or digest (the digest goes in image.digest)',
      'service.network: give vpcId, publicSubnetIds and privateSubnetIds together, or none (a VPC is then created)',
      'service.tasks: expected min ≤ desired ≤ max (got 2, 3, 2)',
      'service.tasks.memory: 512 MiB is not a Fargate size for 512 CPU units',
      'service.logs.retentionDays: CloudWatch accepts 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653',
      'service.admin.domainName: required when the admin API is enabled (its internal load balancer serves HTTPS)',
      'service.admin.certificateArn: required when the admin API is enabled',
      'service.admin.allowedCidrs[0]: the admin API is never open to everyone',
      'service.admin.tokenHashesSecretArn: required when the admin API is enabled',
      'service.admin.tokens[0].name: expected 1–64 of [A-Za-z0-9_-]',
      'service.audit.hmacKeySecretArn: required: the key of the audit chain (audit.hmac_key_env), from Secrets Manager',
      'service.brokerConfig.roles: is written by the stack',
      'service.brokerConfig.store: is written by the stack',
      'service.brokerConfig.server.port: is written by the stack',
      'service.brokerConfig.issuers: the broker needs at least one issuer',
      'roles.deploy.allow: the deployed broker needs the bindings of every role (who may assume it)',
    ]);
  });

  it('refuse fewer than two tasks: one task is one zone', () => {
    expect(problemsOf({ roles, service: { ...service, tasks: { min: 1, desired: 1 } } })).toEqual([
      'service.tasks.desired: Too small: expected number to be >=2',
      'service.tasks.min: Too small: expected number to be >=2',
    ]);
  });

  it('refuse a TLS policy that allows TLS 1.0 or 1.1', () => {
    const problems = problemsOf({ roles, service: { ...service, loadBalancer: { tlsPolicy: 'ELBSecurityPolicy-2016-08' } } });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^service\.loadBalancer\.tlsPolicy: /);
  });

  it('need no image repository when the stack creates one, and no digest until the image is pushed', () => {
    const s = parseStackSettings({ roles, service: { ...service, image: {}, ecr: { create: true } } }).service!;
    expect(s.image).toEqual({});
    expect(s.ecr).toEqual({ create: true, name: 'credbroker', keepImages: 30 });
  });
});
