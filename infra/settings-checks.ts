// Cross-field checks of parsed stack settings: names AWS accepts, paths that keep the broker away
// from its own role, references between sections, and tag/source-identity rules the broker shares.
// Each problem is appended with its path; nothing throws here.
import {
  ACCOUNT_ID_RE,
  BROKER_ROLE_KEY_RE,
  IAM_NAME_RE,
  MANAGED_POLICY_ARN_RE,
  OIDC_PROVIDER_ARN_RE,
  MAX_SESSION_TAGS,
  PRINCIPAL_ARN_RE,
  ROLE_ARN_RE,
  SOURCE_IDENTITY_CHARS_RE,
  SOURCE_IDENTITY_PATTERN_RE,
  iamPathProblem,
  pathsOverlap,
  tagKeyProblem,
} from './names.js';
import type { StackSettings, TargetRoleSettings } from './settings.js';

/** The inline policy the broker writes onto a target role to revoke its sessions. */
export const REVOCATION_POLICY_NAME = 'AWSRevokeOlderSessions';

export function checkSettings(s: StackSettings, problems: string[]): void {
  const add = (path: string, message: string | undefined) => {
    if (message !== undefined) problems.push(`${path}: ${message}`);
  };

  add('broker.path', iamPathProblem(s.broker.path));
  add('broker.roleName', IAM_NAME_RE.test(s.broker.roleName) ? undefined : 'expected an IAM role name (1–64 of [A-Za-z0-9_+=,.@-])');
  if (s.broker.trustedServices.length === 0 && s.broker.trustedPrincipalArns.length === 0 && s.broker.eksServiceAccounts.length === 0) {
    add('broker', 'nothing could run as the broker: give trustedServices, trustedPrincipalArns or eksServiceAccounts');
  }
  s.broker.eksServiceAccounts.forEach((sa, i) => {
    const path = `broker.eksServiceAccounts[${i}]`;
    add(`${path}.oidcProviderArn`, OIDC_PROVIDER_ARN_RE.test(sa.oidcProviderArn) ? undefined : 'expected arn:aws:iam::<account>:oidc-provider/<issuer host and path>');
    for (const key of ['namespace', 'serviceAccount'] as const) {
      add(`${path}.${key}`, /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(sa[key]) ? undefined : 'expected a Kubernetes name (lower-case letters, digits, "-")');
    }
  });
  s.broker.trustedPrincipalArns.forEach((arn, i) =>
    add(`broker.trustedPrincipalArns[${i}]`, PRINCIPAL_ARN_RE.test(arn) ? undefined : 'expected an IAM principal ARN (role, user or account root)'),
  );

  add('targetRolePath', iamPathProblem(s.targetRolePath));
  if (s.targetRolePath === '/') add('targetRolePath', 'must not be "/": the broker could then assume every role in the account');
  else if (!iamPathProblem(s.targetRolePath) && !iamPathProblem(s.broker.path) && pathsOverlap(s.targetRolePath, s.broker.path)) {
    add('broker.path', `must not overlap targetRolePath (${s.targetRolePath}): the broker could assume or rewrite its own role`);
  }

  for (const [name, a] of Object.entries(s.accounts)) {
    add(`accounts.${name}.accountId`, ACCOUNT_ID_RE.test(a.accountId) ? undefined : 'expected a 12-digit account id (quote it in YAML)');
    if (a.deployRoleArn !== undefined) {
      const m = ROLE_ARN_RE.exec(a.deployRoleArn);
      if (!m) add(`accounts.${name}.deployRoleArn`, 'expected arn:aws:iam::<account>:role/<name>');
      else if (m[1] !== a.accountId) add(`accounts.${name}.deployRoleArn`, `is in account ${m[1]}, not ${a.accountId}`);
    }
  }

  const roleNamesByAccount = new Map<string, string>();
  roleNamesByAccount.set(`:${s.broker.roleName.toLowerCase()}`, 'broker.roleName');
  for (const r of s.roles) checkRole(r, s, roleNamesByAccount, add);

  const r = s.rotation;
  add('rotation.path', iamPathProblem(r.path));
  if (r.enabled && r.path === '/' && (r.match === 'path' || r.match === 'path-or-tag')) {
    add('rotation.path', `must not be "/" with match "${r.match}": the broker could rotate every user's keys`);
  }
  add('rotation.tagKey', tagKeyProblem(r.tagKey));
  if (!r.enabled && s.staticUsers.length > 0) add('staticUsers', 'static users need rotation.enabled: nobody would ever give them a key');

  const userNames = new Map<string, string>();
  for (const u of s.staticUsers) {
    const path = `staticUsers.${u.key}`;
    add(`${path}.userName`, IAM_NAME_RE.test(u.userName) ? undefined : 'expected an IAM user name (1–64 of [A-Za-z0-9_+=,.@-])');
    const prior = userNames.get(u.userName.toLowerCase());
    if (prior) add(`${path}.userName`, `"${u.userName}" is also ${prior} (IAM user names are case-insensitive)`);
    userNames.set(u.userName.toLowerCase(), path);
    checkPermissions(path, u, add);
    if (r.tagKey in u.tags) add(`${path}.tags.${r.tagKey}`, 'is the rotation tag; it is set by the component');
  }
}

