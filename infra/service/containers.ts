// The ECS task's two containers, as the task definition spells them. Pure, so tests read the
// security-relevant settings directly.
// - `config` writes the broker config from Secrets Manager into a volume shared with the broker,
//   then exits (Fargate has no other way to hand a file to a container). It runs the broker image's
//   own node, as root only because Fargate's task volumes are writable by root alone.
// - `broker` runs `credbroker serve` as uid 10001 with a read-only root filesystem, no Linux
//   capabilities, the config volume mounted read-only, and its secrets as environment variables.
import { IMAGE_PATHS, PORTS, SECRET_ENV } from './broker-config.js';
import { tokenEnvName } from './settings.js';

export interface ContainerInput {
  /** repository@sha256:… */
  image: string;
  region: string;
  logGroupName: string;
  configSecretArn: string;
  /** Changes with the config, so that a new config rolls the service. */
  configSha256: string;
  /** The RDS-managed secret of the master user (JSON with `password`). */
  databaseSecretArn: string;
  admin?: { tokenHashesSecretArn: string; tokenNames: string[] } | undefined;
  auditHmacKeySecretArn?: string | undefined;
  stopTimeoutSeconds: number;
}

export const CONFIG_VOLUME = 'credbroker-config';

const WRITE_CONFIG = [
  "const fs = require('fs');",
  `const text = process.env.${SECRET_ENV.config};`,
  "if (!text) { console.error('config: the config secret is empty'); process.exit(1); }",
  `fs.writeFileSync('${IMAGE_PATHS.configFile}', text, { mode: 0o444 });`,
  `console.log('config: wrote ${IMAGE_PATHS.configFile}, sha256 ' + process.env.CREDBROKER_CONFIG_SHA256);`,
].join(' ');

export function containerDefinitions(i: ContainerInput): Array<Record<string, unknown>> {
  const logs = (prefix: string) => ({
    logDriver: 'awslogs',
    options: { 'awslogs-group': i.logGroupName, 'awslogs-region': i.region, 'awslogs-stream-prefix': prefix },
  });
  const hardening = {
    readonlyRootFilesystem: true,
    privileged: false,
    linuxParameters: { capabilities: { drop: ['ALL'] }, initProcessEnabled: true },
  };
  const secrets: Array<{ name: string; valueFrom: string }> = [{ name: SECRET_ENV.dbPassword, valueFrom: `${i.databaseSecretArn}:password::` }];
  for (const name of i.admin?.tokenNames ?? []) {
    secrets.push({ name: tokenEnvName(name), valueFrom: `${i.admin!.tokenHashesSecretArn}:${name}::` });
  }
  if (i.auditHmacKeySecretArn) secrets.push({ name: SECRET_ENV.auditHmacKey, valueFrom: i.auditHmacKeySecretArn });

  return [
    {
      name: 'config',
      image: i.image,
      essential: false,
      user: '0',
      entryPoint: ['node', '-e', WRITE_CONFIG],
      command: [],
      environment: [{ name: 'CREDBROKER_CONFIG_SHA256', value: i.configSha256 }],
      secrets: [{ name: SECRET_ENV.config, valueFrom: i.configSecretArn }],
      mountPoints: [{ sourceVolume: CONFIG_VOLUME, containerPath: IMAGE_PATHS.configDir, readOnly: false }],
      logConfiguration: logs('config'),
      ...hardening,
    },
    {
      name: 'broker',
      image: i.image,
      essential: true,
      user: '10001:10001',
      // The image's ENTRYPOINT and CMD: credbroker serve --config /etc/credbroker/config.yaml.
      dependsOn: [{ containerName: 'config', condition: 'SUCCESS' }],
      portMappings: [
        { containerPort: PORTS.public, protocol: 'tcp', name: 'public' },
        ...(i.admin ? [{ containerPort: PORTS.admin, protocol: 'tcp', name: 'admin' }] : []),
      ],
      environment: [
        { name: 'CREDBROKER_CONFIG_SHA256', value: i.configSha256 },
        { name: 'CREDBROKER_HEALTHCHECK_URL', value: `http://127.0.0.1:${PORTS.public}/healthz` },
      ],
      secrets,
      mountPoints: [{ sourceVolume: CONFIG_VOLUME, containerPath: IMAGE_PATHS.configDir, readOnly: true }],
      healthCheck: { command: ['CMD', 'node', IMAGE_PATHS.healthcheck], interval: 15, timeout: 5, retries: 3, startPeriod: 30 },
      stopTimeout: i.stopTimeoutSeconds,
      logConfiguration: logs('broker'),
      ...hardening,
    },
  ];
}
