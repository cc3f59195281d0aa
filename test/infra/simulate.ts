// Test-only bridge to @cloud-copilot/iam-simulate (AGPL: used by tests, never by infra/ or server/).
// Every simulation must run (no validation errors) and every context key given must be one the
// simulator evaluated: an ignored key would make a "denied" prove nothing.
import { runSimulation } from '@cloud-copilot/iam-simulate';
import type { PolicyDocument } from '../../infra/policies/document.js';

export type Decision = 'Allowed' | 'ExplicitlyDenied' | 'ImplicitlyDenied';

export interface SimulationCase {
  principal: string;
  action: string;
  resource: string;
  /** The account that owns the resource. */
  resourceAccount: string;
  context?: Record<string, string | string[]>;
  identityPolicy?: PolicyDocument;
  resourcePolicy?: PolicyDocument;
}

export async function simulate(c: SimulationCase): Promise<Decision> {
  const response = await runSimulation(
    {
      request: {
        principal: c.principal,
        action: c.action,
        resource: { resource: c.resource, accountId: c.resourceAccount },
        contextVariables: c.context ?? {},
      },
      identityPolicies: c.identityPolicy ? [{ name: 'generated', policy: c.identityPolicy }] : [],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      ...(c.resourcePolicy ? { resourcePolicy: c.resourcePolicy } : {}),
    },
    {},
  );
  if (response.resultType === 'error') throw new Error(`simulation did not run: ${JSON.stringify(response.errors)}`);
  const results = response.resultType === 'single' ? [response.result] : response.results;
  if (results.length === 0) throw new Error(`simulation of ${c.action} produced no result`);
  for (const r of results) {
    if (r.ignoredContextKeys === undefined || r.ignoredContextKeys.length > 0) {
      throw new Error(`${c.action}: context keys ignored by the simulator: ${JSON.stringify(r.ignoredContextKeys)}`);
    }
  }
  return response.overallResult;
}

export interface AssumeRoleRequest {
  principal: string;
  roleArn: string;
  roleAccount: string;
  sourceIdentity?: string;
  sessionName?: string;
  tags?: Record<string, string>;
  transitiveTagKeys?: string[];
  identityPolicy?: PolicyDocument;
  trustPolicy: PolicyDocument;
}

export interface AssumeRoleVerdict {
  decision: Decision;
  /** Per authorised action, as STS checks them: AssumeRole always, TagSession with tags, SetSourceIdentity with one. */
  actions: Record<string, Decision>;
}

/**
 * Models what STS authorises for one AssumeRole call: sts:AssumeRole, plus sts:TagSession when the
 * call carries tags, plus sts:SetSourceIdentity when it carries a source identity. Each action gets
 * the context keys AWS defines for it. The call succeeds only if every action is allowed.
 */
export async function simulateAssumeRole(req: AssumeRoleRequest): Promise<AssumeRoleVerdict> {
  const tagContext: Record<string, string | string[]> = {};
  const tags = req.tags ?? {};
  if (Object.keys(tags).length > 0) {
    tagContext['aws:TagKeys'] = Object.keys(tags);
    for (const [k, v] of Object.entries(tags)) tagContext[`aws:RequestTag/${k}`] = v;
    if (req.transitiveTagKeys && req.transitiveTagKeys.length > 0) tagContext['sts:TransitiveTagKeys'] = req.transitiveTagKeys;
  }
  const sourceIdentity: Record<string, string> = req.sourceIdentity !== undefined ? { 'sts:SourceIdentity': req.sourceIdentity } : {};
  const common = {
    principal: req.principal,
    resource: req.roleArn,
    resourceAccount: req.roleAccount,
    resourcePolicy: req.trustPolicy,
    ...(req.identityPolicy ? { identityPolicy: req.identityPolicy } : {}),
  };
  const actions: Record<string, Decision> = {
    'sts:AssumeRole': await simulate({
      ...common,
      action: 'sts:AssumeRole',
      context: { ...sourceIdentity, ...tagContext, ...(req.sessionName ? { 'sts:RoleSessionName': req.sessionName } : {}) },
    }),
  };
  if (Object.keys(tags).length > 0) actions['sts:TagSession'] = await simulate({ ...common, action: 'sts:TagSession', context: tagContext });
  if (req.sourceIdentity !== undefined) {
    actions['sts:SetSourceIdentity'] = await simulate({ ...common, action: 'sts:SetSourceIdentity', context: sourceIdentity });
  }
  const decisions = Object.values(actions);
  const decision: Decision = decisions.every((d) => d === 'Allowed')
    ? 'Allowed'
    : decisions.includes('ExplicitlyDenied')
      ? 'ExplicitlyDenied'
      : 'ImplicitlyDenied';
  return { decision, actions };
}
