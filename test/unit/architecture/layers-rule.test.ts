/**
 * The layer rule (eslint-rules/layers.js, docs/architecture.md) fails the build on an upward import, and
 * the repository has none. Linted through ESLint's own API with the project's configuration.
 */
import { join } from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const eslint = new ESLint({ cwd: ROOT });

async function layerErrors(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(ROOT, file) });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'local/layers').map((m) => m.message);
}

describe('layers point down', () => {
  it.each([
    ['core/x.ts', "import { createDatabase } from '../db/connection';\nexport const x = createDatabase;\n", 'core/ may not import db/'],
    ['db/x.ts', "import { ENV_KEYS } from '../app/config/env-keys';\nexport const x = ENV_KEYS;\n", 'db/ may not import app/'],
    ['adapters/x.ts', "import { StepStore } from '../db/repositories/step-store';\nexport const x = StepStore;\n", 'adapters/ may not import db/'],
    ['app/x.ts', "import { createHttpApp } from '../http/http-app';\nexport const x = createHttpApp;\n", 'app/ may not import http/'],
    ['http/x.ts', "import { main } from '../cli/main';\nexport const x = main;\n", 'http/ may not import cli/'],
    ['agent/x.ts', "import { createHttpApp } from '../http/http-app';\nexport const x = createHttpApp;\n", 'agent/ may not import http/'],
    ['functions/x.ts', "import { main } from '../cli/main';\nexport const x = main;\n", 'functions/ may not import cli/'],
    ['cdk/x.ts', "import { createHttpApp } from '../http/http-app';\nexport const x = createHttpApp;\n", 'cdk/ loads only'],
  ])('%s: an upward import is an error', async (file, code, message) => {
    const errors = await layerErrors(file, code);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain(message);
  });

  it.each([
    ['http/x.ts', "import { ENV_KEYS } from '../app/config/env-keys';\nexport const x = ENV_KEYS;\n"],
    ['cli/x.ts', "import { createAgent } from '../agent/agent';\nexport const x = createAgent;\n"],
    ['cdk/x.ts', "import { ENV_KEYS } from '../app/config/env-keys';\nexport const x = ENV_KEYS;\n"],
    ['cdk/x.ts', "import type { Config } from '../app/config/config';\nexport type X = Config;\n"],
    ['test/x.ts', "import { main } from '../cli/main';\nexport const x = main;\n"],
  ])('%s: a downward or allowed import passes', async (file, code) => {
    expect(await layerErrors(file, code)).toEqual([]);
  });
});
