// The first `pulumi up` in an empty account: with `service` configured but no image digest yet,
// the stack creates the IAM side and the image repository, and no service that would fail to pull.
import { beforeAll, describe, expect, it } from 'vitest';
import { installMocks, settle, valueOf, type MockWorld } from './pulumi-mocks.js';

let world: MockWorld;
let stack: import('../../infra/stack.js').CredbrokerStack;

beforeAll(async () => {
  world = await installMocks();
  const { parseStackSettings } = await import('../../infra/settings.js');
  const { createCredbrokerStack } = await import('../../infra/stack.js');
  const settings = parseStackSettings({
    roles: { deploy: { sessionTags: {}, allow: [{ issuer: 'github', claims: { repository_id: '1' } }] } },
    service: {
      domainName: 'credbroker.example.com',
      certificateArn: 'arn:aws:acm:us-east-1:111111111111:certificate/abc-123',
      ecr: { create: true, keepImages: 10 },
      audit: { hmacKeySecretArn: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:credbroker/audit-hmac-key-Ab12Cd' },
      brokerConfig: { issuers: { github: { preset: 'github-actions', audiences: ['https://credbroker.example.com'] } } },
    },
  });
  stack = createCredbrokerStack(settings, { accountId: '111111111111', partition: 'aws', region: 'us-east-1' });
  await settle(100);
});

describe('before the image digest is set', () => {
  it('creates the ECR repository (immutable tags, scanned on push, newest images kept) and no service', async () => {
    expect(await valueOf(stack.outputs.service.ecrRepositoryUrl)).toBe('111111111111.dkr.ecr.us-east-1.amazonaws.com/credbroker');
    expect(world.one('aws:ecr/repository:Repository', 'broker-image').inputs).toMatchObject({
      imageTagMutability: 'IMMUTABLE',
      imageScanningConfiguration: { scanOnPush: true },
    });
    const lifecycle = JSON.parse(world.one('aws:ecr/lifecyclePolicy:LifecyclePolicy', 'broker-image').inputs.policy);
    expect(lifecycle.rules[0].selection).toMatchObject({ countType: 'imageCountMoreThan', countNumber: 10 });
    expect(world.byType('aws:ecs/service:Service')).toEqual([]);
    expect(world.byType('aws:rds/instance:Instance')).toEqual([]);
    expect(await valueOf(stack.outputs.service.url)).toBeUndefined();
  });
});
