// The README's GitHub Actions walkthrough in one piece: the Pulumi stack config it shows is valid,
// and the broker config's `roles:` section is exactly what that stack emits (brokerRolesYaml), so
// following the walkthrough gives a broker whose roles match the IAM roles' trust.
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseStackSettings } from '../../infra/settings.js';
import { brokerRolesConfig } from '../../infra/broker-roles-config.js';
import { fences, read } from './markdown.js';

function writtenFile(name: string): string {
  const block = fences('README.md', read('README.md')).find((f) => f.marker === `file ${name}`);
  if (!block) throw new Error(`README.md has no block marked "file ${name}"`);
  return block.body;
}

describe('README walkthrough: GitHub Actions to AWS', () => {
  const stack = (parseYaml(writtenFile('Pulumi.prod.yaml')) as { config: Record<string, unknown> }).config;
  const broker = parseYaml(writtenFile('credbroker.yaml')) as { roles: Record<string, { arn: string }> };
  // What infra/index.ts reads: the `credbroker:` namespace of the stack config.
  const raw = Object.fromEntries(
    Object.entries(stack)
      .filter(([k]) => k.startsWith('credbroker:'))
      .map(([k, v]) => [k.slice('credbroker:'.length), v]),
  );

  it('shows a stack config the Pulumi program accepts', () => {
    expect(() => parseStackSettings(raw)).not.toThrow();
  });

  it("shows the broker config's roles: section exactly as the stack emits it", () => {
    const settings = parseStackSettings(raw);
    const arns = Object.fromEntries(Object.entries(broker.roles).map(([k, r]) => [k, r.arn]));
    expect(broker.roles).toEqual(JSON.parse(JSON.stringify(brokerRolesConfig(settings.roles, arns))));
    // The ARN is the one the stack creates: the target role path, the role's key as its name.
    for (const [key, arn] of Object.entries(arns)) expect(arn).toMatch(new RegExp(`^arn:aws:iam::\\d{12}:role${settings.targetRolePath}${key}$`));
  });
});
