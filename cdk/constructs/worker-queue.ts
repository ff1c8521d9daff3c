/**
 * One worker queue: a launch template for on-demand EC2 workers, the role they run with, and the SSM
 * parameter that tells the agent which database, queue, slots and idle limit to use.
 */
import {
  Stack,
  Tags,
  aws_ec2 as ec2,
  aws_iam as iam,
  type aws_lambda as lambda,
  type aws_logs as logs,
  aws_ssm as ssm,
} from 'aws-cdk-lib';
import { Construct } from 'constructs';
import type { WorkerQueueBinding } from '../../app/config/config';
import type { AgentParameter } from '../../app/config/config-schemas';
import { ENV_KEYS, WORKER_TAGS } from '../../app/config/env-keys';
import type { WorkerQueueConfig } from '../deploy-config';
import { AGENT_BUNDLE_FILE, type AgentAsset } from './agent-asset';
import { AGENT_RESTART_SECONDS } from './agent-unit';
import type { DoorbellQueue } from './doorbell-queue';
import { EC2_AGENT_ENV, EC2_AGENT_NODE_FLAGS, EC2_FLEET_FILE, WORKER_NODE_MAJOR } from '../../scripts/agent-bundle';
import { grantDataApi, type DatabaseBinding } from './database-binding';
import { AGENT_ENV_FILE, IMDS_FIREWALL_SERVICE, JOB_USER, workerIsolationCommands } from './worker-isolation';

export const AGENT_INSTALL_DIR = '/opt/kuroko';
export const AGENT_SERVICE = 'kuroko-agent.service';
/** The agent's working directory (systemd's StateDirectory), root's alone. */
export const AGENT_STATE_DIR = '/var/lib/kuroko';
const AGENT_STOP_TIMEOUT_SECONDS = 90;

/** AL2023's public SSM parameter for the current AMI of an architecture. */
export const al2023AmiParameter = (architecture: WorkerQueueConfig['architecture']): string =>
  `/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-${architecture}`;

/**
 * A queue name as a path segment and construct id. SSM names cannot hold `@`, and `.` cannot occur in a
 * queue name, so `@default` becomes `at.default` without colliding with a queue called `at-default`.
 */
export const queueSlug = (name: string): string => name.replace(/^@/, 'at.');

export interface WorkerQueueProps {
  readonly queue: WorkerQueueConfig;
  readonly stage: string;
  readonly database: DatabaseBinding;
  readonly executionLogGroup: logs.ILogGroup;
  readonly processor: lambda.IFunction;
  /** The doorbell the agents long-poll. */
  readonly doorbell?: DoorbellQueue;
  readonly agentAsset: AgentAsset;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly subnets: readonly ec2.ISubnet[];
  /** The subnets are public: request a public IP, or the instance cannot reach AWS APIs or install Node.js. */
  readonly publicIp: boolean;
  /** Where each instance ships its cloud-init output when its user data ends, one stream per instance. */
  readonly bootLogGroup: logs.ILogGroup;
}

export class WorkerQueue extends Construct {
  readonly role: iam.Role;
  readonly launchTemplate: ec2.LaunchTemplate;
  readonly parameter: ssm.StringParameter;
  /** What the provisioner needs to know about this queue. */
  readonly binding: WorkerQueueBinding;

