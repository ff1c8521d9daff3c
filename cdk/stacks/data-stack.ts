/**
 * The stateful stack: the network and the Aurora MySQL 3 Serverless v2 cluster. It changes rarely and is
 * protected from deletion; the compute stacks depend on it, never the reverse.
 */
import {
  CfnOutput,
  Duration,
  RemovalPolicy,
  Stack,
  type StackProps,
  aws_ec2 as ec2,
  aws_logs as logs,
  aws_rds as rds,
} from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { DATABASE_ROLE, DEFAULT_DATABASE_USERS, type DatabaseRole } from '../../db/database-user-names';
import type { DeployConfig } from '../deploy-config';
import type { DatabaseBinding } from '../constructs/database-binding';
import { acknowledge } from '../nag';

/**
 * Aurora MySQL 3.10 is a long-term-support line, and it supports both the Data API for Serverless v2 and
 * scaling to 0 ACU (auto-pause), the two features this deployment is built on (both need 3.08 or later). The
 * newest 3.10 patch aws-cdk-lib offers; the writer takes automatic minor version upgrades, so a cluster moves on
 * before AWS retires the patch it was created with.
 */
export const AURORA_ENGINE_VERSION = rds.AuroraMysqlEngineVersion.VER_3_10_4;
/** The oldest Aurora MySQL version with both the Data API for Serverless v2 and 0 ACU. */
export const MIN_AURORA_VERSION = '3.08';
const MASTER_USERNAME = 'kuroko_admin';
const WORKER_SUBNET_CIDR_MASK = 20;
const DATABASE_SUBNET_CIDR_MASK = 24;

export interface KurokoDataProps {
  readonly config: DeployConfig;
  readonly logRetention: logs.RetentionDays;
}
export interface DataStackProps extends StackProps, KurokoDataProps {}

/** What the DataStack holds, as a construct (cdk/kuroko.ts puts it into a stack of another app). */
export class KurokoData extends Construct {
  readonly vpc: ec2.IVpc;
  /** Where worker instances go: they need outbound HTTPS to AWS APIs and whatever jobs reach. */
  readonly workerSubnets: ec2.ISubnet[];
  /** True when worker subnets give instances a public IP (no NAT gateway is created or needed). */
  readonly workerSubnetsArePublic: boolean;
  readonly cluster: rds.DatabaseCluster;
  /** The master user's binding: the migrator alone uses it (it creates the two users below). */
  readonly database: DatabaseBinding;
  /** The runtime user (rows of every table, no DDL): every function but the migrator. */
  readonly runtimeDatabase: DatabaseBinding;
  /** The agent user (the claim loop's tables only): the workers. */
  readonly agentDatabase: DatabaseBinding;

