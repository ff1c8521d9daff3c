/**
 * Issue 13, IAM: the provisioner launches only what the worker launch templates say (ec2:IsLaunchTemplateResource),
 * into the worker subnets; a worker puts log events only into execution streams.
 *
 * - ec2:IsLaunchTemplateResource is true for a resource the launch template specifies, so requiring it stops a
 *   RunInstances call from overriding the template's image, security group, volumes or instance settings:
 *   https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/use-launch-templates-to-control-launching-instances.html
 *   (and the "Launch templates" examples of https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ExamplePolicies_EC2.html).
 *   The subnet is chosen per launch, so the subnet and network interface are allowed without it, for the worker
 *   subnets only.
 * - CloudWatch Logs: a worker may write only to the execution log group, which holds nothing but execution streams.
 *   Binding a stream to the very instance that writes it (the "each worker writes only its own log streams")
 *   cannot be expressed: CloudWatch Logs authorizes PutLogEvents on the stream ARN
 *   (arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}:log-stream:${LogStreamName},
 *   https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatchlogs.html) and has no
 *   condition key for the stream name, and the per-instance request values usable as policy variables
 *   (${aws:userid} = role-id:instance-id for an EC2 role, ${ec2:SourceInstanceARN}) contain ':', which a stream name
 *   may not (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogStream.html). This stays
 *   open in docs/security.md; what is proved here is the bound that does hold.
 */
import { describe, expect, it } from 'vitest';
import { executionLogStreamName } from '../adapters/aws/cloudwatch-log-sink';
import { iamStatements } from './helpers/iam-statements';
import { TEST_EMAIL, logicalId, synthKuroko } from './helpers/synth-app';

const built = synthKuroko({
  alertEmail: TEST_EMAIL,
  workerQueues: [{ name: '@default' }, { name: 'build', instanceType: 'c7i.large', architecture: 'x86_64' }],
});
const stack = built.workers;
const all = iamStatements(built.templates.workers);
const provisionerRole = logicalId(stack, stack.provisioner.executionRole);
const runInstances = all.filter((s) => s.roles.includes(provisionerRole) && s.actions.includes('ec2:RunInstances'));
const json = (v: unknown) => JSON.stringify(v);
const templateArnsOf = (condition: Record<string, unknown> | undefined) => json((condition?.['ArnEquals'] as Record<string, unknown> | undefined)?.['ec2:LaunchTemplate']);

describe('provisioner: RunInstances', () => {
  it('requires ec2:IsLaunchTemplateResource for the instance, image, security group and volumes, and one of our templates', () => {
    for (const kind of ['instance/*', 'image/*', 'security-group/*', 'volume/*']) {
      const statement = runInstances.find((s) => json(s.resources).includes(`:${kind}`));
      expect(statement, kind).toBeDefined();
      expect(statement?.condition?.['Bool'], kind).toEqual({ 'ec2:IsLaunchTemplateResource': 'true' });
      for (const q of stack.queues) expect(templateArnsOf(statement?.condition)).toContain(json(stack.resolve(q.binding.launchTemplateId)).slice(1, -1));
    }
  });

  it('launches into the worker subnets only, not any subnet', () => {
    const subnetStatements = runInstances.filter((s) => json(s.resources).includes(':subnet/'));
    expect(subnetStatements).toHaveLength(1);
    const resources = subnetStatements[0]!.resources;
    expect(json(resources)).not.toContain(':subnet/*');
    const subnetIds = [...new Set(stack.queues.flatMap((q) => q.binding.subnetIds))].map((id) => json(stack.resolve(id)));
    expect(subnetIds.length).toBeGreaterThan(0);
    for (const id of subnetIds) expect(json(resources)).toContain(id);
    expect(templateArnsOf(subnetStatements[0]!.condition)).not.toBe('undefined');
  });

  it('has no RunInstances statement without a launch template bound (but the one on the templates themselves)', () => {
    const unbound = runInstances.filter((s) => s.condition?.['ArnEquals'] === undefined);
    expect(unbound).toHaveLength(1);
    expect(json(unbound[0]!.resources)).toContain('launch-template/');
  });
});

describe('workers: CloudWatch Logs', () => {
  it('create streams and put events in the execution log group and their boot log group only, and read no log at all', () => {
    const allowed = [stack.resolve(built.engine.executionLogGroup.logGroupArn), stack.resolve(stack.bootLogGroup.logGroupArn)];
    for (const q of stack.queues) {
      const role = logicalId(stack, q.role);
      const logStatements = all.filter((s) => s.roles.includes(role) && s.actions.some((a) => a.startsWith('logs:')));
      expect(logStatements.length).toBeGreaterThan(0);
      for (const statement of logStatements) {
        expect([...statement.actions].sort()).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents']);
        for (const resource of statement.resources) expect(allowed.map(json)).toContain(json(resource));
      }
      expect(logStatements.flatMap((s) => s.resources).map(json)).toContain(json(allowed[0]));
    }
    // The group's only writer is the agent: its streams are the executions' (`executions/<id>`).
    expect(executionLogStreamName(7)).toBe('executions/7');
  });
});
