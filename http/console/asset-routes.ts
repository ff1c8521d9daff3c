/** The console's stylesheet and script; their URLs carry a content hash, so browsers keep them for a year. */
import { Hono } from 'hono';
import { STATUS, type ConsoleEnv } from './console-context';
import { CONSOLE_ASSETS } from './console-assets';

const ASSET_MAX_AGE_SECONDS = 31_536_000;

/** GET /console/assets/console.css and console.js. */
export function assetRoutes(): Hono<ConsoleEnv> {
  const app = new Hono<ConsoleEnv>();
  for (const [name, asset] of Object.entries(CONSOLE_ASSETS)) {
    app.get(`/console/assets/console.${name}`, (c) =>
      c.body(asset.body, STATUS.ok, { 'content-type': asset.type, 'cache-control': `public, max-age=${ASSET_MAX_AGE_SECONDS}, immutable`, 'x-content-type-options': 'nosniff' }),
    );
  }
  return app;
}
