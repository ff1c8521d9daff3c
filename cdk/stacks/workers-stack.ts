/**
 * The workers: per queue a launch template, role and agent configuration, plus the provisioner Lambda that
 * starts and stops on-demand instances from them. The provisioner lives here rather than in the EngineStack
 * because it needs the launch templates and worker roles, and the workers need the engine's log group and
 * processor: keeping it here keeps the stack references one-way (Data -> Engine -> Workers).
 */
import {
  CfnOutput,
  Duration,
  RemovalPolicy,
  Stack,
  type StackProps,
  aws_ec2 as ec2,
  aws_events as events,
  aws_events_targets as targets,
  aws_iam as iam,
  type aws_lambda as lambda,
  aws_logs as logs,
  type aws_sns as sns,
  aws_ssm as ssm,
} from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { ENV_KEYS, LAMBDA_NAMES, WORKER_TAGS } from '../../app/config/env-keys';
import { AgentAsset } from '../constructs/agent-asset';
import type { DatabaseBinding } from '../constructs/database-binding';
import { EngineFunction } from '../constructs/engine-function';
import { FunctionAlarms } from '../constructs/function-alarms';
import { WorkerQueue, queueSlug } from '../constructs/worker-queue';
import type { DeployConfig } from '../deploy-config';
import { acknowledge } from '../nag';
import type { DoorbellQueue } from '../constructs/doorbell-queue';

const PROVISIONER_TIMEOUT = Duration.seconds(60);
const INSTANCE_WILDCARD = 'Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*';

export interface KurokoWorkersProps {
  readonly config: DeployConfig;
  /** The runtime user, for the provisioner. */
  readonly database: DatabaseBinding;
  /** The agent user: the workers reach the database as it, and can read no other database secret. */
  readonly agentDatabase: DatabaseBinding;
  readonly vpc: ec2.IVpc;
  readonly workerSubnets: readonly ec2.ISubnet[];
  /** The worker subnets are public: instances get a public IP (DataStack.workerSubnetsArePublic). */
  readonly workerSubnetsArePublic: boolean;
  readonly executionLogGroup: logs.ILogGroup;
  readonly processor: lambda.IFunction;
  /** The agents long-poll it (cdk/constructs/doorbell-queue.ts). */
  readonly doorbell?: DoorbellQueue;
  readonly alertTopic: sns.ITopic;
  readonly logRetention: logs.RetentionDays;
  /**
   * The name of the engine's idle-sleep parameter when idle sleep is on: the provisioner's tick skips while it says
   * asleep. A name, not the parameter: see sleepParameterName.
   */
  readonly sleepParameterName?: string;
}

export interface WorkersStackProps extends StackProps, KurokoWorkersProps {}

/** What the WorkersStack holds, as a construct (cdk/kuroko.ts puts it into a stack of another app). */
export class KurokoWorkers extends Construct {
  readonly queues: readonly WorkerQueue[];
  readonly provisioner: EngineFunction;
  readonly bootLogGroup: logs.LogGroup;
  readonly provisionerTick: events.Rule;

