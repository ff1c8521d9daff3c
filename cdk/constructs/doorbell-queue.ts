/**
 * The doorbell between the processor Lambda and the agents on EC2 (issue 18; adapters/aws/sqs-doorbell.ts): an SQS
 * standard queue that carries no state. The processor sends one small message per queued command; the agents
 * long-poll it (20 s) and claim from the database when one arrives, so an idle agent reads the Data API at most
 * every 30 s instead of every second. A message nobody receives expires after a minute (the shortest retention
 * SQS allows): a stale ring is worth nothing, the database is the only state.
 *
 * Cost at SQS list prices ($0.40 per million requests, the first million a month free; cdk/README.md):
 * idle, 3 long polls a minute per live agent (about 130,000 requests a month, $0.05); busy, 3 requests per
 * command (send, receive, delete: 1 million commands a month is $1.20).
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ENV_KEYS } from '../../app/config/env-keys';
import { acknowledge } from '../nag';

/** What a ringer needs: the processor function (an EngineFunction or any function with an environment). */
interface Ringer extends iam.IGrantable {
  addEnvironment(key: string, value: string): unknown;
}

export class DoorbellQueue extends Construct {
  readonly queue: sqs.Queue;

  constructor(scope: Construct, id: string, props: { stage: string }) {
    super(scope, id);
    this.queue = new sqs.Queue(this, 'Queue', {
      queueName: `kuroko-${props.stage}-doorbell`,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.seconds(60),
      // A ring whose delete failed comes back this much later: one extra, harmless wake-up.
      visibilityTimeout: Duration.seconds(30),
      receiveMessageWaitTime: Duration.seconds(20),
      removalPolicy: RemovalPolicy.DESTROY,
    });
    acknowledge(
      this.queue,
      'AwsSolutions-SQS3',
      'a doorbell message carries no state and is never processed, only received: a failed one has nothing to dead-letter',
    );
  }

  /** The processor: may send (SendMessageBatch needs sqs:SendMessage), nothing else, and learns the queue's URL. */
  bindRinger(fn: Ringer): void {
    this.queue.grant(fn, 'sqs:SendMessage');
    fn.addEnvironment(ENV_KEYS.doorbellQueueUrl, this.queue.queueUrl);
  }

  /** A worker role: may receive and delete, nothing else (no send, no purge, no attributes). */
  bindListener(role: iam.IGrantable): void {
    this.queue.grant(role, 'sqs:ReceiveMessage', 'sqs:DeleteMessage');
  }
}
