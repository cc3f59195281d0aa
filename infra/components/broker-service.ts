// The broker itself, highly available in the broker account: ECS Fargate tasks (at least two, in
// at least two availability zones) running as the BrokerIdentity role, behind an internet-facing
// ALB that speaks HTTPS only; an optional internal ALB for the admin API, reachable only from the
// CIDRs and security groups you name; RDS PostgreSQL as the shared store; the whole broker config
// written by this stack into Secrets Manager; logs in CloudWatch; autoscaling on CPU and requests.
// Security groups chain: internet → ALB :443 → tasks :8080 → database :5432, nothing else.
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import type { BrokerRoleEntry } from '../broker-roles-config.js';
import { brokerServiceConfig, brokerServiceConfigYaml, PORTS, sha256 } from '../service/broker-config.js';
import { CONFIG_VOLUME, containerDefinitions } from '../service/containers.js';
import type { ServiceSettings } from '../service/settings.js';
import { ecrRepositoryArnOf, executionRolePolicy, executionRoleTrust } from '../policies/service-execution.js';
import { BrokerDatabase } from './broker-database.js';
import { BrokerNetwork } from './broker-network.js';
import { resourceTags } from './tags.js';

export interface BrokerServiceArgs {
  settings: ServiceSettings;
  /** The BrokerIdentity role: the task role. */
  brokerRoleArn: pulumi.Input<string>;
  /** The generated `roles:` section of the broker config. */
  roles: pulumi.Input<Record<string, BrokerRoleEntry>>;
  /** repository (without tag) and digest of the image. */
  imageRepository: pulumi.Input<string>;
  accountId: pulumi.Input<string>;
  partition: pulumi.Input<string>;
  region: pulumi.Input<string>;
  tags?: Record<string, string>;
}

export class BrokerService extends pulumi.ComponentResource {
  readonly url: pulumi.Output<string>;
  readonly adminUrl: pulumi.Output<string | undefined>;
  readonly loadBalancerDnsName: pulumi.Output<string>;
  readonly adminLoadBalancerDnsName: pulumi.Output<string | undefined>;
  readonly clusterName: pulumi.Output<string>;
  readonly serviceName: pulumi.Output<string>;
  readonly logGroupName: pulumi.Output<string>;
  readonly configSecretArn: pulumi.Output<string>;
  readonly brokerConfigYaml: pulumi.Output<string>;
  readonly databaseAddress: pulumi.Output<string>;
  readonly databaseSecretArn: pulumi.Output<string>;
  readonly database: BrokerDatabase;

