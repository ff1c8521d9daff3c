/**
 * `kuroko agent` on its own, the entry of the self-hosted agent bundle (`npm run build:agent`): a worker host
 * runs `node dist/kuroko-agent.mjs --database-url ...` with the same options as `kuroko agent`.
 */
import { runAgentCommand } from './agent-command';
import { nodeVersionProblem } from '../bin/node-version.js';
import { debugFromEnv, runGuarded, takeDebugFlag } from './command-guard';

const io = { stdout: (text: string) => void process.stdout.write(text), stderr: (text: string) => void process.stderr.write(text) };
const tooOld = nodeVersionProblem(process.version);
if (tooOld !== undefined) {
  io.stderr(tooOld);
  process.exit(1);
}
const { args, debug } = takeDebugFlag(process.argv.slice(2));
// The same guard as `kuroko agent`: failures at start are what failed and what to do, stacks only with --debug.
process.exitCode = await runGuarded({ command: 'agent', io, debug: debug || debugFromEnv(process.env) }, () => runAgentCommand(args, io));
