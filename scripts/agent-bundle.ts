/**
 * How the worker agent is bundled, for both places it ships: `npm run build:agent` (the self-hosted
 * `kuroko agent` as `dist/kuroko-agent.mjs`) and the CDK asset of the EC2 agent (`agent/main.ts`).
 *
 * The agent is the process that sits on every worker host for its whole life, so it is bundled for memory:
 * without an inline source map (V8 keeps the whole source text, map included: the EC2 agent took 180 MB of
 * resident memory just loaded with one), and, where the output may be several files, split so that the
 * database driver a host does not use (mysql2, the AWS SDK) is never loaded.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BuildOptions } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The self-hosted agent's entry and where `npm run build:agent` writes it. */
export const SELF_HOSTED_AGENT_ENTRY = join(ROOT, 'cli', 'agent-bin.ts');
export const SELF_HOSTED_AGENT_FILE = 'kuroko-agent.mjs';
export const DEFAULT_AGENT_OUT_DIR = join(ROOT, 'dist');
/** The chunks' folder next to the entry; each build replaces it, so chunks of older builds do not pile up. */
const CHUNK_DIR = 'kuroko-agent-chunks';

/** Lets bundled CommonJS dependencies call `require` inside an ES module bundle. */
const ESM_REQUIRE_SHIM = "import { createRequire as __kurokoCreateRequire } from 'node:module'; const require = __kurokoCreateRequire(import.meta.url);";

/** esbuild options shared by both agent bundles (entry and output are the caller's). */
export const AGENT_BUNDLE_OPTIONS = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  mainFields: ['module', 'main'],
  // Whitespace and syntax only: identifiers keep their names, so stack traces in the agent's log stay readable,
  // and it measured smaller in memory than full minification (82 MB against 97 MB for the EC2 agent, loaded).
  minifyWhitespace: true,
  minifySyntax: true,
  banner: { js: ESM_REQUIRE_SHIM },
  // A native addon, loaded from node_modules only when the agent talks to SQLite.
  external: ['better-sqlite3'],
  logLevel: 'warning',
} as const satisfies BuildOptions;

/**
 * Node.js flags the EC2 agent runs with (the systemd unit on instances, bench:local).
 * - A young generation of 1 MB semi-spaces instead of up to 16 MB: the agent allocates little, and it holds 2 MB
 *   less idle and 5 MB less running 20 commands, for no CPU that the bench can see.
 * - No Sparkplug, V8's baseline compiler: its machine code for every warm function cost 1.2 MB idle (60.4 -> 59.2
 *   MB). Hot code is still optimised: ten commands printing 20 MB each cost the agent 0.89 s of CPU with it off and
 *   0.88 s with it on (turning the optimising compiler off too saves nothing more and costs 5.1 s).
 */
export const EC2_AGENT_NODE_FLAGS = ['--max-semi-space-size=1', '--no-sparkplug'] as const;

/**
 * Environment the EC2 agent runs with, next to its flags. One glibc malloc arena instead of one per thread: Node's
 * helper threads each kept an arena of their own, which left the agent 2 to 3 MB larger (idle in one run of
 * four, running 20 commands always); the agent's threads hardly ever allocate at the same time.
 */
export const EC2_AGENT_ENV = { MALLOC_ARENA_MAX: '1' } as const;

/** The Node.js major installed on worker instances (AL2023 names it `nodejs22`, `/usr/bin/node-22`); the EC2 agent is built for it. */
export const WORKER_NODE_MAJOR = 22;

/** The module the EC2 agent loads to terminate its instance, and its file next to the agent's on the instance. */
const EC2_FLEET_ENTRY = join(ROOT, 'adapters', 'aws', 'ec2-fleet.ts');
export const EC2_FLEET_FILE = 'agent-ec2.mjs';

/**
 * The EC2 agent (`agent/main.ts`) as one ES module file, as the CDK asset ships it (one S3 object). What it imports
 * lazily is bundled but not evaluated, and still costs memory: V8 keeps the source and parses all of it at start.
 * So two things are left out:
 * - mysql2 (external): the EC2 agent always talks to the Data API, so db/connection never imports it;
 * - the EC2 client, which it loads only to terminate its instance: `KUROKO_EC2_FLEET_MODULE` makes agent/main.ts
 *   import `./agent-ec2.mjs` next to the bundle (ec2FleetBuildOptions) instead of bundling aws/ec2-fleet.
 * Together 3 MB of the 4.5 MB file, and about 11 MB of the idle agent's resident memory (82 to 70 MB).
 */
export function ec2AgentBuildOptions(entry: string, outfile: string): BuildOptions {
  return {
    ...AGENT_BUNDLE_OPTIONS,
    entryPoints: [entry],
    outfile,
    target: `node${WORKER_NODE_MAJOR}`,
    external: [...AGENT_BUNDLE_OPTIONS.external, 'mysql2'],
    define: { KUROKO_EC2_FLEET_MODULE: JSON.stringify(`./${EC2_FLEET_FILE}`) },
  };
}

/** aws/ec2-fleet on its own (`agent-ec2.mjs`), shipped next to the EC2 agent, which loads it at the end of its life. */
export function ec2FleetBuildOptions(outfile: string): BuildOptions {
  return { ...AGENT_BUNDLE_OPTIONS, entryPoints: [EC2_FLEET_ENTRY], outfile, target: `node${WORKER_NODE_MAJOR}` };
}

/**
 * Builds `kuroko agent` as `<outDir>/kuroko-agent.mjs` plus the chunks it loads on demand; returns the entry
 * file's path. It runs with `node <file> --database-url ...`; SQLite hosts also need better-sqlite3 installed.
 */
export async function buildSelfHostedAgent(outDir: string = DEFAULT_AGENT_OUT_DIR): Promise<string> {
  const { build } = await import('esbuild');
  rmSync(join(outDir, CHUNK_DIR), { recursive: true, force: true });
  await build({
    ...AGENT_BUNDLE_OPTIONS,
    entryPoints: { [SELF_HOSTED_AGENT_FILE.replace(/\.mjs$/, '')]: SELF_HOSTED_AGENT_ENTRY },
    outdir: outDir,
    outExtension: { '.js': '.mjs' },
    splitting: true,
    chunkNames: `${CHUNK_DIR}/[name]-[hash]`,
    target: 'node20',
  });
  return join(outDir, SELF_HOSTED_AGENT_FILE);
}
