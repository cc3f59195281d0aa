// The whole broker config of the deployed service, written by the stack: the operator's part
// (`service.brokerConfig`: issuers, deny rules, tuning) plus everything the stack knows better —
// the generated `roles:` section (the same one the trust policies were built from, so the two
// cannot drift), the listeners behind the load balancers, the PostgreSQL store over verified TLS,
// the audit chain and the admin tokens. Secrets never appear in it: `${NAME}` placeholders are
// filled from the task's environment, which ECS fills from Secrets Manager. Pure.
import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import type { BrokerRoleEntry } from '../broker-roles-config.js';
import { tokenEnvName, type ServiceSettings } from './settings.js';

/** Where things are inside the container image (see the Dockerfile). */
export const IMAGE_PATHS = {
  configDir: '/etc/credbroker',
  configFile: '/etc/credbroker/config.yaml',
  rdsCaBundle: '/opt/credbroker/certs/rds-ca-bundle.pem',
  healthcheck: '/opt/credbroker/healthcheck.mjs',
} as const;
export const PORTS = { public: 8080, admin: 8081 } as const;
export const DATABASE = { name: 'credbroker', user: 'credbroker' } as const;
/** Environment variables the task gets from Secrets Manager. */
export const SECRET_ENV = { dbPassword: 'PGPASSWORD', auditHmacKey: 'CREDBROKER_AUDIT_HMAC_KEY', config: 'CREDBROKER_CONFIG_YAML' } as const;

export interface ServiceConfigInput {
  service: ServiceSettings;
  roles: Record<string, BrokerRoleEntry>;
  /** The stack's region: the broker's default STS region. */
  region: string;
  database: { address: string; port: number };
}

/** The PostgreSQL URL: no password (node-postgres reads PGPASSWORD), TLS verified against the RDS CAs. */
export function postgresUrl(address: string, port: number): string {
  return `postgres://${DATABASE.user}@${address}:${port}/${DATABASE.name}?sslmode=verify-full&sslrootcert=${IMAGE_PATHS.rdsCaBundle}`;
}

export function brokerServiceConfig(i: ServiceConfigInput): Record<string, unknown> {
  const own = i.service.brokerConfig as Record<string, Record<string, unknown> | undefined>;
  const admin = i.service.admin;
  return {
    ...own,
    server: {
      // Idle connections are closed by the load balancer, never first by the broker.
      keep_alive_timeout_ms: (i.service.loadBalancer.idleTimeoutSeconds + 5) * 1000,
      ...own.server,
      host: '0.0.0.0',
      port: PORTS.public,
      trust_proxy: i.service.loadBalancer.trustProxyHops,
    },
    aws: { region: i.region, ...own.aws },
    store: { driver: 'postgres', postgres_url: postgresUrl(i.database.address, i.database.port) },
    // Hash-chained in the database, keyed with a secret the database never holds; signed
    // checkpoints of the chain head go to the log stream (CloudWatch), out of the database's reach.
    audit: { sink: 'store', hmac_key_env: SECRET_ENV.auditHmacKey },
    admin: admin.enabled
      ? {
          enabled: true,
          // Plain HTTP inside the VPC: only the internal load balancer's security group reaches this
          // port, and that load balancer terminates TLS. The broker says so at every start.
          host: '0.0.0.0',
          allow_insecure_non_loopback: true,
          port: PORTS.admin,
          tokens: admin.tokens.map((t) => ({ name: t.name, sha256: `\${${tokenEnvName(t.name)}}`, scopes: t.scopes })),
        }
      : { enabled: false },
    roles: i.roles,
  };
}

export function brokerServiceConfigYaml(config: Record<string, unknown>): string {
  return (
    '# Written by the credbroker Pulumi stack (infra/): edit the stack config and run `pulumi up`.\n' +
    '# ${NAME} placeholders are filled from the task environment (Secrets Manager).\n' +
    stringify(config)
  );
}

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');
