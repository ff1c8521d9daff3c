/**
 * The project lists of test/test-projects.ts stay true: every entry names a test file or folder that exists (a moved
 * file must be moved in the list too, or it silently changes project), no file is in two lists, and no file of the
 * `unit` project reaches a database, a child process or a browser through its imports (directly or through the
 * test helpers it imports), so `npm run test:fast` stays a matter of seconds.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SLOW_TESTS, UNIT_TESTS } from '../../test-projects';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** Imports a unit test may not reach: they open databases, start processes or drive a browser. */
const FORBIDDEN = [
  /^(node:)?child_process$/,
  /^playwright-core$/,
  /^better-sqlite3$/,
  /^mysql2(\/.*)?$/,
  /\/agent\/process-runner$/,
  /\/helpers\/(test-database|data-api-server|local-mode-process|global-setup)$/,
  /\/(run-kuroko|agent-fixtures|browser-fixtures)$/,
];

const testFiles = (folder: string): string[] =>
  readdirSync(join(ROOT, folder), { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.test.ts'))
    .map((name) => join(folder, name));

const filesOf = (entries: readonly string[]): string[] => entries.flatMap((entry) => (entry.endsWith('/') ? testFiles(entry) : [entry]));

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

/** The forbidden imports `file` reaches, following relative imports within test/ (source modules are not followed). */
function forbiddenImports(file: string, seen = new Set<string>()): string[] {
  if (seen.has(file)) return [];
  seen.add(file);
  const found: string[] = [];
  for (const match of readFileSync(join(ROOT, file), 'utf8').matchAll(IMPORT)) {
    const specifier = match[1] ?? match[2] ?? '';
    if (FORBIDDEN.some((pattern) => pattern.test(specifier))) found.push(`${file} imports ${specifier}`);
    if (!specifier.startsWith('.')) continue;
    const target = relative(ROOT, resolve(ROOT, dirname(file), specifier)).replace(/\.js$/, '');
    const candidate = [`${target}.ts`, join(target, 'index.ts')].find((path) => existsSync(join(ROOT, path)));
    if (candidate?.startsWith('test/')) found.push(...forbiddenImports(candidate, seen));
  }
  return found;
}

describe('test projects', () => {
  it('lists only test files and folders that exist', () => {
    const missing = [...UNIT_TESTS, ...SLOW_TESTS].filter((entry) => {
      const path = join(ROOT, entry);
      if (!existsSync(path)) return true;
      return entry.endsWith('/') ? !statSync(path).isDirectory() || testFiles(entry).length === 0 : !entry.endsWith('.test.ts');
    });
    expect(missing).toEqual([]);
  });

  it('puts no file in both the unit and the slow project', () => {
    const slow = new Set(filesOf(SLOW_TESTS));
    expect(filesOf(UNIT_TESTS).filter((file) => slow.has(file))).toEqual([]);
  });

  it('keeps databases, processes and browsers out of the unit project', () => {
    expect(filesOf(UNIT_TESTS).flatMap((file) => forbiddenImports(file))).toEqual([]);
  });

  it('sees a forbidden import through a test helper (the check itself)', () => {
    expect(forbiddenImports('test/db/engine-store.test.ts').length).toBeGreaterThan(0);
  });
});
