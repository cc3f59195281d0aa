// An ECR repository for the broker image (optional: any registry the tasks can pull from works).
// Tags are immutable — the service runs a digest anyway — images are scanned on push, and only
// the newest `keepImages` are kept.
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import { resourceTags } from './tags.js';

export interface BrokerImageRepositoryArgs {
  name: string;
  keepImages: number;
  tags?: Record<string, string>;
}

export class BrokerImageRepository extends pulumi.ComponentResource {
  readonly repositoryUrl: pulumi.Output<string>;
  readonly arn: pulumi.Output<string>;

  constructor(name: string, args: BrokerImageRepositoryArgs, opts?: pulumi.ComponentResourceOptions) {
    super('credbroker:service:BrokerImageRepository', name, {}, opts);
    const repo = new aws.ecr.Repository(
      name,
      {
        name: args.name,
        imageTagMutability: 'IMMUTABLE',
        imageScanningConfiguration: { scanOnPush: true },
        encryptionConfigurations: [{ encryptionType: 'AES256' }],
        tags: resourceTags('broker-image', args.tags),
      },
      { parent: this },
    );
    new aws.ecr.LifecyclePolicy(
      name,
      {
        repository: repo.name,
        policy: JSON.stringify({
          rules: [{ rulePriority: 1, description: `keep the newest ${args.keepImages} images`, selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: args.keepImages }, action: { type: 'expire' } }],
        }),
      },
      { parent: this },
    );
    this.repositoryUrl = repo.repositoryUrl;
    this.arn = repo.arn;
    this.registerOutputs({ repositoryUrl: this.repositoryUrl, arn: this.arn });
  }
}