function checkRole(
  r: TargetRoleSettings,
  s: StackSettings,
  seen: Map<string, string>,
  add: (path: string, message: string | undefined) => void,
): void {
  const path = `roles.${r.key}`;
  add(path, BROKER_ROLE_KEY_RE.test(r.key) ? undefined : 'role key must match [A-Za-z0-9_.-]+ (it is the broker config role name)');
  add(`${path}.roleName`, IAM_NAME_RE.test(r.roleName) ? undefined : 'expected an IAM role name (1–64 of [A-Za-z0-9_+=,.@-])');
  if (r.account !== undefined && !(r.account in s.accounts)) {
    add(`${path}.account`, `unknown account "${r.account}" (known: ${Object.keys(s.accounts).join(', ') || 'none'})`);
  }
  const nameKey = `${r.account ?? ''}:${r.roleName.toLowerCase()}`;
  const prior = seen.get(nameKey);
  if (prior) add(`${path}.roleName`, `"${r.roleName}" is also ${prior} in the same account (IAM role names are unique, case-insensitively)`);
  seen.set(nameKey, path);
  checkPermissions(path, r, add);
  if (REVOCATION_POLICY_NAME in r.inlinePolicies) {
    add(`${path}.inlinePolicies.${REVOCATION_POLICY_NAME}`, 'is the name the broker uses to revoke sessions; choose another');
  }

  const keys = Object.keys(r.sessionTags);
  if (keys.length > MAX_SESSION_TAGS) add(`${path}.sessionTags`, `${keys.length} tags; STS allows ${MAX_SESSION_TAGS}`);
  const folded = new Map<string, string>();
  for (const k of keys) {
    add(`${path}.sessionTags.${k}`, tagKeyProblem(k));
    const other = folded.get(k.toLowerCase());
    if (other !== undefined) add(`${path}.sessionTags.${k}`, `collides with "${other}" (session tag keys are case-insensitive)`);
    folded.set(k.toLowerCase(), k);
    if (r.sessionTags[k]!.length === 0) add(`${path}.sessionTags.${k}`, 'empty template');
  }
  for (const k of Object.keys(r.sessionTagValues)) {
    if (!(k in r.sessionTags)) add(`${path}.sessionTagValues.${k}`, 'not a key of sessionTags');
  }
  r.transitiveTagKeys.forEach((k, i) => {
    if (!(k in r.sessionTags)) add(`${path}.transitiveTagKeys[${i}]`, `"${k}" is not a key of sessionTags`);
  });

  if (r.sourceIdentity !== undefined) {
    const brace = r.sourceIdentity.indexOf('{');
    const prefix = brace === -1 ? r.sourceIdentity : r.sourceIdentity.slice(0, brace);
    if (!SOURCE_IDENTITY_CHARS_RE.test(prefix) || prefix.includes('--') || prefix.length > 53 || /^aws:/i.test(prefix)) {
      add(`${path}.sourceIdentity`, 'its leading literal must be at most 53 of [A-Za-z0-9_+=,.@-] without "--" (the broker keeps it verbatim)');
    }
  }
  if (!SOURCE_IDENTITY_PATTERN_RE.test(r.sourceIdentityPattern)) {
    add(`${path}.sourceIdentityPattern`, 'expected 1–64 of [A-Za-z0-9_+=,.@-] and the wildcards * ?');
  }
}

function checkPermissions(
  path: string,
  p: { managedPolicyArns: string[]; inlinePolicies: Record<string, unknown>; permissionsBoundaryArn?: string | undefined },
  add: (path: string, message: string | undefined) => void,
): void {
  p.managedPolicyArns.forEach((arn, i) =>
    add(`${path}.managedPolicyArns[${i}]`, MANAGED_POLICY_ARN_RE.test(arn) ? undefined : 'expected arn:aws:iam::(aws|<account>):policy/<name>'),
  );
  for (const name of Object.keys(p.inlinePolicies)) {
    add(`${path}.inlinePolicies.${name}`, /^[\w+=,.@-]{1,128}$/.test(name) ? undefined : 'policy name must be 1–128 of [A-Za-z0-9_+=,.@-]');
  }
  if (p.permissionsBoundaryArn !== undefined && !MANAGED_POLICY_ARN_RE.test(p.permissionsBoundaryArn)) {
    add(`${path}.permissionsBoundaryArn`, 'expected arn:aws:iam::(aws|<account>):policy/<name>');
  }
}
