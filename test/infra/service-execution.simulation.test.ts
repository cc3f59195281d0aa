// The ECS task execution role's policy, evaluated by an IAM simulator: ECS can pull the broker's
// image, write its log streams and read the task's own secrets — and nothing next to them.
import { describe, expect, it } from 'vitest';
import { ecrRepositoryArnOf, executionRolePolicy } from '../../infra/policies/service-execution.js';
import { simulate, type Decision } from './simulate.js';

const ACCOUNT = '111111111111';
const REGION = 'us-east-1';
const secret = (name: string) => `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${name}`;
const CONFIG = secret('credbroker/config-abc-AbCdEf');
const DB = secret('rds!db-1234-AbCdEf');
const LOG_GROUP = `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:/credbroker/broker-service-logs`;
const REPO = ecrRepositoryArnOf(`${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/credbroker`, 'aws')!;
const policy = executionRolePolicy({ logGroupArn: LOG_GROUP, secretArns: [CONFIG, DB], ecrRepositoryArn: REPO, region: REGION });

const asExecutionRole = (action: string, resource: string): Promise<Decision> =>
  simulate({
    principal: `arn:aws:sts::${ACCOUNT}:assumed-role/credbroker-exec-1234/ecs-task`,
    action,
    resource,
    resourceAccount: ACCOUNT,
    identityPolicy: policy,
  });

describe('task execution role', () => {
  it.each([
    ['secretsmanager:GetSecretValue', CONFIG],
    ['secretsmanager:GetSecretValue', DB],
    ['logs:CreateLogStream', `${LOG_GROUP}:log-stream:broker/broker/0123`],
    ['logs:PutLogEvents', `${LOG_GROUP}:log-stream:broker/broker/0123`],
    ['ecr:BatchGetImage', REPO],
    ['ecr:GetDownloadUrlForLayer', REPO],
    ['ecr:GetAuthorizationToken', '*'],
  ])('may %s on %s', async (action, resource) => {
    expect(await asExecutionRole(action, resource)).toBe('Allowed');
  });

  it.each([
    ['secretsmanager:GetSecretValue', secret('another-team/db-AbCdEf')],
    ['secretsmanager:PutSecretValue', CONFIG],
    ['secretsmanager:DeleteSecret', DB],
    ['logs:PutLogEvents', `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:/other/app:log-stream:x`],
    ['logs:DeleteLogGroup', LOG_GROUP],
    ['ecr:BatchGetImage', `arn:aws:ecr:${REGION}:${ACCOUNT}:repository/other-image`],
    ['ecr:PutImage', REPO],
    ['sts:AssumeRole', `arn:aws:iam::${ACCOUNT}:role/credbroker/deploy`],
  ])('may not %s on %s', async (action, resource) => {
    expect(await asExecutionRole(action, resource)).toBe('ImplicitlyDenied');
  });

  it('has no ECR permission at all when the image comes from another registry', () => {
    expect(ecrRepositoryArnOf('registry.example/team/credbroker', 'aws')).toBeUndefined();
    const p = executionRolePolicy({ logGroupArn: LOG_GROUP, secretArns: [CONFIG], region: REGION });
    expect(p.Statement.map((s) => s.Sid)).toEqual(['WriteTaskLogs', 'ReadTaskSecrets']);
  });
});
