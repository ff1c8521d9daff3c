import { aws_rds as rds } from 'aws-cdk-lib';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { MIN_AURORA_VERSION } from '../cdk/stacks/data-stack';
import { describe, expect, it } from 'vitest';
import { joinedText, synthKuroko } from './helpers/synth-app';

const { templates } = synthKuroko();
const data = templates.data;

const clusterOf = (t: Template) => {
  const clusters = Object.values(t.findResources('AWS::RDS::DBCluster'));
  expect(clusters).toHaveLength(1);
  return clusters[0] as { Properties: Record<string, unknown>; DeletionPolicy?: string; UpdateReplacePolicy?: string };
};

describe('DataStack: Aurora cluster', () => {
  it('runs Aurora MySQL 3 with the Data API enabled', () => {
    data.hasResourceProperties('AWS::RDS::DBCluster', {
      Engine: 'aurora-mysql',
      EngineVersion: Match.stringLikeRegexp('^8\\.0\\.mysql_aurora\\.3\\.'),
      EnableHttpEndpoint: true,
    });
  });

  it('is Serverless v2 scaling from 0 ACU (auto-pause) by default', () => {
    data.hasResourceProperties('AWS::RDS::DBCluster', {
      ServerlessV2ScalingConfiguration: { MinCapacity: 0, MaxCapacity: 4, SecondsUntilAutoPause: 300 },
    });
    data.hasResourceProperties('AWS::RDS::DBInstance', {
      DBInstanceClass: 'db.serverless',
      PubliclyAccessible: false,
    });
  });

  it('omits the auto-pause delay when the minimum capacity is above zero', () => {
    const busy = synthKuroko({ aurora: { minCapacity: 0.5, maxCapacity: 8 } }).templates.data;
    const scaling = clusterOf(busy).Properties['ServerlessV2ScalingConfiguration'];
    expect(scaling).toEqual({ MinCapacity: 0.5, MaxCapacity: 8 });
  });

  it('encrypts storage, keeps backups and is protected from deletion', () => {
    data.hasResourceProperties('AWS::RDS::DBCluster', {
      StorageEncrypted: true,
      BackupRetentionPeriod: 7,
      DeletionProtection: true,
    });
    const cluster = clusterOf(data);
    expect(cluster.DeletionPolicy).toBe('Snapshot');
    expect(cluster.UpdateReplacePolicy).toBe('Snapshot');
  });

  it('retains the cluster when the config says retain', () => {
    const cluster = clusterOf(synthKuroko({ aurora: { removalPolicy: 'retain', backupRetentionDays: 14 } }).templates.data);
    expect(cluster.DeletionPolicy).toBe('Retain');
    expect(cluster.Properties['BackupRetentionPeriod']).toBe(14);
  });

  it('keeps its generated master secret when the stack goes', () => {
    data.hasResource('AWS::SecretsManager::Secret', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({ GenerateSecretString: Match.objectLike({ GenerateStringKey: 'password' }) }),
    });
  });

  it('admits no network traffic to the cluster', () => {
    const groups = data.findResources('AWS::EC2::SecurityGroup', {
      Properties: { GroupDescription: Match.stringLikeRegexp('Aurora') },
    });
    expect(Object.keys(groups)).toHaveLength(1);
    const [groupId, group] = Object.entries(groups)[0] as [string, { Properties: Record<string, unknown> }];
    expect(group.Properties['SecurityGroupIngress']).toBeUndefined();
    const ingressRules = Object.values(data.findResources('AWS::EC2::SecurityGroupIngress'));
    expect(ingressRules.filter((r) => JSON.stringify(r).includes(groupId))).toEqual([]);
    data.hasResourceProperties('AWS::RDS::DBCluster', {
      VpcSecurityGroupIds: [{ 'Fn::GetAtt': [groupId, 'GroupId'] }],
    });
  });
});

describe('invariant: the Aurora version stays deployable', () => {
  // Scaling to 0 ACU needs Aurora MySQL 3.08.0 or later
  // (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-serverless-v2-auto-pause.html), and Aurora
  // upgrades a cluster's minor version only when every DB instance has AutoMinorVersionUpgrade on
  // (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraMySQL.Updates.AMVU.html).
  it('is a 3.08 or later version that aws-cdk-lib offers, and every instance takes minor upgrades', () => {
    const version = clusterOf(data).Properties['EngineVersion'] as string;
    const [, minor] = /^8\.0\.mysql_aurora\.(3\.\d{2})\.\d+$/.exec(version) ?? [];
    expect(minor, version).toBeDefined();
    expect(minor! >= MIN_AURORA_VERSION, `${version} is older than ${MIN_AURORA_VERSION}`).toBe(true);
    const offered = Object.values(rds.AuroraMysqlEngineVersion).filter((v): v is rds.AuroraMysqlEngineVersion => v instanceof rds.AuroraMysqlEngineVersion);
    expect(offered.map((v) => v.auroraMysqlFullVersion)).toContain(version);
    const instances = Object.values(data.findResources('AWS::RDS::DBInstance')) as { Properties: Record<string, unknown> }[];
    expect(instances.length).toBeGreaterThan(0);
    for (const instance of instances) expect(instance.Properties['AutoMinorVersionUpgrade']).toBe(true);
  });
});

describe('DataStack: network', () => {
  it('places the database in isolated subnets and creates no NAT gateway', () => {
    data.resourceCountIs('AWS::EC2::NatGateway', 0);
    data.hasResourceProperties('AWS::EC2::Subnet', {
      MapPublicIpOnLaunch: false,
      Tags: Match.arrayWith([{ Key: 'aws-cdk:subnet-type', Value: 'Isolated' }]),
    });
  });

  it('records rejected traffic in a flow log with retention', () => {
    data.hasResourceProperties('AWS::EC2::FlowLog', { TrafficType: 'REJECT', LogDestinationType: 'cloud-watch-logs' });
    for (const group of Object.values(data.findResources('AWS::Logs::LogGroup'))) {
      expect((group as { Properties: Record<string, unknown> }).Properties['RetentionInDays']).toBe(30);
    }
  });

  it('imports an existing VPC without a lookup and uses the given subnets', () => {
    const existing = synthKuroko({
      vpc: {
        mode: 'existing',
        vpcId: 'vpc-0abc',
        availabilityZones: ['us-east-1a', 'us-east-1b'],
        databaseSubnetIds: ['subnet-0d1', 'subnet-0d2'],
        workerSubnetIds: ['subnet-0e1'],
      },
    });
    existing.templates.data.resourceCountIs('AWS::EC2::VPC', 0);
    existing.templates.data.hasResourceProperties('AWS::RDS::DBSubnetGroup', { SubnetIds: ['subnet-0d1', 'subnet-0d2'] });
    existing.templates.data.hasResourceProperties('AWS::EC2::SecurityGroup', { VpcId: 'vpc-0abc' });
    // A lookup would leave a missing-context entry in the assembly instead of failing.
    expect(existing.app.synth().manifest.missing ?? []).toEqual([]);
    const [provisioner] = Object.values(existing.templates.workers.findResources('AWS::Lambda::Function')) as {
      Properties: { Environment: { Variables: Record<string, unknown> } };
    }[];
    expect(joinedText(provisioner?.Properties.Environment.Variables['KUROKO_WORKER_QUEUES'])).toContain('"subnetIds":["subnet-0e1"]');
  });
});
