/**
 * Real headless Chromium driven by playwright-core, found wherever one is (cli/chromium-finder.ts: CHROME_PATH,
 * Debian's /usr/bin/chromium, PATH, Playwright's cache), and where screenshots go. Without one, the browser suites
 * are skipped with a notice naming the install (a fresh machine's `npm test` passes); KUROKO_REQUIRE_CHROMIUM=1
 * (.ci/run) makes them fail instead.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { describe } from 'vitest';
import { findChromium, REQUIRE_CHROMIUM_ENV } from '../../cli/chromium-finder';

const CHROMIUM = findChromium({ env: process.env });
const REQUIRED = /^(1|true|yes)$/i.test(process.env[REQUIRE_CHROMIUM_ENV] ?? '');

/** The notice printed when the browser suites are skipped (also by the global setup, once per run). */
export function chromiumMissingNotice(): string | undefined {
  if (CHROMIUM.found) return undefined;
  return `SKIPPED: the console's browser tests, for lack of Chromium (${CHROMIUM.problem}). To run them, ${CHROMIUM.fix}.`;
}

/**
 * `describe` for suites that drive a browser: skipped, loudly, when no Chromium is found, unless
 * KUROKO_REQUIRE_CHROMIUM says a missing one is a failure.
 */
export const describeWithBrowser: typeof describe = CHROMIUM.found || REQUIRED ? describe : (describe.skip as typeof describe);
if (!CHROMIUM.found && !REQUIRED) console.warn(`\n*** ${chromiumMissingNotice()} ***\n`);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Screenshots of each main page, for people to look at (gitignored). */
export const SCREENSHOT_DIR = join(ROOT, 'test-results', 'console-screenshots');

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface TestBrowser {
  context: BrowserContext;
  page: Page;
  close(): Promise<void>;
}

/** Launches Chromium with a fresh profile; confirmation dialogs are accepted (tests click through them on purpose). */
export async function launchBrowser(options: { timezoneId?: string } = {}): Promise<TestBrowser> {
  if (!CHROMIUM.found) throw new Error(`${CHROMIUM.problem}: ${CHROMIUM.fix}`);
  const profile = mkdtempSync(join(tmpdir(), 'kuroko-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM.path,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
    ...(options.timezoneId ? { timezoneId: options.timezoneId } : {}),
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Saves a full-page screenshot as `<name>.png` in SCREENSHOT_DIR. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** True while a process with this pid exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
