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
  /** IAM principals (roles, users) allowed to run as the broker. */
  principalArns: string[];
  /** Kubernetes service accounts of EKS clusters (IRSA) that run as the broker. */
  eksServiceAccounts?: EksServiceAccount[];
}

export interface EksServiceAccount {
  /** The cluster's IAM OIDC provider: arn:aws:iam::<account>:oidc-provider/oidc.eks.<region>.amazonaws.com/id/<id>. */
  oidcProviderArn: string;
  namespace: string;
  serviceAccount: string;
}

/** The issuer host and path of an IAM OIDC provider ARN: the prefix of its condition keys. */
export const oidcProviderIssuer = (arn: string): string => arn.slice(arn.indexOf(':oidc-provider/') + ':oidc-provider/'.length);

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
  // IRSA: one statement per cluster, pinned to the exact service account and to STS as audience.
  (input.eksServiceAccounts ?? []).forEach((sa, i) => {
    const issuer = oidcProviderIssuer(sa.oidcProviderArn);
    statements.push({
      Sid: `EksServiceAccount${i}`,
      Effect: 'Allow',
      Principal: { Federated: sa.oidcProviderArn },
      Action: 'sts:AssumeRoleWithWebIdentity',
      Condition: { StringEquals: { [`${issuer}:sub`]: `system:serviceaccount:${sa.namespace}:${sa.serviceAccount}`, [`${issuer}:aud`]: 'sts.amazonaws.com' } },
    });
  });
  if (statements.length === 0) throw new Error('broker trust: no service or principal may assume the broker role');
  return policy(statements);
}
