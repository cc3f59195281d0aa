// The deployed broker (BrokerService) as the stack program creates it from the sample stack file,
// under Pulumi mocks: every security-relevant property of every resource, read from what the
// program registers — and the broker config it writes, loaded by the real `credbroker config
// validate`.
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import { parse } from 'yaml';
import { installMocks, settle, valueOf, HOME_ACCOUNT, type MockWorld, type Registration } from './pulumi-mocks.js';
import { asRuntimeConfig, stackFileConfig } from './stack-config.js';
import { publicIngressProblems, wildcardProblems, type IngressRule } from './security-checks.js';
import { sha256 } from '../../infra/service/broker-config.js';

let world: MockWorld;
let outputs: { brokerRoleArn: string; brokerRoles: Record<string, unknown>; brokerConfigYaml: string; serviceUrl: string; ecrRepositoryUrl: string };

beforeAll(async () => {
  world = await installMocks();
  pulumi.runtime.setAllConfig(asRuntimeConfig(stackFileConfig()));
  const program = await import('../../infra/index.js');
  outputs = {
    brokerRoleArn: await valueOf(program.brokerRoleArn),
    brokerRoles: await valueOf(program.brokerRoles),
    brokerConfigYaml: (await valueOf(program.brokerConfigYaml))!,
    serviceUrl: (await valueOf(program.serviceUrl))!,
    ecrRepositoryUrl: (await valueOf(program.ecrRepositoryUrl))!,
  };
  await settle(200);
});

const all = (type: string) => world.byType(type);
const one = (type: string, name: string) => world.one(type, name).inputs;
const sgId = (name: string) => `sg-broker-service-${name}`;
const ingressRules = (): Array<IngressRule & { name: string }> =>
  all('aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule').map((r) => ({ name: r.name, ...(r.inputs as IngressRule) }));
const containers = () => JSON.parse(one('aws:ecs/taskDefinition:TaskDefinition', 'broker-service-task').containerDefinitions) as Array<Record<string, any>>;