  constructor(scope: Construct, id: string, props: KurokoDataProps) {
    super(scope, id);
    const { config } = props;

    let databaseSubnets: ec2.SubnetSelection;
    if (config.vpc.mode === 'new') {
      const vpc = new ec2.Vpc(this, 'Vpc', {
        ipAddresses: ec2.IpAddresses.cidr(config.vpc.cidr),
        maxAzs: config.vpc.maxAzs,
        // No NAT gateway: Lambdas stay outside the VPC (Data API over HTTPS) and workers sit in public
        // subnets with no inbound rule, which saves the NAT's hourly and per-GB charges.
        natGateways: 0,
        restrictDefaultSecurityGroup: true,
        subnetConfiguration: [
          { name: 'workers', subnetType: ec2.SubnetType.PUBLIC, cidrMask: WORKER_SUBNET_CIDR_MASK },
          { name: 'database', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: DATABASE_SUBNET_CIDR_MASK },
        ],
      });
      const flowLogs = new logs.LogGroup(this, 'FlowLogs', {
        retention: props.logRetention,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      // Rejected traffic only: it is what an investigation needs, at a fraction of the ingestion cost.
      vpc.addFlowLog('FlowLog', {
        destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs),
        trafficType: ec2.FlowLogTrafficType.REJECT,
      });
      this.vpc = vpc;
      this.workerSubnets = vpc.publicSubnets;
      this.workerSubnetsArePublic = true;
      databaseSubnets = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };
    } else {
      const existing = config.vpc;
      // Attributes, not `Vpc.fromLookup`: synthesis must work offline and without an AWS account.
      this.vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', {
        vpcId: existing.vpcId,
        availabilityZones: existing.availabilityZones,
      });
      this.workerSubnets = existing.workerSubnetIds.map((subnetId, i) =>
        ec2.Subnet.fromSubnetId(this, `WorkerSubnet${i}`, subnetId),
      );
      this.workerSubnetsArePublic = existing.workerSubnetsArePublic;
      databaseSubnets = {
        subnets: existing.databaseSubnetIds.map((subnetId, i) =>
          ec2.Subnet.fromSubnetId(this, `DatabaseSubnet${i}`, subnetId),
        ),
      };
    }

    // The Data API reaches the cluster from inside AWS, so nothing needs a network path to it.
    const securityGroup = new ec2.SecurityGroup(this, 'DatabaseSecurityGroup', {
      vpc: this.vpc,
      description: 'Kuroko Aurora cluster: no ingress, the Data API needs none',
      allowAllOutbound: false,
    });

    // Created here rather than by the cluster so the secret itself (not its attachment) can be retained.
    const secret = new rds.DatabaseSecret(this, 'DatabaseSecret', { username: MASTER_USERNAME });
    // A retained or snapshotted cluster is useless without its password.
    secret.applyRemovalPolicy(RemovalPolicy.RETAIN);

    const autoPause = config.aurora.minCapacity === 0;
    this.cluster = new rds.DatabaseCluster(this, 'Cluster', {
      engine: rds.DatabaseClusterEngine.auroraMysql({ version: AURORA_ENGINE_VERSION }),
      credentials: rds.Credentials.fromSecret(secret),
      defaultDatabaseName: config.databaseName,
      writer: rds.ClusterInstance.serverlessV2('Writer', {
        autoMinorVersionUpgrade: true,
        publiclyAccessible: false,
      }),
      serverlessV2MinCapacity: config.aurora.minCapacity,
      serverlessV2MaxCapacity: config.aurora.maxCapacity,
      ...(autoPause ? { serverlessV2AutoPauseDuration: Duration.minutes(config.aurora.autoPauseMinutes) } : {}),
      enableDataApi: true,
      iamAuthentication: true,
      storageEncrypted: true,
      backup: { retention: Duration.days(config.aurora.backupRetentionDays) },
      deletionProtection: config.aurora.deletionProtection,
      removalPolicy: config.aurora.removalPolicy === 'retain' ? RemovalPolicy.RETAIN : RemovalPolicy.SNAPSHOT,
      vpc: this.vpc,
      vpcSubnets: databaseSubnets,
      securityGroups: [securityGroup],
    });

    this.database = {
      clusterArn: this.cluster.clusterArn,
      secretArn: secret.secretArn,
      databaseName: config.databaseName,
    };

    // Generated passwords for the users the migrator creates (db/database-users.ts); the Data API signs in with them.
    const userBinding = (role: DatabaseRole, id: string): DatabaseBinding => {
      const userSecret = new rds.DatabaseSecret(this, id, { username: DEFAULT_DATABASE_USERS[role] });
      acknowledge(userSecret, 'AwsSolutions-SMG4', 'The migrator sets this user\'s password from the secret on every deploy; rotating it means rotate-secret then redeploy, as a rotation Lambda would need a network path to the cluster that this deployment does not have.');
      return { ...this.database, secretArn: userSecret.secretArn };
    };
    this.runtimeDatabase = userBinding(DATABASE_ROLE.runtime, 'RuntimeDatabaseSecret');
    this.agentDatabase = userBinding(DATABASE_ROLE.agent, 'AgentDatabaseSecret');

    acknowledge(secret, 'AwsSolutions-SMG4', 'Rotation needs a rotation Lambda with a network path to the cluster (a NAT or VPC endpoints); this deployment has neither on purpose. The Data API reads the secret on every call, so rotation can be added later without code changes.');
    acknowledge(this.cluster, 'AwsSolutions-RDS11', 'The port is unreachable: the security group has no ingress and every client uses the Data API over HTTPS, so a non-default port would add nothing.');
    acknowledge(this.cluster, 'AwsSolutions-RDS14', 'Backtrack is billed per stored change record; point-in-time recovery from the automated backups already covers operator mistakes for a scheduler database.');

    new CfnOutput(this, 'ClusterArn', { value: this.database.clusterArn });
    new CfnOutput(this, 'SecretArn', { value: this.database.secretArn });
    new CfnOutput(this, 'DatabaseName', { value: this.database.databaseName });
  }
}

/**
 * The stateful stack. Its contents sit under the id `Default`, which CDK leaves out of logical ids, so they are the
 * ids the resources had when they were created directly in the stack: a deployed cluster is never replaced.
 */
export class DataStack extends Stack {
  readonly contents: KurokoData;
  readonly vpc: ec2.IVpc;
  readonly workerSubnets: ec2.ISubnet[];
  readonly workerSubnetsArePublic: boolean;
  readonly cluster: rds.DatabaseCluster;
  readonly database: DatabaseBinding;
  readonly runtimeDatabase: DatabaseBinding;
  readonly agentDatabase: DatabaseBinding;

  constructor(scope: Construct, id: string, props: DataStackProps) {
    super(scope, id, props);
    const c = (this.contents = new KurokoData(this, 'Default', props));
    ({ vpc: this.vpc, workerSubnets: this.workerSubnets, workerSubnetsArePublic: this.workerSubnetsArePublic, cluster: this.cluster } = c);
    ({ database: this.database, runtimeDatabase: this.runtimeDatabase, agentDatabase: this.agentDatabase } = c);
  }
}
