/**
 * The deploy-time migrator, the onEvent function of a CDK Provider: parses the custom-resource event and brings the
 * schema, the database users and the first admin client up to date (migrator-function.ts).
 */
import { parseMigratorConfig } from '../../app/config/config';
import { parseCustomResourceEvent } from '../../app/lambda/lambda-events';
import { RESUME_WAIT_MS } from '../../app/lambda/lambda-resume';
import { createLambdaRuntime, lambdaHandler } from '../../app/lambda/lambda-runtime';
import { migratorFunction } from './migrator-function';

export const runtime = createLambdaRuntime(parseMigratorConfig(process.env), { resumeWaitMs: RESUME_WAIT_MS.migrator });
const migrate = migratorFunction(runtime);
export const handler = lambdaHandler(runtime, (event: unknown) => migrate(parseCustomResourceEvent(event)));