  constructor(scope: Construct, id: string, props: KurokoWorkersProps) {
    super(scope, id);
    const { config } = props;
    const stage = config.stageName;

    const securityGroup = new ec2.SecurityGroup(this, 'WorkerSecurityGroup', {
      vpc: props.vpc,
      description: `Kuroko ${stage} workers: no ingress; egress open because jobs run arbitrary commands`,
      allowAllOutbound: true,
    });
    const agentAsset = new AgentAsset(this, 'AgentBundle');
    // cloud-init's output of every worker boot (worker-queue.ts): a failed boot leaves a trace here.
    this.bootLogGroup = new logs.LogGroup(this, 'WorkerBootLogs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.queues = config.workerQueues.map(
      (queue) =>
        new WorkerQueue(this, `Queue-${queueSlug(queue.name)}`, {
          queue,
          stage,
          database: props.agentDatabase,
          executionLogGroup: props.executionLogGroup,
          processor: props.processor,
          ...(props.doorbell ? { doorbell: props.doorbell } : {}),
          agentAsset,
          securityGroup,
          subnets: props.workerSubnets,
          publicIp: props.workerSubnetsArePublic,
          bootLogGroup: this.bootLogGroup,
        }),
    );

    this.provisioner = new EngineFunction(this, 'Provisioner', {
      name: LAMBDA_NAMES.provisioner,
      stage,
      description: 'Starts and stops on-demand workers per queue',
      logRetention: props.logRetention,
      timeout: PROVISIONER_TIMEOUT,
    }).bindDatabase(props.database);
    this.provisioner.addEnvironment(
      ENV_KEYS.workerQueues,
      Stack.of(this).toJsonString(this.queues.map((q) => q.binding)),
    );
    if (props.sleepParameterName !== undefined) {
      this.provisioner.bindSleep(ssm.StringParameter.fromStringParameterName(this, 'SleepParameter', props.sleepParameterName), 'read');
    }
    for (const statement of provisionerStatements(Stack.of(this), stage, this.queues)) {
      this.provisioner.addToRolePolicy(statement);
    }

    this.provisionerTick = new events.Rule(this, 'ProvisionerTick', {
      description: 'Runs the provisioner every minute',
      schedule: events.Schedule.rate(Duration.minutes(1)),
      targets: [new targets.LambdaFunction(this.provisioner, { retryAttempts: 0, maxEventAge: Duration.minutes(1) })],
    });
    new FunctionAlarms(this, 'ProvisionerAlarms', { fn: this.provisioner, topic: props.alertTopic });

    new CfnOutput(this, 'WorkerBootLogGroupName', {
      description: "cloud-init output of every worker boot, one stream per instance id",
      value: this.bootLogGroup.logGroupName,
    });
    for (const q of this.queues) {
      new CfnOutput(this, `LaunchTemplate${queueSlug(q.binding.name).replace(/[^A-Za-z0-9]/g, '')}`, {
        description: `Launch template of queue ${q.binding.name}`,
        value: q.binding.launchTemplateId,
      });
    }

    const launchReason =
      'RunInstances needs these resource types by wildcard because their ids do not exist before launch; the statement only applies when ec2:LaunchTemplate is one of the worker launch templates.';
    for (const resource of ['volume', 'network-interface', 'security-group']) {
      acknowledge(this.provisioner.executionRole, `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:${resource}/*]`, launchReason);
    }
    acknowledge(this.provisioner.executionRole, 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>::image/*]', launchReason);
    acknowledge(this.provisioner.executionRole, `AwsSolutions-IAM5[${INSTANCE_WILDCARD}]`, 'Instance ids do not exist before launch: RunInstances on instance/* requires a worker launch template and the managed and stage request tags; TerminateInstances and CreateTags require the managed and stage resource tags; tag-on-create requires ec2:CreateAction=RunInstances.');
    acknowledge(this.provisioner.executionRole, 'AwsSolutions-IAM5[Resource::*]', 'ec2:DescribeInstances supports no resource-level permissions, so its resource must be *; it only reads.');
    for (const q of this.queues) {
      acknowledge(q.role, `AwsSolutions-IAM5[${INSTANCE_WILDCARD}]`, 'ec2:TerminateInstances on instance/* is bound by the kuroko:managed, kuroko:stage and kuroko:queue resource tags: a worker cannot know its instance id at synthesis.');
    }
  }
}

/**
 * What the provisioner may do in EC2, and nothing more: launch only from these launch templates with the
 * managed tag in the request, tag only at launch or what is already managed, terminate only managed
 * instances of this stage, read instance state, and pass only the worker roles, only to EC2.
 */
/** The workers' stack; its contents sit under the id `Default`, which keeps their logical ids (see DataStack). */
export class WorkersStack extends Stack {
  readonly contents: KurokoWorkers;
  readonly queues: readonly WorkerQueue[];
  readonly provisioner: EngineFunction;
  readonly bootLogGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: WorkersStackProps) {
    super(scope, id, props);
    const c = (this.contents = new KurokoWorkers(this, 'Default', props));
    ({ queues: this.queues, provisioner: this.provisioner, bootLogGroup: this.bootLogGroup } = c);
  }
}

export function provisionerStatements(stack: Stack, stage: string, queues: readonly WorkerQueue[]): iam.PolicyStatement[] {
  const ec2Arn = (resource: string, account = true) =>
    stack.formatArn({ service: 'ec2', resource, resourceName: '*', ...(account ? {} : { account: '' }) });
  const templateArns = queues.map((q) =>
    stack.formatArn({ service: 'ec2', resource: 'launch-template', resourceName: q.binding.launchTemplateId }),
  );
  const fromOurTemplates = { ArnEquals: { 'ec2:LaunchTemplate': templateArns } };
  // ec2:IsLaunchTemplateResource is true for a resource the launch template itself specifies: requiring it means the
  // provisioner cannot override the template's image, security group, volume or instance settings in RunInstances
  // (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/use-launch-templates-to-control-launching-instances.html).
  // The subnet is the one thing it chooses per launch (it rotates over the queue's subnets), so the subnet and the
  // network interface created in it go without that condition, bound to the worker subnets themselves instead.
  const fromOurTemplatesUnchanged = { ...fromOurTemplates, Bool: { 'ec2:IsLaunchTemplateResource': 'true' } };
  const subnetArns = [...new Set(queues.flatMap((q) => q.binding.subnetIds))].map((subnetId) =>
    stack.formatArn({ service: 'ec2', resource: 'subnet', resourceName: subnetId }),
  );
  return [
    new iam.PolicyStatement({ sid: 'LaunchFromWorkerTemplates', actions: ['ec2:RunInstances'], resources: templateArns }),
    new iam.PolicyStatement({
      sid: 'LaunchResourcesOfWorkerTemplates',
      actions: ['ec2:RunInstances'],
      resources: [ec2Arn('volume'), ec2Arn('security-group'), ec2Arn('image', false)],
      conditions: fromOurTemplatesUnchanged,
    }),
    new iam.PolicyStatement({
      sid: 'LaunchIntoWorkerSubnets',
      actions: ['ec2:RunInstances'],
      resources: [...subnetArns, ec2Arn('network-interface')],
      conditions: fromOurTemplates,
    }),
    new iam.PolicyStatement({
      sid: 'LaunchManagedInstances',
      actions: ['ec2:RunInstances'],
      resources: [ec2Arn('instance')],
      conditions: {
        ...fromOurTemplatesUnchanged,
        StringEquals: {
          [`aws:RequestTag/${WORKER_TAGS.managed}`]: 'true',
          [`aws:RequestTag/${WORKER_TAGS.stage}`]: stage,
        },
      },
    }),
    new iam.PolicyStatement({
      sid: 'TagAtLaunch',
      actions: ['ec2:CreateTags'],
      resources: [ec2Arn('instance'), ec2Arn('volume')],
      conditions: { StringEquals: { 'ec2:CreateAction': 'RunInstances' } },
    }),
    new iam.PolicyStatement({
      sid: 'ManageManagedInstances',
      actions: ['ec2:TerminateInstances', 'ec2:CreateTags'],
      resources: [ec2Arn('instance')],
      conditions: {
        StringEquals: {
          [`aws:ResourceTag/${WORKER_TAGS.managed}`]: 'true',
          [`aws:ResourceTag/${WORKER_TAGS.stage}`]: stage,
        },
      },
    }),
    new iam.PolicyStatement({ sid: 'ReadInstances', actions: ['ec2:DescribeInstances'], resources: ['*'] }),
    new iam.PolicyStatement({
      sid: 'PassWorkerRoles',
      actions: ['iam:PassRole'],
      resources: queues.map((q) => q.role.roleArn),
      conditions: { StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } },
    }),
  ];
}
