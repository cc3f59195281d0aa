// Trust policy of a CI target role: exactly the broker identity may assume it, and only the way
// the broker does — with a SourceIdentity matching a pattern and only the session tags the broker
// config names for this role. Pure; see ci-target-role.ts.
import { policy, type PolicyDocument, type Statement } from './document.js';

export interface TargetTrustInput {
  /** The broker identity (a role ARN): sessions of that role match it as principal. */
  brokerRoleArn: string;
  /** Keys the broker may set as session tags (the role's `tags:` in the broker config). */
  sessionTagKeys: string[];
  /** Optional StringLike patterns per tag key for its value (aws:RequestTag/KEY); such a tag must be present. */
  sessionTagValues: Record<string, string[]>;
  /** Keys the broker may mark transitive; none ⇒ the request must not name any. */
  transitiveTagKeys: string[];
  /** StringLike pattern for sts:SourceIdentity, e.g. "gh-*". */
  sourceIdentityPattern: string;
  /** The broker always sets one; requiring it makes every session traceable in CloudTrail. */
  requireSourceIdentity: boolean;
}

export function targetTrustPolicy(input: TargetTrustInput): PolicyDocument {
  const broker = { AWS: input.brokerRoleArn };
  const sourceIdentity = { StringLike: { 'sts:SourceIdentity': input.sourceIdentityPattern } };
  const statements: Statement[] = [
    {
      Sid: 'BrokerAssumesRole',
      Effect: 'Allow',
      Principal: broker,
      Action: 'sts:AssumeRole',
      ...(input.requireSourceIdentity ? { Condition: sourceIdentity } : {}),
    },
    {
      Sid: 'BrokerSetsSourceIdentity',
      Effect: 'Allow',
      Principal: broker,
      Action: 'sts:SetSourceIdentity',
      Condition: sourceIdentity,
    },
  ];
  if (input.sessionTagKeys.length > 0) statements.push(tagSessionStatement(broker, input));
  return policy(statements);
}

function tagSessionStatement(principal: { AWS: string }, input: TargetTrustInput): Statement {
  // ForAllValues: every key in the request must be one of ours (a missing key set passes, which
  // is fine: no tags, nothing to restrict).
  const forAll: Record<string, string[]> = { 'aws:TagKeys': [...input.sessionTagKeys] };
  if (input.transitiveTagKeys.length > 0) forAll['sts:TransitiveTagKeys'] = [...input.transitiveTagKeys];
  const condition: Statement['Condition'] = { 'ForAllValues:StringEquals': forAll };
  if (input.transitiveTagKeys.length === 0) condition.Null = { 'sts:TransitiveTagKeys': 'true' };
  const values = Object.entries(input.sessionTagValues);
  if (values.length > 0) {
    condition.StringLike = Object.fromEntries(values.map(([key, patterns]) => [`aws:RequestTag/${key}`, [...patterns]]));
  }
  return { Sid: 'BrokerTagsSession', Effect: 'Allow', Principal: principal, Action: 'sts:TagSession', Condition: condition };
}

/**
 * The StringLike pattern for a broker source-identity template: its leading literal, then "*".
 * Only the prefix is stable: the broker replaces odd characters, collapses "--" and may shorten a
 * long value with a hash, so the rest of the template cannot be matched literally.
 */
export function sourceIdentityPatternFor(template: string | undefined): string {
  if (template === undefined) return '*';
  const brace = template.indexOf('{');
  const prefix = brace === -1 ? template : template.slice(0, brace);
  return `${prefix}*`;
}
