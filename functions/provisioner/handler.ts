/** The provisioner: once a minute, starts and stops the on-demand workers of every configured queue. */
import { EC2Client } from '@aws-sdk/client-ec2';
import { ExternalServiceError } from '../../core/errors';
import { Ec2Fleet } from '../../aws/ec2-fleet';
import { FleetRepository } from '../../db/repositories/fleet-repository';
import { parseProvisionerConfig } from '../shared/config';
import { systemClock } from '../shared/engine-services';
import { WORKER_TAGS } from '../shared/env-keys';
import { parseTickEvent } from '../shared/lambda-events';
import { runProvisionerPass } from '../shared/lambda-provisioner-pass';
import { createLambdaRuntime, lambdaHandler } from '../shared/lambda-runtime';
import { skipWhileAsleep } from '../shared/lambda-sleep';

export const runtime = createLambdaRuntime(parseProvisionerConfig(process.env));
const { config } = runtime;
const fleet = new Ec2Fleet({ client: new EC2Client({}), stage: config.stage, queues: config.workerQueues, tags: WORKER_TAGS });
const repository = new FleetRepository(runtime.handle.db);

export const handler = lambdaHandler(runtime, async (event: unknown) => {
  const asleep = await skipWhileAsleep(runtime.sleep, parseTickEvent(event));
  if (asleep) return asleep;
  const result = await runProvisionerPass({ queues: config.workerQueues, repository, fleet, clock: systemClock, logger: runtime.log });
  if (result.failed.length > 0) {
    throw new ExternalServiceError('provisioner', result.failed.map((f) => `${f.queue}: ${f.error}`).join('; '));
  }
  return result;
});