describe('tasks', () => {
  it('run at least two, in private subnets of two availability zones, without public IPs', () => {
    const service = one('aws:ecs/service:Service', 'broker-service-service');
    expect(service.desiredCount).toBeGreaterThanOrEqual(2);
    expect(service.launchType).toBe('FARGATE');
    expect(service.networkConfiguration.assignPublicIp).toBe(false);
    const subnets = service.networkConfiguration.subnets as string[];
    const zones = subnets.map((id) => world.registrations.find((r) => r.type === 'aws:ec2/subnet:Subnet' && `subnet-${r.name}` === id)!.inputs);
    expect(zones.every((z) => z.name === undefined && z.mapPublicIpOnLaunch === false)).toBe(true);
    expect(subnets.every((id) => id.includes('-private-'))).toBe(true);
    expect(new Set(zones.map((z) => z.availabilityZone)).size).toBeGreaterThanOrEqual(2);
    expect(one('aws:appautoscaling/target:Target', 'broker-service-scaling').minCapacity).toBeGreaterThanOrEqual(2);
  });

  it('run as the broker identity (task role), with an execution role of their own', () => {
    const task = one('aws:ecs/taskDefinition:TaskDefinition', 'broker-service-task');
    expect(task.taskRoleArn).toBe(outputs.brokerRoleArn);
    expect(task.executionRoleArn).not.toBe(outputs.brokerRoleArn);
    expect(task.requiresCompatibilities).toEqual(['FARGATE']);
  });

  it('roll out with a circuit breaker that rolls back, never below the running count', () => {
    const service = one('aws:ecs/service:Service', 'broker-service-service');
    expect(service.deploymentCircuitBreaker).toEqual({ enable: true, rollback: true });
    expect(service.deploymentMinimumHealthyPercent).toBe(100);
    expect(service.enableExecuteCommand).toBe(false);
  });

  it('run the image by digest, non-root, on a read-only root filesystem, with no Linux capability', () => {
    const digest = (stackFileConfig()['credbroker:service'] as { image: { digest: string } }).image.digest;
    for (const c of containers()) {
      expect(c.image).toBe(`${outputs.ecrRepositoryUrl}@${digest}`);
      expect(c.readonlyRootFilesystem).toBe(true);
      expect(c.privileged).toBe(false);
      expect(c.linuxParameters.capabilities.drop).toEqual(['ALL']);
      expect(c.linuxParameters.capabilities.add).toBeUndefined();
    }
    const [config, broker] = containers();
    expect(broker!.user).toBe('10001:10001');
    expect(broker!.essential).toBe(true);
    // The config writer is the only root process, exits first, and the broker mounts its output read-only.
    expect(config!.essential).toBe(false);
    expect(broker!.dependsOn).toEqual([{ containerName: 'config', condition: 'SUCCESS' }]);
    expect(broker!.mountPoints).toEqual([{ sourceVolume: 'credbroker-config', containerPath: '/etc/credbroker', readOnly: true }]);
    expect(broker!.healthCheck.command).toEqual(['CMD', 'node', '/opt/credbroker/healthcheck.mjs']);
    expect(broker!.stopTimeout).toBeGreaterThan(15 + 2); // server.request_timeout_ms + the drain margin
  });

  it('get every secret from Secrets Manager, never as a plain value', () => {
    const [config, broker] = containers();
    const plain = [...config!.environment, ...broker!.environment].map((e: { name: string }) => e.name);
    expect(plain.sort()).toEqual(['CREDBROKER_CONFIG_SHA256', 'CREDBROKER_CONFIG_SHA256', 'CREDBROKER_HEALTHCHECK_URL']);
    expect(broker!.secrets.map((s: { name: string }) => s.name).sort()).toEqual([
      'CREDBROKER_ADMIN_TOKEN_SHA256_ALICE',
      'CREDBROKER_ADMIN_TOKEN_SHA256_BOB',
      'CREDBROKER_AUDIT_HMAC_KEY',
      'PGPASSWORD',
    ]);
    for (const s of [...config!.secrets, ...broker!.secrets]) expect(s.valueFrom).toMatch(/^arn:aws:secretsmanager:/);
    expect(broker!.secrets.find((s: { name: string }) => s.name === 'PGPASSWORD').valueFrom).toMatch(/:secret:rds!db-.*:password::$/);
  });

  it('roll when the config changes: its hash is in the task definition', () => {
    const [, broker] = containers();
    const hash = broker!.environment.find((e: { name: string }) => e.name === 'CREDBROKER_CONFIG_SHA256').value;
    expect(hash).toBe(sha256(outputs.brokerConfigYaml));
  });

  it('scale on CPU and on requests per target', () => {
    const policies = all('aws:appautoscaling/policy:Policy').map((p) => p.inputs.targetTrackingScalingPolicyConfiguration);
    expect(policies.map((p) => p.predefinedMetricSpecification.predefinedMetricType).sort()).toEqual(['ALBRequestCountPerTarget', 'ECSServiceAverageCPUUtilization']);
    const requests = policies.find((p) => p.predefinedMetricSpecification.predefinedMetricType === 'ALBRequestCountPerTarget');
    expect(requests.predefinedMetricSpecification.resourceLabel).toBe('app/broker-service-alb/0123456789abcdef/targetgroup/broker-service-public/fedcba9876543210');
  });

  it('log to CloudWatch with the configured retention', () => {
    expect(one('aws:cloudwatch/logGroup:LogGroup', 'broker-service-logs').retentionInDays).toBe(90);
    for (const c of containers()) expect(c.logConfiguration.logDriver).toBe('awslogs');
  });
});

