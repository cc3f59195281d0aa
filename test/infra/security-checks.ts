// Checks over what a stack registers, shared by the infra tests: what the internet can reach, and
// IAM wildcards. Each returns a list of problems (empty: fine), so a failure names every offender.
import type { PolicyDocument } from '../../infra/policies/document.js';

export interface IngressRule {
  name?: string;
  securityGroupId: string;
  cidrIpv4?: string;
  cidrIpv6?: string;
  referencedSecurityGroupId?: string;
  ipProtocol: string;
  fromPort?: number;
  toPort?: number;
}

const isEveryone = (r: IngressRule) => r.cidrIpv4 === '0.0.0.0/0' || r.cidrIpv6 === '::/0';

/** Every ingress rule open to the whole internet must be TCP to exactly one of `allowedPorts`. */
export function publicIngressProblems(rules: IngressRule[], allowedPorts: number[]): string[] {
  const allowed = allowedPorts.join(', ');
  return rules.filter(isEveryone).flatMap((r) => {
    const to = r.cidrIpv4 ?? r.cidrIpv6;
    if (r.ipProtocol === '-1' || r.ipProtocol === 'all') return [`${r.name}: opens all traffic to ${to} (only ${allowed} may be public)`];
    if (r.ipProtocol !== 'tcp' || r.fromPort !== r.toPort || !allowedPorts.includes(r.fromPort ?? -1)) {
      return [`${r.name}: opens ${r.ipProtocol} ${r.fromPort}-${r.toPort} to ${to} (only ${allowed} may be public)`];
    }
    return [];
  });
}

/** No action wildcard ("*", "s3:*", "s3:Get*") anywhere; Resource "*" only for the listed actions. */
export function wildcardProblems(where: string, doc: PolicyDocument, starResourceActions: string[]): string[] {
  return doc.Statement.flatMap((s) => {
    const actions = [s.Action].flat();
    const resources = s.Resource === undefined ? [] : [s.Resource].flat();
    const problems: string[] = [];
    for (const a of actions) if (a.includes('*')) problems.push(`${where} ${s.Sid}: wildcard action ${a}`);
    if (resources.includes('*') && !actions.every((a) => starResourceActions.includes(a))) {
      problems.push(`${where} ${s.Sid}: Resource "*" for ${actions.join(', ')}`);
    }
    return problems;
  });
}
