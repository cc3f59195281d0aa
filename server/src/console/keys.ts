// Static IAM user keys for the console: the rotation inventory, IAM users that no rotation entry
// manages (with their keys' ages), the latest delivery to each sink (from the audit trail), and a
// dry run or a rotation of one user. The rotation code does the work; this only gathers it.
import type { Registry } from 'prom-client';
import type { IamKeys } from '../aws/iam.js';
import type { AuditSink } from '../audit/types.js';
import type { Logger } from '../log.js';
import type { RotationConfig } from '../rotation/config-schema.js';
import type { InventoryUser, PlannedUser, RunReport } from '../rotation/run.js';
import type { DiscoveryProblem } from '../rotation/users.js';
import type { Store } from '../store/index.js';

export interface UnmanagedUser {
  userName: string;
  arn: string;
  keys: Array<{ accessKeyId: string; status: string; ageSeconds: number }>;
}

export interface ConsoleKeys {
  inventory(): Promise<{ users: InventoryUser[]; problems: DiscoveryProblem[] }>;
  /** IAM users with access keys that no rotation.users entry matches (at most `limit`). */
  unmanaged(limit: number): Promise<UnmanagedUser[]>;
  plan(user: string): Promise<{ users: PlannedUser[]; problems: DiscoveryProblem[] }>;
  rotate(user: string): Promise<RunReport>;
}

export function consoleKeys(deps: {
  config: RotationConfig;
  store: Store;
  /** Built at first use (the SDK client), like the admin API's. */
  iam: () => IamKeys | Promise<IamKeys>;
  /** The broker's audit sink, logger and metrics (it exists once the broker does). */
  runtime: () => { audit: AuditSink; logger: Logger; registry: Registry };
  now?: () => Date;
}): ConsoleKeys {
  const now = deps.now ?? (() => new Date());
  // Rotation's code (IAM, sinks) is loaded when the page is first opened, as for the admin API.
  const run = () => import('../rotation/run.js');
  const base = async () => ({ config: deps.config, store: deps.store, iam: await deps.iam(), logger: deps.runtime().logger, now });
  return {
    inventory: async () => (await run()).inventory(await base()),
    async unmanaged(limit) {
      const iam = await deps.iam();
      const managed = new Set((await (await run()).inventory(await base())).users.map((u) => u.userName));
      const out: UnmanagedUser[] = [];
      for (const u of await iam.listUsers('/')) {
        if (managed.has(u.userName)) continue;
        const keys = await iam.listAccessKeys(u.userName);
        if (keys.length === 0) continue;
        const t = now().getTime();
        out.push({ userName: u.userName, arn: u.arn, keys: keys.map((k) => ({ accessKeyId: k.accessKeyId, status: k.status, ageSeconds: Math.floor((t - k.createDate.getTime()) / 1000) })) });
        if (out.length >= limit) break;
      }
      return out;
    },
    plan: async (user) => (await run()).planRotation(await base(), { users: [user], force: true, checkSinks: true }),
    // A holder of its own, as the admin API's rotate: a run in progress on this replica refuses it.
    async rotate(user) {
      const { runRotation, defaultHolder } = await run();
      return runRotation({ ...(await base()), audit: deps.runtime().audit, registry: deps.runtime().registry, holder: defaultHolder() }, { users: [user], force: true });
    },
  };
}
