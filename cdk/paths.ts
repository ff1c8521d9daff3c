/** File locations the CDK app needs: entries to bundle, the lock file, the project root. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LambdaName } from '../app/config/env-keys';

export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const LOCK_FILE = join(PROJECT_ROOT, 'package-lock.json');
export const TSCONFIG = join(PROJECT_ROOT, 'tsconfig.json');

/** The handler file of a Lambda function. */
export const lambdaEntry = (name: LambdaName): string => join(PROJECT_ROOT, 'functions', name, 'handler.ts');

const AGENT_MAIN = join(PROJECT_ROOT, 'agent', 'main.ts');
/** Stands in for the agent until `agent/main.ts` exists, so the worker stack can be built and deployed early. */
const AGENT_STAND_IN = join(PROJECT_ROOT, 'cdk', 'assets', 'agent-entry.ts');

/** The agent's entry: `agent/main.ts` once it exists, the stand-in before. */
export const agentEntry = (): string => (existsSync(AGENT_MAIN) ? AGENT_MAIN : AGENT_STAND_IN);
