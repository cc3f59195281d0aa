// The ECS task execution role: what ECS itself does before the broker runs — pull the image, write
// the log streams, read the secrets the task definition names. Nothing else, and nothing the broker
// (whose task role is the broker identity) can use. Pure.
import { policy, type PolicyDocument, type Statement } from './document.js';

export interface ExecutionPolicyInput {
  /** The log group ARN (without the trailing ":*"). */
  logGroupArn: string;
  /** Secrets the task definition injects (config, database password, admin token hashes, HMAC key). */
  secretArns: string[];
  /** The ECR repository the image comes from, when it is one. */
  ecrRepositoryArn?: string | undefined;
  /** Customer managed keys that encrypt those secrets, if any. */
  kmsKeyArns?: string[];
  region: string;
}

export function executionRoleTrust(accountId: string, partition: string, region: string): PolicyDocument {
  return policy([
    {
      Sid: 'EcsTasksOfThisAccount',
      Effect: 'Allow',
      Principal: { Service: 'ecs-tasks.amazonaws.com' },
      Action: 'sts:AssumeRole',
      Condition: {
        StringEquals: { 'aws:SourceAccount': accountId },
        ArnLike: { 'aws:SourceArn': `arn:${partition}:ecs:${region}:${accountId}:*` },
      },
    },
  ]);
}

export function executionRolePolicy(i: ExecutionPolicyInput): PolicyDocument {
  const statements: Statement[] = [];
  if (i.ecrRepositoryArn) {
    statements.push(
      // GetAuthorizationToken has no resource type: it cannot be scoped (it grants no image access).
      { Sid: 'EcrLogin', Effect: 'Allow', Action: 'ecr:GetAuthorizationToken', Resource: '*' },
      {
        Sid: 'PullBrokerImage',
        Effect: 'Allow',
        Action: ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage'],
        Resource: i.ecrRepositoryArn,
      },
    );
  }
  statements.push(
    { Sid: 'WriteTaskLogs', Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: `${i.logGroupArn}:log-stream:*` },
    { Sid: 'ReadTaskSecrets', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: [...i.secretArns] },
  );
  if (i.kmsKeyArns && i.kmsKeyArns.length > 0) {
    statements.push({
      Sid: 'DecryptTaskSecrets',
      Effect: 'Allow',
      Action: 'kms:Decrypt',
      Resource: [...i.kmsKeyArns],
      Condition: { StringEquals: { 'kms:ViaService': `secretsmanager.${i.region}.amazonaws.com` } },
    });
  }
  return policy(statements);
}

/** An ECR image URL's repository ARN, or undefined for another registry. */
export function ecrRepositoryArnOf(repository: string, partition: string): string | undefined {
  const m = /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?\/(.+)$/.exec(repository);
  return m ? `arn:${partition}:ecr:${m[2]}:${m[1]}:repository/${m[3]}` : undefined;
}
