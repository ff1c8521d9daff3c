/**
 * The console's only static files: one stylesheet and one small script (sources in browser/, bundled by
 * `npm run build:console`), served from memory with a content hash in their URLs so browsers may cache them for
 * good. The pages work without the script.
 */
import { createHash } from 'node:crypto';
import { CONSOLE_CSS, CONSOLE_JS } from './console-assets.generated';

const hash = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 12);

export const CONSOLE_ASSETS = {
  css: { body: CONSOLE_CSS, type: 'text/css; charset=utf-8' },
  js: { body: CONSOLE_JS, type: 'text/javascript; charset=utf-8' },
} as const;

export const ASSET_PATHS = {
  css: `/console/assets/console.css?v=${hash(CONSOLE_CSS)}`,
  js: `/console/assets/console.js?v=${hash(CONSOLE_JS)}`,
} as const;
