// The shared store of the broker's replicas: RDS PostgreSQL in the private subnets, encrypted at
// rest, TLS required (rds.force_ssl), reachable on 5432 from the tasks' security group only, its
// master password generated and kept by RDS in Secrets Manager (never in the Pulumi state).
// RDS would rotate that password every 7 days; the tasks read it when they start, so automatic
// rotation is turned off here and rotation is a deliberate step that rolls the service
// (docs/deploying.md#rotating-the-database-password).
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import { DATABASE } from '../service/broker-config.js';
import { resourceTags } from './tags.js';

export interface BrokerDatabaseArgs {
  vpcId: pulumi.Input<string>;
  subnetIds: pulumi.Input<string>[];
  /** The only security group allowed in (the broker tasks'). */
  clientSecurityGroupId: pulumi.Input<string>;
  instanceClass: string;
  engineVersion: string;
  allocatedStorageGb: number;
  maxAllocatedStorageGb: number;
  multiAz: boolean;
  backupRetentionDays: number;
  deletionProtection: boolean;
  kmsKeyArn?: string | undefined;
  tags?: Record<string, string>;
}

export class BrokerDatabase extends pulumi.ComponentResource {
  readonly instance: aws.rds.Instance;
  readonly securityGroup: aws.ec2.SecurityGroup;
  readonly address: pulumi.Output<string>;
  readonly port: pulumi.Output<number>;
  /** The RDS-managed secret: JSON with `username` and `password`. */
  readonly secretArn: pulumi.Output<string>;

  constructor(name: string, args: BrokerDatabaseArgs, opts?: pulumi.ComponentResourceOptions) {
    super('credbroker:database:BrokerDatabase', name, {}, opts);
    const tags = resourceTags('broker-database', args.tags);
    const parent = { parent: this };
    const major = args.engineVersion.split('.')[0]!;

    this.securityGroup = new aws.ec2.SecurityGroup(`${name}-sg`, { vpcId: args.vpcId, description: 'credbroker database: PostgreSQL from the broker tasks only', tags }, parent);
    new aws.vpc.SecurityGroupIngressRule(
      `${name}-from-tasks`,
      { securityGroupId: this.securityGroup.id, referencedSecurityGroupId: args.clientSecurityGroupId, ipProtocol: 'tcp', fromPort: 5432, toPort: 5432, description: 'PostgreSQL from the broker tasks' },
      parent,
    );
    const subnets = new aws.rds.SubnetGroup(`${name}-subnets`, { subnetIds: args.subnetIds, description: 'credbroker database: private subnets', tags }, parent);
    const parameters = new aws.rds.ParameterGroup(
      `${name}-params`,
      {
        family: `postgres${major}`,
        description: 'credbroker: TLS required',
        parameters: [{ name: 'rds.force_ssl', value: '1', applyMethod: 'pending-reboot' }],
        tags,
      },
      parent,
    );
    this.instance = new aws.rds.Instance(
      name,
      {
        engine: 'postgres',
        engineVersion: args.engineVersion,
        instanceClass: args.instanceClass,
        allocatedStorage: args.allocatedStorageGb,
        maxAllocatedStorage: args.maxAllocatedStorageGb,
        storageType: 'gp3',
        storageEncrypted: true,
        ...(args.kmsKeyArn ? { kmsKeyId: args.kmsKeyArn, masterUserSecretKmsKeyId: args.kmsKeyArn } : {}),
        dbName: DATABASE.name,
        username: DATABASE.user,
        manageMasterUserPassword: true,
        multiAz: args.multiAz,
        dbSubnetGroupName: subnets.name,
        vpcSecurityGroupIds: [this.securityGroup.id],
        publiclyAccessible: false,
        parameterGroupName: parameters.name,
        caCertIdentifier: 'rds-ca-rsa2048-g1',
        backupRetentionPeriod: args.backupRetentionDays,
        copyTagsToSnapshot: true,
        deletionProtection: args.deletionProtection,
        skipFinalSnapshot: false,
        finalSnapshotIdentifier: `${name}-final`,
        autoMinorVersionUpgrade: true,
        iamDatabaseAuthenticationEnabled: false,
        tags,
      },
      parent,
    );
    this.secretArn = this.instance.masterUserSecrets.apply((s) => {
      const arn = s[0]?.secretArn;
      if (!arn) throw new Error('RDS did not report the master user secret');
      return arn;
    });
    new aws.secretsmanager.SecretRotation(`${name}-no-auto-rotation`, { secretId: this.secretArn, rotationEnabled: false }, parent);
    this.address = this.instance.address;
    this.port = this.instance.port;
    this.registerOutputs({ address: this.address, port: this.port, secretArn: this.secretArn, securityGroupId: this.securityGroup.id });
  }
}
