/**
 * The provisioner function: once a minute, starts and stops the on-demand workers of every configured queue. While
 * the engine sleeps it only looks at EC2 (no database time): an instance still there then is one whose agent never
 * registered or is going away, and the pass runs to replace or stop it instead of leaving it running until the
 * sleep ends.
 */
import { EC2Client } from '@aws-sdk/client-ec2';
import { Ec2Fleet } from '../../adapters/aws/ec2-fleet';
import { ExternalServiceError, errorMessage } from '../../core/errors';
import type { ProvisionerConfig } from '../config/config';
import { WORKER_TAGS } from '../config/env-keys';
import { provisionerPass } from '../passes';
import type { LambdaRuntime } from './lambda-runtime';
import { lambdaNudgers, passResult, runPassTick } from './lambda-tick';

/** One invocation's work, and whether a tick during a sleep may be skipped. */
export function provisionerFunction(runtime: LambdaRuntime<ProvisionerConfig>) {
  const { config } = runtime;
  const fleet = new Ec2Fleet({ client: new EC2Client({}), stage: config.stage, queues: config.workerQueues, tags: WORKER_TAGS });
  const nudgers = lambdaNudgers(runtime.log, {});

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

  async function tick() {
    const { services } = runtime;
    const pass = provisionerPass({ queues: config.workerQueues, repository: services.stores.fleet, fleet, clock: services.clock, logger: runtime.log });
    const result = passResult(await runPassTick(pass, nudgers));
    if (result.failed.length > 0) {
      throw new ExternalServiceError('provisioner', result.failed.map((f) => `${f.queue}: ${f.error}`).join('; '));
    }
    return result;
  }
  return { tick, skipWhileAsleep: fleetIsEmpty };
}
