/**
 * The managed worker instances of each queue, over EC2: launch from the queue's launch template, list what is
 * pending or running, terminate. Every instance carries the managed, queue and stage tags in the launch request
 * itself, because the provisioner's IAM policy only allows RunInstances with those request tags and only
 * terminates instances that carry them.
 */
import { randomUUID } from 'node:crypto';
import {
  DescribeInstancesCommand,
  EC2Client,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type Instance as Ec2Instance,
  type Tag,
} from '@aws-sdk/client-ec2';
import { ConfigError } from '../../core/errors';
import { FLEET_INSTANCE_STATE, type FleetInstanceState } from '../../core/services/provisioner-service';
import { awsErrorName, toExternalServiceError } from './aws-errors';

/** An EC2 client for `region`. */
export const createEc2Client = (region: string): EC2Client => new EC2Client({ region });

/** The tag keys of managed workers; the same values as WORKER_TAGS in app/config/env-keys.ts. */
export interface FleetTagKeys {
  queue: string;
  managed: string;
  stage: string;
}

/** What launching needs to know about one queue. */
export interface FleetQueue {
  name: string;
  launchTemplateId: string;
  /** '$Latest' when unset. */
  launchTemplateVersion?: string;
  /** Launches rotate over these; a subnet out of capacity is skipped for the next. */
  subnetIds: readonly string[];
  /**
   * When the launch template has a network interface (to request a public IP), the subnet goes inside the
   * interface: EC2 refuses an instance-level SubnetId next to a network interface
   * (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RunInstances.html, SubnetId).
   */
  networkInterface?: { associatePublicIpAddress: boolean; securityGroupIds: readonly string[] };
}

export interface Ec2FleetOptions {
  client: EC2Client;
  stage: string;
  queues: readonly FleetQueue[];
  tags: FleetTagKeys;
  /** ClientToken source (idempotent RunInstances); random UUIDs by default. */
  clientToken?: () => string;
}

/** A managed instance as listed. */
export interface ManagedInstance {
  instanceId: string;
  state: FleetInstanceState;
  launchedAt: Date;
}

const LATEST_VERSION = '$Latest';
const LISTED_STATES = [FLEET_INSTANCE_STATE.pending, FLEET_INSTANCE_STATE.running];
/** EC2 errors that mean "not in this subnet's zone now": the next subnet may have room. */
const CAPACITY_ERRORS = new Set(['InsufficientInstanceCapacity', 'InsufficientCapacity', 'Unsupported', 'InsufficientFreeAddressesInSubnet']);
/** TerminateInstances takes at most this many ids per call. */
const TERMINATE_BATCH = 1000;

/** Launches, lists and terminates the managed workers of each queue. */
export class Ec2Fleet {
  readonly #client: EC2Client;
  readonly #stage: string;
  readonly #queues: ReadonlyMap<string, FleetQueue>;
  readonly #tags: FleetTagKeys;
  readonly #clientToken: () => string;
  /** Where the next launch starts in each queue's subnet list, so launches spread over the zones. */
  readonly #nextSubnet = new Map<string, number>();

  constructor(options: Ec2FleetOptions) {
    this.#client = options.client;
    this.#stage = options.stage;
    this.#queues = new Map(options.queues.map((q) => [q.name, q]));
    this.#tags = options.tags;
    this.#clientToken = options.clientToken ?? randomUUID;
  }