describe('load balancers', () => {
  const listenersOf = (lb: string) =>
    all('aws:lb/listener:Listener').filter((l) => l.inputs.loadBalancerArn.includes(`/app/${lb}/`));

  it('the public one is internet-facing and listens on 443 only, HTTPS with a TLS 1.2+ policy and the ACM certificate', () => {
    const alb = one('aws:lb/loadBalancer:LoadBalancer', 'broker-service-alb');
    expect(alb.internal).toBe(false);
    expect(alb.dropInvalidHeaderFields).toBe(true);
    const listeners = listenersOf('broker-service-alb');
    expect(listeners.map((l) => [l.inputs.port, l.inputs.protocol])).toEqual([[443, 'HTTPS']]);
    expect(listeners[0]!.inputs.sslPolicy).toBe('ELBSecurityPolicy-TLS13-1-2-2021-06');
    expect(listeners[0]!.inputs.certificateArn).toMatch(/^arn:aws:acm:us-east-1:111111111111:certificate\//);
  });

  it('the admin one is internal, in private subnets, and only it reaches the admin port', () => {
    const admin = one('aws:lb/loadBalancer:LoadBalancer', 'broker-service-admin-alb');
    expect(admin.internal).toBe(true);
    expect((admin.subnets as string[]).every((s) => s.includes('-private-'))).toBe(true);
    const publicForwards = listenersOf('broker-service-alb').flatMap((l) => l.inputs.defaultActions.map((a: { targetGroupArn?: string }) => a.targetGroupArn));
    expect(publicForwards.every((arn: string) => arn.includes('/broker-service-public/'))).toBe(true);
    const adminListeners = listenersOf('broker-service-admin-alb');
    expect(adminListeners.map((l) => [l.inputs.port, l.inputs.protocol])).toEqual([[443, 'HTTPS']]);
    expect(adminListeners[0]!.inputs.defaultActions[0].targetGroupArn).toContain('/broker-service-admin/');
  });

  it('target only ready tasks and let in-flight exchanges finish when a task leaves', () => {
    for (const tg of all('aws:lb/targetGroup:TargetGroup')) {
      expect(tg.inputs.targetType).toBe('ip');
      expect(tg.inputs.healthCheck).toMatchObject({ path: '/readyz', matcher: '200' });
      expect(tg.inputs.deregistrationDelay).toBeGreaterThanOrEqual(15);
    }
  });
});

describe('security groups', () => {
  it('no public security group opens anything but 443, and only on the public load balancer', () => {
    expect(publicIngressProblems(ingressRules(), [443])).toEqual([]);
    const open = ingressRules().filter((r) => r.cidrIpv4 === '0.0.0.0/0');
    expect(open.map((r) => r.securityGroupId)).toEqual([sgId('alb')]);
  });

  it('the check catches a public rule on another port', () => {
    const bad = [...ingressRules(), { name: 'oops', securityGroupId: sgId('tasks'), cidrIpv4: '0.0.0.0/0', ipProtocol: 'tcp', fromPort: 8080, toPort: 8080 }];
    expect(publicIngressProblems(bad, [443])).toEqual(['oops: opens tcp 8080-8080 to 0.0.0.0/0 (only 443 may be public)']);
    const allPorts = [{ name: 'all', securityGroupId: sgId('alb'), cidrIpv4: '0.0.0.0/0', ipProtocol: '-1' }];
    expect(publicIngressProblems(allPorts, [443])).toEqual(['all: opens all traffic to 0.0.0.0/0 (only 443 may be public)']);
  });

  it('the tasks accept only the load balancers, the database only the tasks', () => {
    const into = (sg: string) => ingressRules().filter((r) => r.securityGroupId === sgId(sg));
    const tasks = into('tasks');
    expect(tasks.every((r) => r.cidrIpv4 === undefined)).toBe(true);
    expect(tasks.map((r) => `${r.referencedSecurityGroupId}:${r.fromPort}`).sort()).toEqual(
      [`${sgId('admin-alb')}:8080`, `${sgId('admin-alb')}:8081`, `${sgId('alb')}:8080`].sort(),
    );
    const db = ingressRules().filter((r) => r.securityGroupId === 'sg-broker-service-db-sg');
    expect(db.map((r) => [r.referencedSecurityGroupId, r.fromPort, r.toPort, r.cidrIpv4])).toEqual([[sgId('tasks'), 5432, 5432, undefined]]);
    const admin = into('admin-alb');
    expect(admin.map((r) => r.cidrIpv4)).toEqual(['10.20.0.0/16']);
  });

  it('no security group has inline rules that would escape these checks', () => {
    for (const sg of all('aws:ec2/securityGroup:SecurityGroup')) {
      expect(sg.inputs.ingress ?? []).toEqual([]);
      expect(sg.inputs.egress ?? []).toEqual([]);
    }
  });
});

describe('database', () => {
  it('is encrypted, private, Multi-AZ, TLS-only, protected from deletion, its password managed by RDS', () => {
    const db = one('aws:rds/instance:Instance', 'broker-service-db');
    expect(db).toMatchObject({
      engine: 'postgres',
      storageEncrypted: true,
      publiclyAccessible: false,
      multiAz: true,
      manageMasterUserPassword: true,
      deletionProtection: true,
      skipFinalSnapshot: false,
      caCertIdentifier: 'rds-ca-rsa2048-g1',
    });
    expect(db.password).toBeUndefined();
    const params = one('aws:rds/parameterGroup:ParameterGroup', 'broker-service-db-params');
    expect(params.parameters).toContainEqual(expect.objectContaining({ name: 'rds.force_ssl', value: '1' }));
    // The tasks read the password at start: RDS must not rotate it behind their back.
    expect(one('aws:secretsmanager/secretRotation:SecretRotation', 'broker-service-db-no-auto-rotation').rotationEnabled).toBe(false);
  });
});

describe('IAM', () => {
  const documents = (): Array<{ where: string; doc: any }> =>
    world.registrations.flatMap((r: Registration) => {
      if (r.type === 'aws:iam/role:Role') return [{ where: `${r.name} trust`, doc: JSON.parse(r.inputs.assumeRolePolicy) }];
      if (r.type === 'aws:iam/rolePolicy:RolePolicy' || r.type === 'aws:iam/userPolicy:UserPolicy') return [{ where: r.name, doc: JSON.parse(r.inputs.policy) }];
      return [];
    });

  it('has no wildcard action anywhere, and "*" resources only where AWS offers no resource type', () => {
    expect(documents().length).toBeGreaterThanOrEqual(8);
    expect(documents().flatMap(({ where, doc }) => wildcardProblems(where, doc, ['ecr:GetAuthorizationToken', 'iam:ListUsers']))).toEqual([]);
  });

  it('the execution role is for ECS tasks of this account only', () => {
    const role = world.registrations.find((r) => r.type === 'aws:iam/role:Role' && r.name === 'broker-service-execution')!;
    const trust = JSON.parse(role.inputs.assumeRolePolicy);
    expect(trust.Statement).toEqual([
      expect.objectContaining({
        Principal: { Service: 'ecs-tasks.amazonaws.com' },
        Condition: { StringEquals: { 'aws:SourceAccount': HOME_ACCOUNT }, ArnLike: { 'aws:SourceArn': `arn:aws:ecs:us-east-1:${HOME_ACCOUNT}:*` } },
      }),
    ]);
  });
});

describe('the broker config the stack writes', () => {
  const config = () => parse(outputs.brokerConfigYaml) as Record<string, any>;

  it('loads in the real broker: `credbroker config validate` exits 0', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'credbroker-service-config-'));
    const file = path.join(dir, 'config.yaml');
    writeFileSync(file, outputs.brokerConfigYaml);
    const hash = 'a'.repeat(64);
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'server/src/cli.ts', 'config', 'validate', '--config', file], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, CREDBROKER_ADMIN_TOKEN_SHA256_ALICE: hash, CREDBROKER_ADMIN_TOKEN_SHA256_BOB: hash, CREDBROKER_AUDIT_HMAC_KEY: 'k'.repeat(48) },
    });
    // One warning, on purpose: the admin listener is plain HTTP inside the VPC (the internal
    // load balancer terminates TLS and only it can reach the port), and the broker says so.
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^warning: admin\.host: the admin API listens on a non-loopback address over plain HTTP/)]);
    expect(r.stdout).toMatch(/^ok: .*config\.yaml: 1 issuer\(s\), 2 role\(s\), 2 binding\(s\)/);
    expect(r.status).toBe(0);
  });

  it('has exactly the roles the stack created the trust policies for', () => {
    expect(config().roles).toEqual(outputs.brokerRoles);
  });

  it('listens behind the load balancer, trusting one proxy hop for the client IP', () => {
    expect(config().server).toMatchObject({ host: '0.0.0.0', port: 8080, trust_proxy: 1 });
    // The ALB (idle timeout 60 s) closes idle connections, never the broker first.
    expect(one('aws:lb/loadBalancer:LoadBalancer', 'broker-service-alb').idleTimeout).toBe(60);
    expect(config().server.keep_alive_timeout_ms).toBe(65_000);
    expect(config().admin).toEqual({
      enabled: true,
      host: '0.0.0.0',
      allow_insecure_non_loopback: true, // behind the internal ALB, which only the admin networks reach
      port: 8081,
      tokens: [
        { name: 'alice', sha256: '${CREDBROKER_ADMIN_TOKEN_SHA256_ALICE}', scopes: ['operate'] },
        { name: 'bob', sha256: '${CREDBROKER_ADMIN_TOKEN_SHA256_BOB}', scopes: ['read'] },
      ],
    });
  });

  it('stores in PostgreSQL over TLS verified against the RDS CAs, with no password in the URL', () => {
    expect(config().store).toEqual({
      driver: 'postgres',
      postgres_url: 'postgres://credbroker@broker-service-db.c0ffee.us-east-1.rds.amazonaws.com:5432/credbroker?sslmode=verify-full&sslrootcert=/opt/credbroker/certs/rds-ca-bundle.pem',
    });
    expect(config().audit).toEqual({ sink: 'store', hmac_key_env: 'CREDBROKER_AUDIT_HMAC_KEY' });
  });

  it('is kept in Secrets Manager, and the service URL is HTTPS', () => {
    const versions = all('aws:secretsmanager/secretVersion:SecretVersion');
    // Pulumi marks the value secret (a wrapped value in the mocks); it is the config, whole.
    const value = (v: unknown) => (typeof v === 'object' && v !== null && 'value' in v ? (v as { value: unknown }).value : v);
    expect(versions.map((v) => value(v.inputs.secretString))).toEqual([outputs.brokerConfigYaml]);
    expect(outputs.serviceUrl).toBe('https://credbroker.example.com');
  });
});
