import { DescribeInstancesCommand, EC2Client, RunInstancesCommand, TerminateInstancesCommand, type RunInstancesCommandInput } from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { Ec2Fleet } from '../../adapters/aws/ec2-fleet';
import { ConfigError, ExternalServiceError } from '../../core/errors';
import { WORKER_TAGS } from '../../app/config/env-keys';

const ec2 = mockClient(EC2Client);
const client = new EC2Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
const awsError = (name: string, fault: 'client' | 'server' = 'client') => Object.assign(new Error(name), { name, $fault: fault });

const fleet = () =>
  new Ec2Fleet({
    client,
    stage: 'prod',
    tags: WORKER_TAGS,
    clientToken: () => 'token-1',
    queues: [{ name: 'batch', launchTemplateId: 'lt-1', launchTemplateVersion: '7', subnetIds: ['subnet-a', 'subnet-b'] }],
  });

beforeEach(() => ec2.reset());

describe('Ec2Fleet.launch', () => {
  it('runs instances from the launch template version with the managed, queue and stage tags, idempotently', async () => {
    ec2.on(RunInstancesCommand).resolves({ Instances: [{ InstanceId: 'i-1' }, { InstanceId: 'i-2' }] });
    expect(await fleet().launch('batch', 2)).toEqual(['i-1', 'i-2']);
    const input = ec2.commandCalls(RunInstancesCommand)[0]!.args[0].input;
    expect(input).toMatchObject({ LaunchTemplate: { LaunchTemplateId: 'lt-1', Version: '7' }, MinCount: 1, MaxCount: 2, SubnetId: 'subnet-a', ClientToken: 'token-1' });
    const tags = Object.fromEntries((input.TagSpecifications?.[0]?.Tags ?? []).map((t) => [t.Key, t.Value]));
    expect(tags).toEqual({ 'kuroko:managed': 'true', 'kuroko:queue': 'batch', 'kuroko:stage': 'prod', Name: 'kuroko-prod-batch' });
    expect(input.TagSpecifications?.[1]?.ResourceType).toBe('volume');
  });

  it('moves to the next subnet when a zone has no capacity, and rotates the start for the next launch', async () => {
    ec2
      .on(RunInstancesCommand, { SubnetId: 'subnet-a' })
      .rejects(awsError('InsufficientInstanceCapacity', 'server'))
      .on(RunInstancesCommand, { SubnetId: 'subnet-b' })
      .resolves({ Instances: [{ InstanceId: 'i-b' }] });
    const f = fleet();
    expect(await f.launch('batch', 1)).toEqual(['i-b']);
    await f.launch('batch', 1);
    const subnets = ec2.commandCalls(RunInstancesCommand).map((c) => c.args[0].input.SubnetId);
    // After subnet-b succeeded, the next launch starts at subnet-a again.
    expect(subnets).toEqual(['subnet-a', 'subnet-b', 'subnet-a', 'subnet-b']);
  });

  it('fails with a retryable ExternalServiceError when every subnet is out of capacity', async () => {
    ec2.on(RunInstancesCommand).rejects(awsError('InsufficientInstanceCapacity', 'server'));
    const error = await fleet().launch('batch', 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExternalServiceError);
    expect((error as ExternalServiceError).retryable).toBe(true);
  });

  it('translates a permission error at once, without trying other subnets', async () => {
    ec2.on(RunInstancesCommand).rejects(awsError('UnauthorizedOperation'));
    const error = await fleet().launch('batch', 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExternalServiceError);
    expect((error as Error).message).toContain('RunInstances failed (UnauthorizedOperation)');
    expect(ec2.commandCalls(RunInstancesCommand)).toHaveLength(1);
  });

  it('launches nothing for zero and refuses an unknown queue', async () => {
    expect(await fleet().launch('batch', 0)).toEqual([]);
    await expect(fleet().launch('other', 1)).rejects.toBeInstanceOf(ConfigError);
    expect(ec2.commandCalls(RunInstancesCommand)).toHaveLength(0);
  });
});