  constructor(scope: Construct, id: string, props: WorkerQueueProps) {
    super(scope, id);
    const { queue, stage } = props;
    const region = Stack.of(this).region;

    const agentParameter: AgentParameter = {
      stage,
      region,
      database: props.database,
      queue: queue.name,
      slots: queue.slotsPerWorker,
      idleMinutes: queue.idleMinutes,
      // An idle agent ends its instance (instances terminate on shutdown) unless the queue's minimum keeps it.
      shutdownWhenIdle: true,
      minInstances: queue.minInstances,
      executionLogGroupName: props.executionLogGroup.logGroupName,
      processorFunctionName: props.processor.functionName,
      ...(props.doorbell ? { doorbellQueueUrl: props.doorbell.queue.queueUrl } : {}),
    };
    this.parameter = new ssm.StringParameter(this, 'AgentConfig', {
      parameterName: `/kuroko/${stage}/workers/${queueSlug(queue.name)}/agent-config`,
      description: `Kuroko ${stage}: agent configuration for queue ${queue.name}`,
      stringValue: Stack.of(this).toJsonString(agentParameter),
    });

    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: `Kuroko ${stage} worker for queue ${queue.name}: Data API, its log group, its config, itself`,
    });
    grantDataApi(this.role, props.database);
    // The execution log group holds nothing but the `executions/<id>` streams (adapters/aws/cloudwatch-log-sink.ts). IAM
    // cannot bind a stream to the instance writing it: the per-instance policy variables (${aws:userid} =
    // role-id:instance-id, ${ec2:SourceInstanceARN}) hold ':', which no stream name may (docs/security.md).
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [props.executionLogGroup.logGroupArn],
      }),
    );
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['ssm:GetParameter'], resources: [this.parameter.parameterArn] }),
    );
    props.doorbell?.bindListener(this.role);
    // After a finished command the agent nudges the processor so the token moves on within seconds.
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [props.processor.functionArn] }),
    );
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject'],
        resources: [props.agentAsset, props.agentAsset.ec2FleetAsset].map((asset) => asset.bucket.arnForObjects(asset.s3ObjectKey)),
      }),
    );
    // An idle worker terminates itself. IAM has no documented "this very instance" key, so the bound is the
    // tags only this queue's managed workers carry; the role has no CreateTags, and job commands, cut off from the
    // metadata service (worker-isolation.ts), hold no credentials at all.
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['ec2:TerminateInstances'],
        resources: [Stack.of(this).formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' })],
        conditions: {
          StringEquals: {
            [`aws:ResourceTag/${WORKER_TAGS.managed}`]: 'true',
            [`aws:ResourceTag/${WORKER_TAGS.stage}`]: stage,
            [`aws:ResourceTag/${WORKER_TAGS.queue}`]: queue.name,
          },
        },
      }),
    );

    const userData = ec2.UserData.forLinux();
    userData.addCommands(
      'set -euo pipefail',
      `dnf install -y nodejs${WORKER_NODE_MAJOR} nftables`,
      ...workerIsolationCommands(),
      `install -d -m 0700 -o root -g root ${AGENT_INSTALL_DIR}`,
    );
    const agentFile = `${AGENT_INSTALL_DIR}/${AGENT_BUNDLE_FILE}`;
    // The agent imports the EC2 client's file from its own folder when it terminates its instance.
    const ec2FleetFile = `${AGENT_INSTALL_DIR}/${EC2_FLEET_FILE}`;
    for (const [asset, localFile] of [[props.agentAsset, agentFile], [props.agentAsset.ec2FleetAsset, ec2FleetFile]] as const) {
      userData.addS3DownloadCommand({ bucket: asset.bucket, bucketKey: asset.s3ObjectKey, localFile });
    }
    userData.addCommands(
      `chmod 0600 ${agentFile} ${ec2FleetFile}`,
      // The agent's environment, root's alone (umask 077 above): job commands run as another user.
      `cat > ${AGENT_ENV_FILE} <<'ENV'`,
      `${ENV_KEYS.agentConfigParameter}=${this.parameter.parameterName}`,
      `AWS_REGION=${region}`,
      ...Object.entries(EC2_AGENT_ENV).map(([key, value]) => `${key}=${value}`),
      'ENV',
      `chmod 0600 ${AGENT_ENV_FILE}`,
      `cat > /etc/systemd/system/${AGENT_SERVICE} <<'UNIT'`,
      ...systemdUnit({ queue: queue.name, agentFile }),
      'UNIT',
      'systemctl daemon-reload',
      `systemctl enable --now ${AGENT_SERVICE}`,
    );

    shipBootLog(userData, props.bootLogGroup.logGroupName, region);
    // Only the boot log group, for the boot log's own stream (named after the instance, unknown at synthesis).
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [props.bootLogGroup.logGroupArn],
      }),
    );

    this.launchTemplate = new ec2.LaunchTemplate(this, 'LaunchTemplate', {
      versionDescription: `Kuroko ${stage} worker for queue ${queue.name}`,
      machineImage: ec2.MachineImage.fromSsmParameter(al2023AmiParameter(queue.architecture), {
        os: ec2.OperatingSystemType.LINUX,
      }),
      instanceType: new ec2.InstanceType(queue.instanceType),
      userData,
      instanceProfile: new iam.InstanceProfile(this, 'InstanceProfile', { role: this.role }),
      securityGroup: props.securityGroup,
      // In the launch template's network interface (with the security group), because a subnet that does not map
      // public IPs by default leaves the worker offline otherwise.
      ...(props.publicIp ? { associatePublicIpAddress: true } : {}),
      requireImdsv2: true,
      httpPutResponseHopLimit: 1,
      // The agent and OS-level `shutdown` both end the instance: stopped workers would only cost storage.
      instanceInitiatedShutdownBehavior: ec2.InstanceInitiatedShutdownBehavior.TERMINATE,
      blockDevices: [
        {
          deviceName: '/dev/xvda',
          volume: ec2.BlockDeviceVolume.ebs(queue.volumeGiB, {
            encrypted: true,
            volumeType: ec2.EbsDeviceVolumeType.GP3,
            deleteOnTermination: true,
          }),
        },
      ],
    });
    Tags.of(this.launchTemplate).add(WORKER_TAGS.managed, 'true');
    Tags.of(this.launchTemplate).add(WORKER_TAGS.queue, queue.name);
    Tags.of(this.launchTemplate).add(WORKER_TAGS.stage, stage);

    const launchTemplateId = this.launchTemplate.launchTemplateId;
    if (launchTemplateId === undefined) throw new Error('a launch template created here always has an id');
    this.binding = {
      name: queue.name,
      launchTemplateId,
      subnetIds: props.subnets.map((s) => s.subnetId),
      slotsPerWorker: queue.slotsPerWorker,
      minInstances: queue.minInstances,
      maxInstances: queue.maxInstances,
      idleMinutes: queue.idleMinutes,
      ...(props.publicIp ? { networkInterface: { associatePublicIpAddress: true, securityGroupIds: [props.securityGroup.securityGroupId] } } : {}),
    };
  }
}

