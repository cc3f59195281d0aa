// ARN builders shared by the policy builders, the components and the emitted broker config.
// Paths are IAM paths ("/", "/credbroker/"): they start and end with "/".

export const roleArn = (partition: string, accountId: string, path: string, name: string): string =>
  `arn:${partition}:iam::${accountId}:role${path}${name}`;

/** Every role under `path` (and its sub-paths) in one account. */
export const rolesUnderPath = (partition: string, accountId: string, path: string): string =>
  `arn:${partition}:iam::${accountId}:role${path}*`;

/** Every user under `path` (and its sub-paths) in one account. */
export const usersUnderPath = (partition: string, accountId: string, path: string): string =>
  `arn:${partition}:iam::${accountId}:user${path}*`;

/** The partition of any ARN ("aws", "aws-us-gov", "aws-cn"). */
export function partitionOf(arn: string): string {
  const partition = arn.split(':')[1];
  if (!arn.startsWith('arn:') || !partition) throw new Error(`not an ARN: ${arn}`);
  return partition;
}
