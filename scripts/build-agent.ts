/** `npm run build:agent [OUT_DIR]`: writes the self-hosted agent bundle (see scripts/agent-bundle.ts). */
import { resolve } from 'node:path';
import { buildSelfHostedAgent, DEFAULT_AGENT_OUT_DIR } from './agent-bundle';

const outDir = resolve(process.argv[2] ?? DEFAULT_AGENT_OUT_DIR);
const file = await buildSelfHostedAgent(outDir);
console.log(`built ${file}\nrun it with: node ${file} --database-url URL [--queue NAME]... [--slots N]`);
