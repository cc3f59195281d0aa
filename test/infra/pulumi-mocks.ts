// Pulumi mocks that behave like AWS where the program can tell: IAM ARNs are built from the
// account of the provider that creates the resource, its path and its name. Every registration
// is recorded (type, logical name, inputs, provider) for assertions.
import * as pulumi from '@pulumi/pulumi';

export const HOME_ACCOUNT = '111111111111';
export const MOCK_REGION = 'us-east-1';

/** What AWS would report for the service's resources: ids, ARNs, names, DNS names. */
function serviceState(type: string, name: string, inputs: Record<string, any>, account: string): Record<string, unknown> {
  const region = MOCK_REGION;
  switch (type) {
    case 'aws:ec2/securityGroup:SecurityGroup':
      return { id: `sg-${name}` };
    case 'aws:ec2/vpc:Vpc':
      return { id: `vpc-${name}` };
    case 'aws:ec2/subnet:Subnet':
      return { id: `subnet-${name}` };
    case 'aws:lb/loadBalancer:LoadBalancer':
      return {
        arn: `arn:aws:elasticloadbalancing:${region}:${account}:loadbalancer/app/${name}/0123456789abcdef`,
        arnSuffix: `app/${name}/0123456789abcdef`,
        dnsName: `${name}-1234567890.${region}.elb.amazonaws.com`,
        zoneId: 'Z35SXDOTRQ7X7K',
      };
    case 'aws:lb/targetGroup:TargetGroup':
      return { arn: `arn:aws:elasticloadbalancing:${region}:${account}:targetgroup/${name}/fedcba9876543210`, arnSuffix: `targetgroup/${name}/fedcba9876543210` };
    case 'aws:lb/listener:Listener':
      return { arn: `arn:aws:elasticloadbalancing:${region}:${account}:listener/app/${name}` };
    case 'aws:rds/instance:Instance':
      return {
        address: `${name}.c0ffee.${region}.rds.amazonaws.com`,
        port: 5432,
        masterUserSecrets: [{ secretArn: `arn:aws:secretsmanager:${region}:${account}:secret:rds!db-${name}-AbCdEf`, kmsKeyId: 'aws/secretsmanager', secretStatus: 'active' }],
      };
    case 'aws:rds/subnetGroup:SubnetGroup':
    case 'aws:rds/parameterGroup:ParameterGroup':
      return { name: inputs.name ?? name };
    case 'aws:secretsmanager/secret:Secret':
      return { arn: `arn:aws:secretsmanager:${region}:${account}:secret:${inputs.namePrefix ?? ''}${name}-AbCdEf` };
    case 'aws:cloudwatch/logGroup:LogGroup': {
      const logName = inputs.name ?? `${inputs.namePrefix ?? ''}${name}`;
      return { name: logName, arn: `arn:aws:logs:${region}:${account}:log-group:${logName}` };
    }
    case 'aws:ecs/cluster:Cluster':
      return { name, arn: `arn:aws:ecs:${region}:${account}:cluster/${name}` };
    case 'aws:ecs/service:Service':
      return { name };
    case 'aws:ecs/taskDefinition:TaskDefinition':
      return { arn: `arn:aws:ecs:${region}:${account}:task-definition/${inputs.family}:1` };
    case 'aws:ecr/repository:Repository':
      return { repositoryUrl: `${account}.dkr.ecr.${region}.amazonaws.com/${inputs.name}`, arn: `arn:aws:ecr:${region}:${account}:repository/${inputs.name}` };
    default:
      return {};
  }
}

export interface Registration {
  type: string;
  name: string;
  inputs: Record<string, any>;
  /** Logical name of the explicit provider, or undefined for the default provider. */
  providerName: string | undefined;
}

export interface MockWorld {
  registrations: Registration[];
  /** URNs of components that called registerOutputs, with the outputs' keys. */
  registeredOutputs: Map<string, string[]>;
  byType(type: string): Registration[];
  one(type: string, name: string): Registration;
}

