/**
 * The provisioner: once a minute, starts and stops the on-demand workers of every configured queue; during an idle
 * sleep only while EC2 still shows instances (app/lambda/provisioner-function.ts).
 */
import { parseProvisionerConfig } from '../../app/config/config';
import { parseTickEvent } from '../../app/lambda/lambda-events';
import { provisionerFunction } from '../../app/lambda/provisioner-function';
import { RESUME_WAIT_MS } from '../../app/lambda/lambda-resume';
import { createLambdaRuntime } from '../../app/lambda/lambda-runtime';
import { tickHandler } from '../../app/lambda/lambda-tick';

export const runtime = createLambdaRuntime(parseProvisionerConfig(process.env), { resumeWaitMs: RESUME_WAIT_MS.longTick });
const provisioner = provisionerFunction(runtime);
export const handler = tickHandler(runtime, 'provisioner', parseTickEvent, provisioner.tick, provisioner.skipWhileAsleep);
