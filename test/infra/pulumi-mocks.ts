// Pulumi mocks that behave like AWS where the program can tell: IAM ARNs are built from the
// account of the provider that creates the resource, its path and its name. Every registration
// is recorded (type, logical name, inputs, provider) for assertions.
import * as pulumi from '@pulumi/pulumi';

export const HOME_ACCOUNT = '111111111111';

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
            state.arn = `arn:aws:iam::${account}:role${args.inputs.path ?? '/'}${args.inputs.name}`;
            break;
          case 'aws:iam/user:User':
            state.arn = `arn:aws:iam::${account}:user${args.inputs.path ?? '/'}${args.inputs.name}`;
            break;
          case 'aws:iam/instanceProfile:InstanceProfile':
            state.arn = `arn:aws:iam::${account}:instance-profile${args.inputs.path ?? '/'}${args.inputs.name}`;
            break;
        }
        return { id: `${args.name}-id`, state };
      },
      call(args) {
        if (args.token === 'aws:index/getCallerIdentity:getCallerIdentity') {
          return { accountId: homeAccount, arn: `arn:aws:iam::${homeAccount}:user/pulumi-deployer`, userId: 'AIDAEXAMPLE', id: homeAccount };
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