const providerNameOf = (ref: string | undefined): string | undefined => {
  if (!ref) return undefined;
  const urn = ref.slice(0, ref.lastIndexOf('::'));
  const name = urn.slice(urn.lastIndexOf('::') + 2);
  return name.startsWith('default') ? undefined : name;
};

export async function installMocks(homeAccount = HOME_ACCOUNT): Promise<MockWorld> {
  const registrations: Registration[] = [];
  const providerAccounts = new Map<string, string>();
  const accountFor = (providerName: string | undefined) => (providerName ? providerAccounts.get(providerName) : homeAccount) ?? 'unknown-account';

  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const providerName = providerNameOf(args.provider);
        registrations.push({ type: args.type, name: args.name, inputs: args.inputs, providerName });
        const account = accountFor(providerName);
        const state: Record<string, unknown> = { ...args.inputs };
        switch (args.type) {
          case 'pulumi:providers:aws':
            providerAccounts.set(args.name, (args.inputs.allowedAccountIds as string[] | string)?.toString().replace(/[[\]"]/g, '') ?? '');
            break;
          case 'aws:iam/role:Role':
            state.name = args.inputs.name ?? `${args.inputs.namePrefix ?? ''}${args.name}`;
            state.arn = `arn:aws:iam::${account}:role${args.inputs.path ?? '/'}${state.name}`;
            break;
          case 'aws:iam/user:User':
            state.arn = `arn:aws:iam::${account}:user${args.inputs.path ?? '/'}${args.inputs.name}`;
            break;
          case 'aws:iam/instanceProfile:InstanceProfile':
            state.arn = `arn:aws:iam::${account}:instance-profile${args.inputs.path ?? '/'}${args.inputs.name}`;
            break;
          default:
            Object.assign(state, serviceState(args.type, args.name, args.inputs, account));
        }
        return { id: (state.id as string | undefined) ?? `${args.name}-id`, state };
      },
      call(args) {
        if (args.token === 'aws:index/getCallerIdentity:getCallerIdentity') {
          return { accountId: homeAccount, arn: `arn:aws:iam::${homeAccount}:user/pulumi-deployer`, userId: 'AIDAEXAMPLE', id: homeAccount };
        }
        if (args.token === 'aws:index/getRegion:getRegion') return { name: MOCK_REGION, region: MOCK_REGION, id: MOCK_REGION };
        if (args.token === 'aws:index/getAvailabilityZones:getAvailabilityZones') {
          return { names: ['a', 'b', 'c'].map((z) => `${MOCK_REGION}${z}`), zoneIds: ['use1-az1', 'use1-az2', 'use1-az4'], id: MOCK_REGION };
        }
        throw new Error(`unexpected call ${args.token}`);
      },
    },
    'credbroker',
    'test',
    false,
  );

  // Observe registerOutputs: the mock monitor is the runtime's monitor once mocks are set.
  const registeredOutputs = new Map<string, string[]>();
  const monitor = pulumi.runtime.getMonitor() as unknown as {
    registerResourceOutputs(req: { getUrn(): string; getOutputs(): { toJavaScript(): Record<string, unknown> } | undefined }, cb: unknown): void;
  };
  const original = monitor.registerResourceOutputs.bind(monitor);
  monitor.registerResourceOutputs = (req, cb) => {
    registeredOutputs.set(req.getUrn(), Object.keys(req.getOutputs()?.toJavaScript() ?? {}));
    return original(req, cb);
  };

  return {
    registrations,
    registeredOutputs,
    byType: (type) => registrations.filter((r) => r.type === type),
    one(type, name) {
      const found = registrations.filter((r) => r.type === type && r.name === name);
      if (found.length !== 1) throw new Error(`expected one ${type} named ${name}, found ${found.length}: ${registrations.map((r) => `${r.type}/${r.name}`).join(', ')}`);
      return found[0]!;
    },
  };
}

/** The value of an Output (mocks resolve everything; preview is off). */
export function valueOf<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => output.apply((v) => resolve(v)));
}

/** Waits until the program's registrations settle. */
export const settle = (ms = 50): Promise<void> => new Promise((r) => setTimeout(r, ms));
