/**
 * The provisioner: once a minute, starts and stops the on-demand workers of every configured queue. While the engine
 * sleeps it only looks at EC2 (no database time): an instance still there then is one whose agent never registered
 * or is going away, and the pass runs to replace or stop it instead of leaving it running until the sleep ends.
 */
import { EC2Client } from '@aws-sdk/client-ec2';
import { ExternalServiceError, errorMessage } from '../../core/errors';
import { Ec2Fleet } from '../../adapters/aws/ec2-fleet';
import { FleetRepository } from '../../db/repositories/fleet-repository';
import { parseProvisionerConfig } from '../../app/config/config';
import { systemClock } from '../../app/engine-services';
import { WORKER_TAGS } from '../../app/config/env-keys';
import { parseTickEvent } from '../../app/lambda/lambda-events';
import { runProvisionerPass } from '../../app/lambda/lambda-provisioner-pass';
import { RESUME_WAIT_MS, tickUnlessResuming } from '../../app/lambda/lambda-resume';
import { createLambdaRuntime, lambdaHandler } from '../../app/lambda/lambda-runtime';
import { skipWhileAsleep } from '../../app/lambda/lambda-sleep';

export const runtime = createLambdaRuntime(parseProvisionerConfig(process.env), { resumeWaitMs: RESUME_WAIT_MS.longTick });
const { config } = runtime;
const fleet = new Ec2Fleet({ client: new EC2Client({}), stage: config.stage, queues: config.workerQueues, tags: WORKER_TAGS });
const repository = new FleetRepository(runtime.handle.db);

/** True when no queue has a pending or running instance; a failed look counts as empty (the sleep ends anyway). */
async function fleetIsEmpty(): Promise<boolean> {
  try {
    const lists = await Promise.all(config.workerQueues.map((q) => fleet.list(q.name)));
    return lists.every((instances) => instances.length === 0);
  } catch (error) {
    runtime.log.warn('could not list the worker instances while asleep', { error: errorMessage(error) });
    return true;
  }
}

export const handler = lambdaHandler(runtime, (event: unknown) =>
  tickUnlessResuming(runtime.log, 'provisioner', () => tick(event)),
);

async function tick(event: unknown) {
  const asleep = await skipWhileAsleep(runtime.sleep, parseTickEvent(event));
  if (asleep && (await fleetIsEmpty())) return asleep;
  const result = await runProvisionerPass({ queues: config.workerQueues, repository, fleet, clock: systemClock, logger: runtime.log });
  if (result.failed.length > 0) {
    throw new ExternalServiceError('provisioner', result.failed.map((f) => `${f.queue}: ${f.error}`).join('; '));
  }
  return result;
}
