/**
 * Invariant: workers in public subnets get a public IP. An instance in a public subnet reaches AWS APIs and the
 * package repositories only through a public IPv4 address, and it gets one from the subnet only when the subnet maps
 * public IPs on launch (https://docs.aws.amazon.com/vpc/latest/userguide/vpc-ip-addressing.html); an existing VPC's
 * subnet may not. So the launch template asks for one in its network interface (AssociatePublicIpAddress,
 * https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-ec2-launchtemplate-networkinterface.html),
 * which then also holds the security groups, and the provisioner names the subnet inside that interface.
 */
import { describe, expect, it } from 'vitest';
import { ENV_KEYS } from '../app/config/env-keys';
import { jsonOf } from './helpers/cross-stack';
import { joinedText, logicalId, synthKuroko, type Synthesised } from './helpers/synth-app';

const EXISTING = {
  mode: 'existing',
  vpcId: 'vpc-0abc',
  availabilityZones: ['us-east-1a', 'us-east-1b'],
  databaseSubnetIds: ['subnet-0d1', 'subnet-0d2'],
  workerSubnetIds: ['subnet-0e1', 'subnet-0e2'],
} as const;

interface NetworkInterface {
  DeviceIndex: number;
  AssociatePublicIpAddress?: boolean;
  Groups?: unknown[];
  SubnetId?: unknown;
}

function launchTemplates(built: Synthesised) {
  return Object.values(jsonOf(built.templates.workers).Resources ?? {})
    .filter((r) => r.Type === 'AWS::EC2::LaunchTemplate')
    .map((r) => r.Properties?.['LaunchTemplateData'] as { NetworkInterfaces?: NetworkInterface[]; SecurityGroupIds?: unknown[] });
}

function provisionerQueues(built: Synthesised): string {
  const fn = jsonOf(built.templates.workers).Resources?.[logicalId(built.workers, built.workers.provisioner)];
  return joinedText((fn?.Properties?.['Environment'] as { Variables: Record<string, unknown> }).Variables[ENV_KEYS.workerQueues]);
}

/** Problems with the launch templates of a stage whose worker subnets are (or are not) public. */
function publicIpProblems(built: Synthesised, subnetsArePublic: boolean): string[] {
  const problems: string[] = [];
  const securityGroup = built.workers.resolve(built.workers.queues[0]!.launchTemplate.connections.securityGroups[0]!.securityGroupId);
  for (const [i, data] of launchTemplates(built).entries()) {
    const primary = data.NetworkInterfaces?.find((n) => n.DeviceIndex === 0);
    if (!subnetsArePublic) {
      if (primary !== undefined) problems.push(`template ${i}: a network interface although the subnets are private`);
      continue;
    }
    if (primary?.AssociatePublicIpAddress !== true) problems.push(`template ${i}: no public IP requested in the primary network interface`);
    else {
      if (JSON.stringify(primary.Groups) !== JSON.stringify([securityGroup])) problems.push(`template ${i}: the interface lacks the worker security group`);
      if (data.SecurityGroupIds !== undefined) problems.push(`template ${i}: instance-level security groups beside a network interface`);
      if (primary.SubnetId !== undefined) problems.push(`template ${i}: a fixed subnet in the template`);
    }
  }
  const queues = provisionerQueues(built);
  if (subnetsArePublic !== queues.includes('"networkInterface":{"associatePublicIpAddress":true,"securityGroupIds":["<token>"]}')) {
    problems.push(`the provisioner does not know the interface: ${queues}`);
  }
  return problems;
}

describe('invariant: workers in public subnets request a public IP', () => {
  // Synthesised while the file is collected: under load a synthesis can take longer than a test's timeout.
  const existingPublic = synthKuroko({ vpc: { ...EXISTING, workerSubnetsArePublic: true }, workerQueues: [{ name: '@default' }, { name: 'build' }] });
  const newVpc = synthKuroko();
  const existingPrivate = synthKuroko({ vpc: { ...EXISTING, workerSubnetsArePublic: false } });

  it('holds for an existing VPC whose worker subnets are public, for every queue', () => {
    expect(launchTemplates(existingPublic)).toHaveLength(2);
    expect(publicIpProblems(existingPublic, true)).toEqual([]);
  });

  it('holds for the new VPC, whose worker subnets are public', () => {
    expect(publicIpProblems(newVpc, true)).toEqual([]);
  });

  it('requests none in the private subnets of an existing VPC', () => {
    expect(publicIpProblems(existingPrivate, false)).toEqual([]);
  });
});