/** The tail of cloud-init's output that is shipped: one log event, well under PutLogEvents' per-event limit. */
export const BOOT_LOG_TAIL_BYTES = 200_000;
export const CLOUD_INIT_OUTPUT = '/var/log/cloud-init-output.log';

/**
 * When the user data exits, successfully or not (`set -e` stops it at the first failing command), ships the tail of
 * cloud-init's output to the boot log group under the instance id: a worker that never registers leaves a trace
 * someone can read without logging in. Every step may fail without changing the script's outcome.
 */
function shipBootLog(userData: ec2.UserData, logGroupName: string, region: string): void {
  const events = '/run/kuroko-boot-log.json';
  const toEvents = [
    'import json, sys, time',
    `tail = open("${CLOUD_INIT_OUTPUT}", "rb").read()[-${BOOT_LOG_TAIL_BYTES}:].decode("utf-8", "replace")`,
    'print(json.dumps([{"timestamp": int(time.time() * 1000), "message": tail}]))',
  ].join('; ');
  const logs = `aws logs --region ${region}`;
  userData.addOnExitCommands(
    'echo "kuroko worker boot: user data exited with status ${exitCode}"',
    'boot_stream="$(cloud-init query v1.instance_id 2>/dev/null || hostname)"',
    `python3 -c '${toEvents}' > ${events} || true`,
    `${logs} create-log-stream --log-group-name '${logGroupName}' --log-stream-name "$boot_stream" || true`,
    `${logs} put-log-events --log-group-name '${logGroupName}' --log-stream-name "$boot_stream" --log-events file://${events} || true`,
  );
}

interface UnitOptions {
  readonly queue: string;
  readonly agentFile: string;
}

/**
 * The agent's systemd unit. KillMode=mixed sends TERM to the agent alone, so it can stop claiming and kill
 * its commands' process groups itself (TERM, then KILL) before systemd kills what is left.
 *
 * The agent runs as root so that it can start each command as JOB_USER (`--run-as`; root's capabilities are all
 * dropped on the way) and kill its process group; it needs the firewall that keeps JOB_USER from the metadata
 * service, and does not start without it.
 */
function systemdUnit(o: UnitOptions): string[] {
  return [
    '[Unit]',
    `Description=Kuroko worker agent (queue ${o.queue})`,
    'Wants=network-online.target',
    `After=network-online.target ${IMDS_FIREWALL_SERVICE}`,
    `Requires=${IMDS_FIREWALL_SERVICE}`,
    '',
    '[Service]',
    'Type=simple',
    'User=root',
    'StateDirectory=kuroko',
    'StateDirectoryMode=0700',
    `WorkingDirectory=${AGENT_STATE_DIR}`,
    `EnvironmentFile=${AGENT_ENV_FILE}`,
    `ExecStart=/usr/bin/node-${WORKER_NODE_MAJOR} ${EC2_AGENT_NODE_FLAGS.join(' ')} ${o.agentFile} --run-as ${JOB_USER}`,
    'Restart=on-failure',
    `RestartSec=${AGENT_RESTART_SECONDS}`,
    'KillMode=mixed',
    `TimeoutStopSec=${AGENT_STOP_TIMEOUT_SECONDS}`,
    '',
    '[Install]',
    'WantedBy=multi-user.target',
  ];
}
