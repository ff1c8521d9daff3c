import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../cli/main';

const BIN = resolve(import.meta.dirname, '../../bin/kuroko.js');

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real `bin/kuroko.js` (through its shebang) and collects its exit status and output. */
function runKuroko(args: readonly string[]): Promise<RunResult> {
  return new Promise((done, fail) => {
    const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

let dir: string;
let valid: string;
let invalid: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kuroko-validate-'));
  valid = join(dir, 'valid.kuroko');
  invalid = join(dir, 'invalid.kuroko');
  await writeFile(valid, 'env: A=1 # set A\nfork:\n  execute: echo a#b\n  noop:\n');
  await writeFile(invalid, 'env: A=1\ntimeout: soon\nexecute: echo ok\nbogus: 1\nfork:\nnoop:\n');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('kuroko validate (real process)', () => {
  it('prints one located line per problem and exits 1', async () => {
    const result = await runKuroko(['validate', invalid]);
    expect(result.code).toBe(1);
    expect(result.stdout.trimEnd().split('\n')).toEqual([
      `${invalid}:2:10: timeout: expected minutes as N, Nm or Nh (e.g. 30, 30m, 2h), got \`soon\``,
      `${invalid}:4:1: unknown task type \`bogus\``,
      `${invalid}:5:1: fork: needs at least one indented child node`,
    ]);
    expect(result.stderr).toBe('');
  });

  it('exits 0 without output for a valid file', async () => {
    expect(await runKuroko(['validate', valid])).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('reports the problems of every file given and exits 1 if any has one', async () => {
    const result = await runKuroko(['validate', valid, invalid]);
    expect(result.code).toBe(1);
    expect(result.stdout.trimEnd().split('\n')).toHaveLength(3);
  });

  it('exits 2 with a usage line when no file is given', async () => {
    const result = await runKuroko(['validate']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^usage: kuroko validate/);
  });

  it('exits 2 naming a file it cannot read', async () => {
    const missing = join(dir, 'missing.kuroko');
    const result = await runKuroko(['validate', missing, invalid]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`cannot read ${missing}`);
    expect(result.stdout).toContain(`${invalid}:4:1:`);
  });

  it('lists its sub-commands with --help', async () => {
    const result = await runKuroko(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/usage: kuroko <command>/);
    expect(result.stdout).toMatch(/^\s+validate\s+/m);
  });
});

describe('kuroko main (in process)', () => {
  function collect() {
    const out = { stdout: '', stderr: '' };
    return { out, io: { stdout: (t: string) => void (out.stdout += t), stderr: (t: string) => void (out.stderr += t) } };
  }

  it('rejects an unknown sub-command with exit 2', async () => {
    const { out, io } = collect();
    expect(await main(['frobnicate'], io)).toBe(2);
    expect(out.stderr).toContain('unknown command `frobnicate`');
  });

  it('prints help to stderr and exits 2 with no arguments', async () => {
    const { out, io } = collect();
    expect(await main([], io)).toBe(2);
    expect(out.stderr).toMatch(/validate/);
  });

  it('rejects an unknown option of validate with exit 2', async () => {
    const { out, io } = collect();
    expect(await main(['validate', '--strict', valid], io)).toBe(2);
    expect(out.stderr).toContain('unknown option --strict');
  });

  it('accepts -- to end the options before the files', async () => {
    const { out, io } = collect();
    expect(await main(['validate', '--', invalid], io)).toBe(1);
    expect(out.stdout.split('\n').filter(Boolean)).toHaveLength(3);
  });

  it('prints the validate help on validate --help', async () => {
    const { out, io } = collect();
    expect(await main(['validate', '--help'], io)).toBe(0);
    expect(out.stdout).toMatch(/FILE:LINE:COLUMN: MESSAGE/);
  });
});
