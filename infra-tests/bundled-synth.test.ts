/**
 * `npm run synth` with real esbuild bundling, as `cdk deploy` would run it, and every bundled Lambda loaded by
 * Node outside the repository: a bundle that cannot even load (a native module it does not carry, a missing
 * export) fails here instead of on the first invocation in AWS.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SYNTH_TIMEOUT_MS = 300_000;

describe('cdk synth with real bundling', () => {
  const outdir = mkdtempSync(join(tmpdir(), 'kuroko-synth-'));
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  it('bundles every function, and each bundle loads far enough to read its configuration', async () => {
    await run('npx', ['cdk', 'synth', '--quiet', '--no-notices', '--output', outdir], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 });
    const template = JSON.parse(readFileSync(join(outdir, 'Kuroko-dev-Engine.template.json'), 'utf8')) as {
      Resources: Record<string, { Type: string; Properties?: { Handler?: string; Code?: { S3Key?: string } } }>;
    };
    const assets = JSON.parse(readFileSync(join(outdir, 'Kuroko-dev-Engine.assets.json'), 'utf8')) as {
      files: Record<string, { source: { path: string } }>;
    };
    const functions = Object.values(template.Resources).filter((r) => r.Type === 'AWS::Lambda::Function' && r.Properties?.Handler === 'index.handler');
    expect(functions.length).toBeGreaterThanOrEqual(6);
    for (const fn of functions) {
      const hash = fn.Properties?.Code?.S3Key?.replace(/\.zip$/, '');
      const asset = hash ? assets.files[hash] : undefined;
      expect(asset, `asset of ${fn.Properties?.Code?.S3Key}`).toBeDefined();
      const dir = join(outdir, asset!.source.path);
      const entry = readdirSync(dir).find((f) => /^index\.m?js$/.test(f));
      expect(entry, `bundle in ${dir}`).toBeDefined();
      // Loaded from the bundle's own folder, with no node_modules to fall back on: what Lambda sees.
      const loaded = await run(process.execPath, ['--input-type=module', '-e', `import(${JSON.stringify(join(dir, entry!))}).then(() => console.log('loaded'), (e) => console.log('ERROR ' + e.message))`], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? '' },
      });
      // Without the deployment's environment a handler stops at its configuration, which lists what is missing.
      expect(loaded.stdout).toMatch(/loaded|ERROR invalid configuration/);
      expect(loaded.stdout).not.toMatch(/Cannot find (module|package)|ERR_MODULE_NOT_FOUND/);
    }
    expect(existsSync(join(outdir, 'Kuroko-dev-Workers.template.json'))).toBe(true);

    // The EC2 agent: its file, run by Node outside the repository as systemd runs it. Without its SSM parameter
    // it stops at its configuration, which shows it loaded and started.
    const workerAssets = JSON.parse(readFileSync(join(outdir, 'Kuroko-dev-Workers.assets.json'), 'utf8')) as typeof assets & {
      files: Record<string, { displayName?: string }>;
    };
    // The stack's contents sit under `Default` (cdk/stacks/workers-stack.ts), so the path ends with the construct's id.
    const agentAsset = Object.values(workerAssets.files).find((file) => /(^|\/)AgentBundle$/.test(file.displayName ?? ''));
    expect(agentAsset, 'the AgentBundle asset').toBeDefined();
    const agentFile = join(outdir, agentAsset!.source.path);
    // An inline source map would stay in the agent's memory for its whole life.
    expect(readFileSync(agentFile, 'utf8')).not.toContain('sourceMappingURL=data:');
    const agentRun = await run(process.execPath, [agentFile], { cwd: tmpdir(), env: { PATH: process.env.PATH ?? '' } }).then(
      () => ({ code: 0, stdout: '' }),
      (error: { code: number; stdout: string }) => error,
    );
    expect(agentRun.code).toBe(1);
    expect(agentRun.stdout).toContain('KUROKO_AGENT_CONFIG_PARAMETER: is required');
    // The EC2 client the agent imports to terminate its instance: its own file, loaded outside the repository too.
    const fleetAsset = Object.values(workerAssets.files).find((file) => /(^|\/)AgentBundle\/Ec2Fleet$/.test(file.displayName ?? ''));
    expect(fleetAsset, 'the AgentBundle/Ec2Fleet asset').toBeDefined();
    expect(readFileSync(agentFile, 'utf8')).not.toContain('TerminateInstances');
    const fleet = await run(
      process.execPath,
      ['--input-type=module', '-e', `import(${JSON.stringify(join(outdir, fleetAsset!.source.path))}).then((m) => console.log(typeof m.createEc2Client, typeof m.terminateInstance))`],
      { cwd: tmpdir(), env: { PATH: process.env.PATH ?? '' } },
    );
    expect(fleet.stdout).toContain('function function');
  }, SYNTH_TIMEOUT_MS);
});
