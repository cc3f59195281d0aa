// The credbroker stack program: reads the `credbroker:*` stack config, validates all of it at
// once, creates the resources and exports the ARNs plus the broker config's `roles:` section.
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import { parseStackSettings } from './settings.js';
import { createCredbrokerStack } from './stack.js';
import { partitionOf } from './policies/arns.js';

const config = new pulumi.Config('credbroker');
const OBJECT_KEYS = ['broker', 'accounts', 'roles', 'rotation', 'staticUsers', 'tags', 'service'] as const;

const raw: Record<string, unknown> = {};
for (const key of OBJECT_KEYS) {
  const value = config.getObject<unknown>(key);
  if (value !== undefined) raw[key] = value;
}
const targetRolePath = config.get('targetRolePath');
if (targetRolePath !== undefined) raw.targetRolePath = targetRolePath;
const revocation = config.getBoolean('revocation');
if (revocation !== undefined) raw.revocation = revocation;

const settings = parseStackSettings(raw);
const caller = aws.getCallerIdentityOutput();
const stack = createCredbrokerStack(settings, { accountId: caller.accountId, partition: caller.arn.apply(partitionOf), region: aws.getRegionOutput().region });

export const brokerRoleArn = stack.outputs.brokerRoleArn;
export const brokerRoleName = stack.outputs.brokerRoleName;
export const brokerInstanceProfileName = stack.outputs.brokerInstanceProfileName;
export const targetRoleArns = stack.outputs.targetRoleArns;
export const staticUserArns = stack.outputs.staticUserArns;
export const brokerRoles = stack.outputs.brokerRoles;
export const brokerRolesYaml = stack.outputs.brokerRolesYaml;
// The deployed broker (credbroker:service); undefined until it is configured.
export const serviceUrl = stack.outputs.service.url;
export const loadBalancerDnsName = stack.outputs.service.loadBalancerDnsName;
export const adminUrl = stack.outputs.service.adminUrl;
export const adminLoadBalancerDnsName = stack.outputs.service.adminLoadBalancerDnsName;
export const ecrRepositoryUrl = stack.outputs.service.ecrRepositoryUrl;
export const clusterName = stack.outputs.service.clusterName;
export const serviceName = stack.outputs.service.serviceName;
export const logGroupName = stack.outputs.service.logGroupName;
export const configSecretArn = stack.outputs.service.configSecretArn;
export const databaseSecretArn = stack.outputs.service.databaseSecretArn;
export const brokerConfigYaml = stack.outputs.service.brokerConfigYaml;
