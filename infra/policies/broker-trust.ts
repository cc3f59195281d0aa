// Trust policy of the broker's own role: who may run as the broker. Pure; see broker-identity.ts.
import { policy, type PolicyDocument, type Statement } from './document.js';

export const TRUSTED_SERVICES = {
  'ecs-tasks': 'ecs-tasks.amazonaws.com',
  ec2: 'ec2.amazonaws.com',
  lambda: 'lambda.amazonaws.com',
} as const;
export type TrustedService = keyof typeof TRUSTED_SERVICES;

/**
 * Services whose AssumeRole requests carry aws:SourceAccount (documented by AWS for ECS task roles),
 * so the trust can refuse tasks of other accounts (confused deputy). Not added for EC2 or Lambda:
 * a condition on a key the service does not send would lock the broker out.
 */
const SOURCE_ACCOUNT_SERVICES: ReadonlySet<TrustedService> = new Set(['ecs-tasks']);

export interface BrokerTrustInput {
  /** The account the broker role lives in. */
  accountId: string;
  services: TrustedService[];
  /** IAM principals (roles, users) allowed to run as the broker, e.g. an EKS IRSA role. */
  principalArns: string[];
}

export function brokerTrustPolicy(input: BrokerTrustInput): PolicyDocument {
  const statements: Statement[] = [];
  const plain = input.services.filter((s) => !SOURCE_ACCOUNT_SERVICES.has(s));
  const pinned = input.services.filter((s) => SOURCE_ACCOUNT_SERVICES.has(s));
  if (pinned.length > 0) {
    statements.push({
      Sid: 'ServicesOfThisAccount',
      Effect: 'Allow',
      Principal: { Service: pinned.map((s) => TRUSTED_SERVICES[s]) },
      Action: 'sts:AssumeRole',
      Condition: { StringEquals: { 'aws:SourceAccount': input.accountId } },
    });
  }
  if (plain.length > 0) {
    statements.push({
      Sid: 'Services',
      Effect: 'Allow',
      Principal: { Service: plain.map((s) => TRUSTED_SERVICES[s]) },
      Action: 'sts:AssumeRole',
    });
  }
  if (input.principalArns.length > 0) {
    statements.push({
      Sid: 'Principals',
      Effect: 'Allow',
      Principal: { AWS: [...input.principalArns] },
      Action: 'sts:AssumeRole',
    });
  }
  if (statements.length === 0) throw new Error('broker trust: no service or principal may assume the broker role');
  return policy(statements);
}
