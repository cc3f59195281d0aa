// The IAM policy grammar the builders emit: small on purpose, so a document reads like the JSON
// AWS stores. Condition blocks map operator → context key → value(s).
export type ConditionBlock = Record<string, Record<string, string | string[]>>;

export type Principal = { AWS: string | string[] } | { Service: string | string[] } | { Federated: string };

export interface Statement {
  Sid: string;
  Effect: 'Allow' | 'Deny';
  Principal?: Principal;
  Action: string | string[];
  Resource?: string | string[];
  Condition?: ConditionBlock;
}

export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: Statement[];
}

export const policy = (statements: Statement[]): PolicyDocument => ({ Version: '2012-10-17', Statement: statements });
