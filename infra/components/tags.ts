// Tags every credbroker resource carries, so the security team can find them in the console.
export function resourceTags(component: string, ...extra: Array<Record<string, string> | undefined>): Record<string, string> {
  return Object.assign({ 'managed-by': 'pulumi', 'credbroker:component': component }, ...extra.filter(Boolean));
}

/** A logical-name fragment from a policy ARN or name ("arn:…:policy/team/ReadOnly" → "ReadOnly"). */
export const policyShortName = (arnOrName: string): string => arnOrName.slice(arnOrName.lastIndexOf('/') + 1);