  constructor(name: string, args: BrokerServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super('credbroker:service:BrokerService', name, {}, opts);
    const s = args.settings;
    const tags = resourceTags('broker-service', args.tags);
    const parent = { parent: this };

    // Network: given, or created.
    let vpcId: pulumi.Input<string>;
    let publicSubnetIds: pulumi.Input<string>[];
    let privateSubnetIds: pulumi.Input<string>[];
    if (s.network.vpcId !== undefined) {
      vpcId = s.network.vpcId;
      publicSubnetIds = s.network.publicSubnetIds!;
      privateSubnetIds = s.network.privateSubnetIds!;
    } else {
      const network = new BrokerNetwork(
        `${name}-network`,
        { cidrBlock: s.network.cidrBlock, availabilityZones: s.network.availabilityZones, natGateways: s.network.natGateways, tags: args.tags ?? {} },
        parent,
      );
      ({ vpcId, publicSubnetIds, privateSubnetIds } = network);
    }

    // Security groups, with one rule resource per rule so that each is visible and reviewable.
    const sg = (id: string, description: string) => new aws.ec2.SecurityGroup(`${name}-${id}`, { vpcId, description, tags }, parent);
    const ingress = (id: string, args2: aws.vpc.SecurityGroupIngressRuleArgs) => new aws.vpc.SecurityGroupIngressRule(`${name}-${id}`, args2, parent);
    const egress = (id: string, args2: aws.vpc.SecurityGroupEgressRuleArgs) => new aws.vpc.SecurityGroupEgressRule(`${name}-${id}`, args2, parent);
    const albSg = sg('alb', 'credbroker public load balancer: HTTPS from CI runners');
    const tasksSg = sg('tasks', 'credbroker tasks: from the load balancers only');
    s.loadBalancer.allowedCidrs.forEach((cidr, i) => {
      ingress(`alb-https-${i}`, { securityGroupId: albSg.id, cidrIpv4: cidr, ipProtocol: 'tcp', fromPort: 443, toPort: 443, description: 'HTTPS' });
      if (s.loadBalancer.httpRedirect) {
        ingress(`alb-http-${i}`, { securityGroupId: albSg.id, cidrIpv4: cidr, ipProtocol: 'tcp', fromPort: 80, toPort: 80, description: 'HTTP, redirected to HTTPS' });
      }
    });
    egress('alb-to-tasks', { securityGroupId: albSg.id, referencedSecurityGroupId: tasksSg.id, ipProtocol: 'tcp', fromPort: PORTS.public, toPort: PORTS.public, description: 'to the broker tasks' });
    ingress('tasks-from-alb', { securityGroupId: tasksSg.id, referencedSecurityGroupId: albSg.id, ipProtocol: 'tcp', fromPort: PORTS.public, toPort: PORTS.public, description: 'public API from the ALB' });
    // Out: HTTPS (CI providers' keys, STS, Secrets Manager, ECR, CloudWatch Logs) and the database.
    egress('tasks-https', { securityGroupId: tasksSg.id, cidrIpv4: '0.0.0.0/0', ipProtocol: 'tcp', fromPort: 443, toPort: 443, description: 'HTTPS: OIDC keys, AWS APIs' });

    this.database = new BrokerDatabase(
      `${name}-db`,
      {
        vpcId,
        subnetIds: privateSubnetIds,
        clientSecurityGroupId: tasksSg.id,
        instanceClass: s.database.instanceClass,
        engineVersion: s.database.engineVersion,
        allocatedStorageGb: s.database.allocatedStorageGb,
        maxAllocatedStorageGb: s.database.maxAllocatedStorageGb,
        multiAz: s.database.multiAz,
        backupRetentionDays: s.database.backupRetentionDays,
        deletionProtection: s.database.deletionProtection,
        kmsKeyArn: s.database.kmsKeyArn,
        tags: args.tags ?? {},
      },
      parent,
    );
    egress('tasks-to-db', { securityGroupId: tasksSg.id, referencedSecurityGroupId: this.database.securityGroup.id, ipProtocol: 'tcp', fromPort: 5432, toPort: 5432, description: 'PostgreSQL' });

    // The broker config, whole, from the stack.
    const config = pulumi
      .all([args.roles, args.region, this.database.address, this.database.port])
      .apply(([roles, region, address, port]) => brokerServiceConfigYaml(brokerServiceConfig({ service: s, roles, region, database: { address, port } })));
    const configSecret = new aws.secretsmanager.Secret(
      `${name}-config`,
      { namePrefix: 'credbroker/config-', description: 'credbroker: the broker config (no secret values; written by Pulumi)', ...(s.database.kmsKeyArn ? { kmsKeyId: s.database.kmsKeyArn } : {}), tags },
      parent,
    );
    new aws.secretsmanager.SecretVersion(`${name}-config`, { secretId: configSecret.id, secretString: config }, parent);

    const logGroup = new aws.cloudwatch.LogGroup(
      `${name}-logs`,
      { namePrefix: '/credbroker/', retentionInDays: s.logs.retentionDays, ...(s.logs.kmsKeyArn ? { kmsKeyId: s.logs.kmsKeyArn } : {}), tags },
      parent,
    );

    const image = pulumi.interpolate`${args.imageRepository}@${s.image.digest!}`;
    const secretArns: pulumi.Input<string>[] = [configSecret.arn, this.database.secretArn];
    if (s.admin.enabled) secretArns.push(s.admin.tokenHashesSecretArn!);
    if (s.audit.hmacKeySecretArn) secretArns.push(s.audit.hmacKeySecretArn);
    const executionRole = new aws.iam.Role(
      `${name}-execution`,
      {
        namePrefix: 'credbroker-exec-',
        description: 'credbroker: ECS pulls the image, writes logs and reads the task secrets',
        assumeRolePolicy: pulumi.all([args.accountId, args.partition, args.region]).apply(([a, p, r]) => JSON.stringify(executionRoleTrust(a, p, r))),
        tags,
      },
      parent,
    );
    new aws.iam.RolePolicy(
      `${name}-execution`,
      {
        role: executionRole.name,
        name: 'credbroker-task-execution',
        policy: pulumi.all([logGroup.arn, pulumi.all(secretArns), args.imageRepository, args.partition, args.region]).apply(([logGroupArn, secrets, repository, partition, region]) =>
          JSON.stringify(
            executionRolePolicy({
              logGroupArn,
              secretArns: secrets,
              ecrRepositoryArn: ecrRepositoryArnOf(repository, partition),
              kmsKeyArns: s.database.kmsKeyArn ? [s.database.kmsKeyArn] : [],
              region,
            }),
          ),
        ),
      },
      parent,
    );

    const cluster = new aws.ecs.Cluster(`${name}-cluster`, { settings: [{ name: 'containerInsights', value: 'enabled' }], tags }, parent);
    const taskDefinition = new aws.ecs.TaskDefinition(
      `${name}-task`,
      {
        family: 'credbroker',
        networkMode: 'awsvpc',
        requiresCompatibilities: ['FARGATE'],
        cpu: String(s.tasks.cpu),
        memory: String(s.tasks.memory),
        runtimePlatform: { operatingSystemFamily: 'LINUX', cpuArchitecture: s.tasks.architecture },
        executionRoleArn: executionRole.arn,
        taskRoleArn: args.brokerRoleArn,
        volumes: [{ name: CONFIG_VOLUME }],
        containerDefinitions: pulumi
          .all([image, args.region, logGroup.name, configSecret.arn, config, this.database.secretArn])
          .apply(([img, region, logGroupName, configSecretArn, text, databaseSecretArn]) =>
            JSON.stringify(
              containerDefinitions({
                image: img,
                region,
                logGroupName,
                configSecretArn,
                configSha256: sha256(text),
                databaseSecretArn,
                admin: s.admin.enabled ? { tokenHashesSecretArn: s.admin.tokenHashesSecretArn!, tokenNames: s.admin.tokens.map((t) => t.name) } : undefined,
                auditHmacKeySecretArn: s.audit.hmacKeySecretArn,
                stopTimeoutSeconds: s.tasks.stopTimeoutSeconds,
              }),
            ),
          ),
        tags,
      },
      parent,
    );

    // The public load balancer: HTTPS only; port 80 exists only to redirect, and only if asked.
    const requestTimeoutMs = Number((s.brokerConfig.server as { request_timeout_ms?: number } | undefined)?.request_timeout_ms ?? 15_000);
    const alb = new aws.lb.LoadBalancer(
      `${name}-alb`,
      {
        internal: false,
        loadBalancerType: 'application',
        securityGroups: [albSg.id],
        subnets: publicSubnetIds,
        dropInvalidHeaderFields: true,
        desyncMitigationMode: 'strictest',
        enableDeletionProtection: s.loadBalancer.deletionProtection,
        idleTimeout: s.loadBalancer.idleTimeoutSeconds,
        ipAddressType: 'ipv4',
        tags,
      },
      parent,
    );
    const targetGroup = (id: string, port: number) =>
      new aws.lb.TargetGroup(
        `${name}-${id}`,
        {
          port,
          protocol: 'HTTP',
          targetType: 'ip',
          vpcId,
          // In-flight exchanges finish (the broker answers within server.request_timeout_ms).
          deregistrationDelay: Math.ceil(requestTimeoutMs / 1000) + 5,
          healthCheck: { path: '/readyz', port: String(PORTS.public), protocol: 'HTTP', matcher: '200', interval: 15, timeout: 5, healthyThreshold: 2, unhealthyThreshold: 3 },
          tags,
        },
        parent,
      );
    const publicTargets = targetGroup('public', PORTS.public);
    const httpsListener = new aws.lb.Listener(
      `${name}-https`,
      {
        loadBalancerArn: alb.arn,
        port: 443,
        protocol: 'HTTPS',
        sslPolicy: s.loadBalancer.tlsPolicy,
        certificateArn: s.certificateArn,
        defaultActions: [{ type: 'forward', targetGroupArn: publicTargets.arn }],
        tags,
      },
      parent,
    );
    if (s.loadBalancer.httpRedirect) {
      new aws.lb.Listener(
        `${name}-http-redirect`,
        { loadBalancerArn: alb.arn, port: 80, protocol: 'HTTP', defaultActions: [{ type: 'redirect', redirect: { protocol: 'HTTPS', port: '443', statusCode: 'HTTP_301' } }], tags },
        parent,
      );
    }
    if (s.loadBalancer.wafWebAclArn) new aws.wafv2.WebAclAssociation(`${name}-waf`, { resourceArn: alb.arn, webAclArn: s.loadBalancer.wafWebAclArn }, parent);

    // The admin API: an internal load balancer, reachable only from what admin.* names.
    const listeners: pulumi.Resource[] = [httpsListener];
    const serviceTargets: Array<{ targetGroupArn: pulumi.Output<string>; containerName: string; containerPort: number }> = [
      { targetGroupArn: publicTargets.arn, containerName: 'broker', containerPort: PORTS.public },
    ];
    let adminAlb: aws.lb.LoadBalancer | undefined;
    if (s.admin.enabled) {
      const adminSg = sg('admin-alb', 'credbroker admin load balancer: HTTPS from the allowed networks only');
      s.admin.allowedCidrs.forEach((cidr, i) =>
        ingress(`admin-https-${i}`, { securityGroupId: adminSg.id, cidrIpv4: cidr, ipProtocol: 'tcp', fromPort: 443, toPort: 443, description: 'admin HTTPS' }),
      );
      s.admin.allowedSecurityGroupIds.forEach((id, i) =>
        ingress(`admin-https-sg-${i}`, { securityGroupId: adminSg.id, referencedSecurityGroupId: id, ipProtocol: 'tcp', fromPort: 443, toPort: 443, description: 'admin HTTPS' }),
      );
      for (const port of [PORTS.admin, PORTS.public]) {
        egress(`admin-alb-to-tasks-${port}`, { securityGroupId: adminSg.id, referencedSecurityGroupId: tasksSg.id, ipProtocol: 'tcp', fromPort: port, toPort: port, description: port === PORTS.admin ? 'admin API' : 'health checks' });
        ingress(`tasks-from-admin-alb-${port}`, { securityGroupId: tasksSg.id, referencedSecurityGroupId: adminSg.id, ipProtocol: 'tcp', fromPort: port, toPort: port, description: port === PORTS.admin ? 'admin API from the internal ALB' : 'health checks from the internal ALB' });
      }
      adminAlb = new aws.lb.LoadBalancer(
        `${name}-admin-alb`,
        { internal: true, loadBalancerType: 'application', securityGroups: [adminSg.id], subnets: privateSubnetIds, dropInvalidHeaderFields: true, desyncMitigationMode: 'strictest', enableDeletionProtection: s.loadBalancer.deletionProtection, tags },
        parent,
      );
      const adminTargets = targetGroup('admin', PORTS.admin);
      listeners.push(
        new aws.lb.Listener(
          `${name}-admin-https`,
          { loadBalancerArn: adminAlb.arn, port: 443, protocol: 'HTTPS', sslPolicy: s.loadBalancer.tlsPolicy, certificateArn: s.admin.certificateArn!, defaultActions: [{ type: 'forward', targetGroupArn: adminTargets.arn }], tags },
          parent,
        ),
      );
      serviceTargets.push({ targetGroupArn: adminTargets.arn, containerName: 'broker', containerPort: PORTS.admin });
    }

    const service = new aws.ecs.Service(
      `${name}-service`,
      {
        cluster: cluster.arn,
        taskDefinition: taskDefinition.arn,
        desiredCount: s.tasks.desired,
        launchType: 'FARGATE',
        platformVersion: 'LATEST',
        networkConfiguration: { subnets: privateSubnetIds, securityGroups: [tasksSg.id], assignPublicIp: false },
        loadBalancers: serviceTargets,
        deploymentCircuitBreaker: { enable: true, rollback: true },
        deploymentMinimumHealthyPercent: 100,
        deploymentMaximumPercent: 200,
        healthCheckGracePeriodSeconds: 60,
        availabilityZoneRebalancing: 'ENABLED',
        enableExecuteCommand: false,
        enableEcsManagedTags: true,
        propagateTags: 'SERVICE',
        waitForSteadyState: true,
        tags,
      },
      // Autoscaling owns the task count after the first deployment.
      { parent: this, dependsOn: listeners, ignoreChanges: ['desiredCount'] },
    );

    const scaling = new aws.appautoscaling.Target(
      `${name}-scaling`,
      {
        serviceNamespace: 'ecs',
        scalableDimension: 'ecs:service:DesiredCount',
        resourceId: pulumi.interpolate`service/${cluster.name}/${service.name}`,
        minCapacity: s.tasks.min,
        maxCapacity: s.tasks.max,
      },
      parent,
    );
    const trackingPolicy = (id: string, spec: aws.types.input.appautoscaling.PolicyTargetTrackingScalingPolicyConfiguration) =>
      new aws.appautoscaling.Policy(
        `${name}-${id}`,
        {
          policyType: 'TargetTrackingScaling',
          serviceNamespace: scaling.serviceNamespace,
          scalableDimension: scaling.scalableDimension,
          resourceId: scaling.resourceId,
          targetTrackingScalingPolicyConfiguration: spec,
        },
        parent,
      );
    const cooldowns = { scaleInCooldown: s.autoscaling.scaleInCooldownSeconds, scaleOutCooldown: s.autoscaling.scaleOutCooldownSeconds };
    trackingPolicy('scale-cpu', { targetValue: s.autoscaling.cpuPercent, predefinedMetricSpecification: { predefinedMetricType: 'ECSServiceAverageCPUUtilization' }, ...cooldowns });
    trackingPolicy('scale-requests', {
      targetValue: s.autoscaling.requestsPerTargetPerMinute,
      predefinedMetricSpecification: { predefinedMetricType: 'ALBRequestCountPerTarget', resourceLabel: pulumi.interpolate`${alb.arnSuffix}/${publicTargets.arnSuffix}` },
      ...cooldowns,
    });

    if (s.hostedZoneId) {
      const alias = (id: string, host: string, lb: aws.lb.LoadBalancer) =>
        new aws.route53.Record(`${name}-${id}`, { zoneId: s.hostedZoneId!, name: host, type: 'A', aliases: [{ name: lb.dnsName, zoneId: lb.zoneId, evaluateTargetHealth: true }] }, parent);
      alias('dns', s.domainName, alb);
      if (adminAlb && s.admin.domainName) alias('admin-dns', s.admin.domainName, adminAlb);
    }

    this.url = pulumi.output(`https://${s.domainName}`);
    this.adminUrl = pulumi.output(s.admin.enabled ? `https://${s.admin.domainName}` : undefined);
    this.loadBalancerDnsName = alb.dnsName;
    this.adminLoadBalancerDnsName = adminAlb ? adminAlb.dnsName : pulumi.output(undefined);
    this.clusterName = cluster.name;
    this.serviceName = service.name;
    this.logGroupName = logGroup.name;
    this.configSecretArn = configSecret.arn;
    this.brokerConfigYaml = config;
    this.databaseAddress = this.database.address;
    this.databaseSecretArn = this.database.secretArn;
    this.registerOutputs({
      url: this.url,
      adminUrl: this.adminUrl,
      loadBalancerDnsName: this.loadBalancerDnsName,
      clusterName: this.clusterName,
      serviceName: this.serviceName,
      configSecretArn: this.configSecretArn,
      databaseSecretArn: this.databaseSecretArn,
    });
  }
}
