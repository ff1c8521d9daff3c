/**
 * The console's browser script and stylesheet are TypeScript and CSS in http/console/browser/, bundled by
 * `npm run build:console` into a checked-in module (the Lambda bundle cannot run esbuild); that module must be what
 * the sources build now, and the server must serve it.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ASSET_PATHS, CONSOLE_ASSETS } from '../../http/console/console-assets';
import { CONSOLE_ASSETS_FILE, generateConsoleAssets } from '../../scripts/build-console';

describe('the console assets', () => {
  it('are built from http/console/browser unchanged (npm run build:console)', async () => {
    const checkedIn = await readFile(CONSOLE_ASSETS_FILE, 'utf8');
    expect(await generateConsoleAssets(), 'http/console/console-assets.generated.ts is stale: run npm run build:console').toBe(checkedIn);
  });

  it('serve the bundle: a script wrapped in its own scope and the stylesheet, each under a content-hashed URL', () => {
    expect(CONSOLE_ASSETS.js.body).toMatch(/^"use strict";\(\(\)=>\{/);
    expect(CONSOLE_ASSETS.js.body).toContain('/console/validate');
    expect(CONSOLE_ASSETS.css.body).toContain('.editor');
    expect(ASSET_PATHS.js).toMatch(/^\/console\/assets\/console\.js\?v=[0-9a-f]{12}$/);
    expect(ASSET_PATHS.css).toMatch(/^\/console\/assets\/console\.css\?v=[0-9a-f]{12}$/);
  });
});