  /** Launches up to `count` instances for the queue; returns the ids launched (fewer when every subnet is full). */
  async launch(queueName: string, count: number): Promise<string[]> {
    if (count <= 0) return [];
    const queue = this.#queue(queueName);
    const launched: string[] = [];
    const start = this.#nextSubnet.get(queueName) ?? 0;
    let lastCapacityError: unknown;
    for (let i = 0; i < queue.subnetIds.length && launched.length < count; i++) {
      const subnetIndex = (start + i) % queue.subnetIds.length;
      const subnetId = queue.subnetIds[subnetIndex]!;
      try {
        const output = await this.#client.send(
          new RunInstancesCommand({
            LaunchTemplate: { LaunchTemplateId: queue.launchTemplateId, Version: queue.launchTemplateVersion ?? LATEST_VERSION },
            MinCount: 1,
            MaxCount: count - launched.length,
            ...(queue.networkInterface === undefined
              ? { SubnetId: subnetId }
              : {
                  NetworkInterfaces: [
                    {
                      DeviceIndex: 0,
                      SubnetId: subnetId,
                      AssociatePublicIpAddress: queue.networkInterface.associatePublicIpAddress,
                      Groups: [...queue.networkInterface.securityGroupIds],
                    },
                  ],
                }),
            ClientToken: this.#clientToken(),
            TagSpecifications: [
              { ResourceType: 'instance', Tags: this.#tagsFor(queueName, true) },
              { ResourceType: 'volume', Tags: this.#tagsFor(queueName, false) },
            ],
          }),
        );
        for (const instance of output.Instances ?? []) if (instance.InstanceId) launched.push(instance.InstanceId);
        this.#nextSubnet.set(queueName, (subnetIndex + 1) % queue.subnetIds.length);
      } catch (error) {
        if (!CAPACITY_ERRORS.has(awsErrorName(error) ?? '')) throw toExternalServiceError('ec2', 'RunInstances', error);
        lastCapacityError = error;
      }
    }
    if (launched.length === 0 && lastCapacityError !== undefined) {
      throw toExternalServiceError('ec2', `RunInstances in every subnet of queue ${queueName}`, lastCapacityError);
    }
    return launched;
  }

  /** The queue's managed instances that are pending or running. */
  async list(queueName: string): Promise<ManagedInstance[]> {
    this.#queue(queueName);
    const found: ManagedInstance[] = [];
    let nextToken: string | undefined;
    do {
      let output;
      try {
        output = await this.#client.send(
          new DescribeInstancesCommand({
            Filters: [
              { Name: `tag:${this.#tags.managed}`, Values: ['true'] },
              { Name: `tag:${this.#tags.queue}`, Values: [queueName] },
              { Name: `tag:${this.#tags.stage}`, Values: [this.#stage] },
              { Name: 'instance-state-name', Values: [...LISTED_STATES] },
            ],
            ...(nextToken !== undefined ? { NextToken: nextToken } : {}),
          }),
        );
      } catch (error) {
        throw toExternalServiceError('ec2', 'DescribeInstances', error);
      }
      for (const reservation of output.Reservations ?? []) {
        for (const instance of reservation.Instances ?? []) {
          const managed = toManaged(instance);
          if (managed !== undefined) found.push(managed);
        }
      }
      nextToken = output.NextToken || undefined;
    } while (nextToken !== undefined);
    return found;
  }

  /** Terminates the instances; ids that no longer exist are ignored. */
  async terminate(instanceIds: readonly string[]): Promise<void> {
    for (let i = 0; i < instanceIds.length; i += TERMINATE_BATCH) {
      const batch = instanceIds.slice(i, i + TERMINATE_BATCH);
      try {
        await this.#client.send(new TerminateInstancesCommand({ InstanceIds: batch }));
      } catch (error) {
        // One unknown id fails the whole call: retry the others one by one so a gone instance cannot block them.
        if (awsErrorName(error) !== 'InvalidInstanceID.NotFound') throw toExternalServiceError('ec2', 'TerminateInstances', error);
        if (batch.length > 1) for (const id of batch) await this.terminate([id]);
      }
    }
  }

  #queue(name: string): FleetQueue {
    const queue = this.#queues.get(name);
    if (queue === undefined) throw new ConfigError([`queue ${name} has no launch template in the provisioner's configuration`]);
    if (queue.subnetIds.length === 0) throw new ConfigError([`queue ${name} has no subnet to launch in`]);
    return queue;
  }

  #tagsFor(queueName: string, withName: boolean): Tag[] {
    return [
      { Key: this.#tags.managed, Value: 'true' },
      { Key: this.#tags.queue, Value: queueName },
      { Key: this.#tags.stage, Value: this.#stage },
      ...(withName ? [{ Key: 'Name', Value: `kuroko-${this.#stage}-${queueName.replace(/^@/, '')}` }] : []),
    ];
  }
}

function toManaged(instance: Ec2Instance): ManagedInstance | undefined {
  const state = instance.State?.Name;
  if (!instance.InstanceId || (state !== FLEET_INSTANCE_STATE.pending && state !== FLEET_INSTANCE_STATE.running)) return undefined;
  return { instanceId: instance.InstanceId, state, launchedAt: instance.LaunchTime ?? new Date(0) };
}

/** Terminates one instance (an idle worker ending itself when it cannot shut down); a gone instance is fine. */
export async function terminateInstance(client: EC2Client, instanceId: string): Promise<void> {
  try {
    await client.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] }));
  } catch (error) {
    if (awsErrorName(error) !== 'InvalidInstanceID.NotFound') throw toExternalServiceError('ec2', 'TerminateInstances', error);
  }
}
