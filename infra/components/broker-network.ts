// A VPC for the broker, when the stack is not given one: public subnets (the load balancer, the NAT
// gateways) and private subnets (tasks, database) in two or three availability zones. Private
// subnets reach the internet only through NAT — the tasks fetch the CI providers' keys and call
// STS; nothing reaches them except through the load balancers. The VPC's default security group
// is emptied, so nothing can use it by accident.
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import { resourceTags } from './tags.js';

export interface BrokerNetworkArgs {
  cidrBlock: string;
  availabilityZones: number;
  natGateways: 'one' | 'per-az';
  tags?: Record<string, string>;
}

/** Splits a VPC CIDR (/16…/20) into subnets 4 bits smaller: public ones first, private ones from the middle. */
export function subnetCidrs(cidr: string, count: number): { public: string[]; private: string[] } {
  const [base, bits] = cidr.split('/') as [string, string];
  const prefix = Number(bits) + 4;
  const start = base.split('.').reduce((n, octet) => n * 256 + Number(octet), 0) >>> 0;
  const size = 2 ** (32 - prefix);
  const at = (i: number) => {
    const n = (start + i * size) >>> 0;
    return `${[24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.')}/${prefix}`;
  };
  return { public: Array.from({ length: count }, (_, i) => at(i)), private: Array.from({ length: count }, (_, i) => at(8 + i)) };
}

export class BrokerNetwork extends pulumi.ComponentResource {
  readonly vpcId: pulumi.Output<string>;
  readonly publicSubnetIds: pulumi.Output<string>[];
  readonly privateSubnetIds: pulumi.Output<string>[];

  constructor(name: string, args: BrokerNetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super('credbroker:network:BrokerNetwork', name, {}, opts);
    const tags = (extra: Record<string, string> = {}) => resourceTags('broker-network', args.tags, extra);
    const parent = { parent: this };
    const zones = aws.getAvailabilityZonesOutput({ state: 'available' }, parent).names;
    const cidrs = subnetCidrs(args.cidrBlock, args.availabilityZones);

    const vpc = new aws.ec2.Vpc(name, { cidrBlock: args.cidrBlock, enableDnsHostnames: true, enableDnsSupport: true, tags: tags({ Name: name }) }, parent);
    new aws.ec2.DefaultSecurityGroup(`${name}-default`, { vpcId: vpc.id, tags: tags({ Name: `${name}-default-unused` }) }, parent);
    const igw = new aws.ec2.InternetGateway(name, { vpcId: vpc.id, tags: tags({ Name: name }) }, parent);
    const publicRoutes = new aws.ec2.RouteTable(`${name}-public`, { vpcId: vpc.id, routes: [{ cidrBlock: '0.0.0.0/0', gatewayId: igw.id }], tags: tags({ Name: `${name}-public` }) }, parent);

    const publicSubnets: aws.ec2.Subnet[] = [];
    const nats: aws.ec2.NatGateway[] = [];
    this.privateSubnetIds = [];
    for (let i = 0; i < args.availabilityZones; i++) {
      const az = zones.apply((names) => {
        if (names.length < args.availabilityZones) throw new Error(`the region has ${names.length} availability zones; ${args.availabilityZones} are needed`);
        return names[i]!;
      });
      const pub = new aws.ec2.Subnet(
        `${name}-public-${i}`,
        { vpcId: vpc.id, cidrBlock: cidrs.public[i]!, availabilityZone: az, mapPublicIpOnLaunch: false, tags: tags({ Name: `${name}-public-${i}` }) },
        parent,
      );
      new aws.ec2.RouteTableAssociation(`${name}-public-${i}`, { subnetId: pub.id, routeTableId: publicRoutes.id }, parent);
      publicSubnets.push(pub);
      if (i === 0 || args.natGateways === 'per-az') {
        const eip = new aws.ec2.Eip(`${name}-nat-${i}`, { domain: 'vpc', tags: tags({ Name: `${name}-nat-${i}` }) }, parent);
        nats.push(new aws.ec2.NatGateway(`${name}-nat-${i}`, { subnetId: pub.id, allocationId: eip.id, tags: tags({ Name: `${name}-nat-${i}` }) }, { parent: this, dependsOn: [igw] }));
      }
      const nat = nats[Math.min(i, nats.length - 1)]!;
      const privateRoutes = new aws.ec2.RouteTable(
        `${name}-private-${i}`,
        { vpcId: vpc.id, routes: [{ cidrBlock: '0.0.0.0/0', natGatewayId: nat.id }], tags: tags({ Name: `${name}-private-${i}` }) },
        parent,
      );
      const priv = new aws.ec2.Subnet(
        `${name}-private-${i}`,
        { vpcId: vpc.id, cidrBlock: cidrs.private[i]!, availabilityZone: az, mapPublicIpOnLaunch: false, tags: tags({ Name: `${name}-private-${i}` }) },
        parent,
      );
      new aws.ec2.RouteTableAssociation(`${name}-private-${i}`, { subnetId: priv.id, routeTableId: privateRoutes.id }, parent);
      this.privateSubnetIds.push(priv.id);
    }
    this.vpcId = vpc.id;
    this.publicSubnetIds = publicSubnets.map((s) => s.id);
    this.registerOutputs({ vpcId: this.vpcId, publicSubnetIds: this.publicSubnetIds, privateSubnetIds: this.privateSubnetIds });
  }
}