describe('Ec2Fleet.launch from a launch template with a network interface (public IP)', () => {
  /**
   * EC2 merges the request into the launch template and refuses an instance-level SubnetId (or security groups) next
   * to a network interface: InvalidParameterCombination, "Network interfaces and an instance-level subnet ID may not be
   * specified on the same request" (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RunInstances.html,
   * SubnetId: "If you specify a network interface, you must specify any subnets as part of the network interface").
   */
  const templatesWithInterface = new Set(['lt-public']);
  const runInstancesLikeEc2 = (input: RunInstancesCommandInput) => {
    const templateHasInterface = templatesWithInterface.has(input.LaunchTemplate?.LaunchTemplateId ?? '');
    const interfaces = input.NetworkInterfaces ?? [];
    if ((templateHasInterface || interfaces.length > 0) && (input.SubnetId !== undefined || input.SecurityGroupIds !== undefined)) {
      throw awsError('InvalidParameterCombination');
    }
    const subnet = interfaces.find((n) => n.DeviceIndex === 0)?.SubnetId ?? input.SubnetId;
    return { Instances: [{ InstanceId: `i-in-${subnet}` }] };
  };
  const publicFleet = () =>
    new Ec2Fleet({
      client,
      stage: 'prod',
      tags: WORKER_TAGS,
      clientToken: () => 'token-1',
      queues: [
        {
          name: 'public',
          launchTemplateId: 'lt-public',
          subnetIds: ['subnet-a', 'subnet-b'],
          networkInterface: { associatePublicIpAddress: true, securityGroupIds: ['sg-1'] },
        },
      ],
    });

  it('names the subnet inside the primary interface, with the public IP and the security groups', async () => {
    ec2.on(RunInstancesCommand).callsFake(runInstancesLikeEc2);
    const f = publicFleet();
    expect(await f.launch('public', 1)).toEqual(['i-in-subnet-a']);
    expect(await f.launch('public', 1)).toEqual(['i-in-subnet-b']);
    const input = ec2.commandCalls(RunInstancesCommand)[0]!.args[0].input;
    expect(input.SubnetId).toBeUndefined();
    expect(input.NetworkInterfaces).toEqual([{ DeviceIndex: 0, SubnetId: 'subnet-a', AssociatePublicIpAddress: true, Groups: ['sg-1'] }]);
  });

  it('is refused by the stand-in as EC2 refuses it when the subnet is given at instance level', () => {
    expect(() => runInstancesLikeEc2({ LaunchTemplate: { LaunchTemplateId: 'lt-public' }, MinCount: 1, MaxCount: 1, SubnetId: 'subnet-a' })).toThrow(
      'InvalidParameterCombination',
    );
  });
});

describe('Ec2Fleet.list', () => {
  it('filters by tags and live states and follows NextToken', async () => {
    const launched = new Date('2026-03-01T11:00:00Z');
    ec2
      .on(DescribeInstancesCommand, { NextToken: undefined })
      .resolves({ Reservations: [{ Instances: [{ InstanceId: 'i-1', State: { Name: 'pending' }, LaunchTime: launched }] }], NextToken: 'n1' })
      .on(DescribeInstancesCommand, { NextToken: 'n1' })
      .resolves({
        Reservations: [
          { Instances: [{ InstanceId: 'i-2', State: { Name: 'running' }, LaunchTime: launched }, { InstanceId: 'i-3', State: { Name: 'stopping' } }] },
        ],
      });
    expect(await fleet().list('batch')).toEqual([
      { instanceId: 'i-1', state: 'pending', launchedAt: launched },
      { instanceId: 'i-2', state: 'running', launchedAt: launched },
    ]);
    const filters = ec2.commandCalls(DescribeInstancesCommand)[0]!.args[0].input.Filters;
    expect(filters).toEqual([
      { Name: 'tag:kuroko:managed', Values: ['true'] },
      { Name: 'tag:kuroko:queue', Values: ['batch'] },
      { Name: 'tag:kuroko:stage', Values: ['prod'] },
      { Name: 'instance-state-name', Values: ['pending', 'running'] },
    ]);
  });
});

describe('Ec2Fleet.terminate', () => {
  it('terminates the ids, and one already gone does not block the others', async () => {
    ec2
      .on(TerminateInstancesCommand, { InstanceIds: ['i-1', 'i-gone'] })
      .rejects(awsError('InvalidInstanceID.NotFound'))
      .on(TerminateInstancesCommand, { InstanceIds: ['i-gone'] })
      .rejects(awsError('InvalidInstanceID.NotFound'))
      .on(TerminateInstancesCommand, { InstanceIds: ['i-1'] })
      .resolves({});
    await fleet().terminate(['i-1', 'i-gone']);
    expect(ec2.commandCalls(TerminateInstancesCommand).map((c) => c.args[0].input.InstanceIds)).toEqual([['i-1', 'i-gone'], ['i-1'], ['i-gone']]);
  });

  it('translates other failures', async () => {
    ec2.on(TerminateInstancesCommand).rejects(awsError('RequestLimitExceeded'));
    const error = await fleet().terminate(['i-1']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExternalServiceError);
    expect((error as ExternalServiceError).retryable).toBe(true);
  });
});
