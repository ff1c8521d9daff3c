/**
 * `kuroko agent` on its own, the entry of the self-hosted agent bundle (`npm run build:agent`): a worker host
 * runs `node dist/kuroko-agent.mjs --database-url ...` with the same options as `kuroko agent`.
 */
import { runAgentCommand } from './agent-command';

const io = { stdout: (text: string) => void process.stdout.write(text), stderr: (text: string) => void process.stderr.write(text) };
process.exitCode = await runAgentCommand(process.argv.slice(2), io);
