/**
 * Finds a Chromium for the console's browser tests (playwright-core drives it and downloads none of its own) and for
 * `kuroko doctor`: CHROME_PATH when set (and then only it), else Debian's and Ubuntu's packages, a chromium or
 * Chrome on PATH, then Playwright's browser cache (`npx playwright-core install chromium` fills it, no root needed).
 */
import { accessSync, constants, existsSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

export const CHROME_PATH_ENV = 'CHROME_PATH';
/** Set (to 1) where a missing Chromium must fail the browser tests instead of skipping them (.ci/run sets it). */
export const REQUIRE_CHROMIUM_ENV = 'KUROKO_REQUIRE_CHROMIUM';

/** What to do when no Chromium is found: the same install `.ci/run` performs, or the alternatives. */
export const CHROMIUM_FIX =
  'install one: apt-get install chromium (Debian/Ubuntu, as .ci/run does), or npx playwright-core install chromium (no root), or set CHROME_PATH to a Chrome or Chromium';

const SYSTEM_PATHS = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'];
const PATH_NAMES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];
/** Inside Playwright's cache: `<browser>-<revision>/<one of these>` (older and newer layouts, full and headless shell). */
const PLAYWRIGHT_LAYOUTS: Readonly<Record<string, readonly string[]>> = {
  chromium: ['chrome-linux64/chrome', 'chrome-linux/chrome'],
  chromium_headless_shell: ['chrome-headless-shell-linux64/chrome-headless-shell', 'chrome-linux/headless_shell'],
};

export interface ChromiumSearch {
  env: Readonly<Record<string, string | undefined>>;
  /** The home folder whose ~/.cache/ms-playwright is searched (os.homedir() by default). */
  home?: string;
  /** The packaged browsers' paths to try first (Debian's, Ubuntu's and Google's by default). */
  systemPaths?: readonly string[];
}

export type ChromiumResult =
  | { found: true; path: string; source: string }
  | { found: false; problem: string; fix: string };

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function playwrightCandidates(cache: string): string[] {
  if (!existsSync(cache)) return [];
  const candidates: string[] = [];
  // Newest revision first: names end in the revision number.
  const entries = readdirSync(cache).sort((a, b) => b.localeCompare(a, 'en', { numeric: true }));
  for (const [browser, layouts] of Object.entries(PLAYWRIGHT_LAYOUTS)) {
    for (const entry of entries.filter((name) => name.startsWith(`${browser}-`))) {
      for (const layout of layouts) candidates.push(join(cache, entry, layout));
    }
  }
  return candidates;
}

/** Looks for a Chromium where one is usually installed; says which source it came from, or what to do. */
export function findChromium(search: ChromiumSearch): ChromiumResult {
  const { env } = search;
  const named = env[CHROME_PATH_ENV]?.trim();
  if (named) {
    return executable(named)
      ? { found: true, path: named, source: CHROME_PATH_ENV }
      : { found: false, problem: `${CHROME_PATH_ENV}=${named} is not an executable file`, fix: `point ${CHROME_PATH_ENV} at a Chrome or Chromium, or unset it` };
  }
  for (const path of search.systemPaths ?? SYSTEM_PATHS) if (executable(path)) return { found: true, path, source: 'the system package' };
  for (const dir of (env.PATH ?? '').split(delimiter).filter((d) => d !== '')) {
    for (const name of PATH_NAMES) {
      const path = join(dir, name);
      if (executable(path)) return { found: true, path, source: 'PATH' };
    }
  }
  const cache = env.PLAYWRIGHT_BROWSERS_PATH?.trim() || join(search.home ?? homedir(), '.cache', 'ms-playwright');
  for (const path of playwrightCandidates(cache)) if (executable(path)) return { found: true, path, source: "Playwright's cache" };
  return { found: false, problem: `no Chromium in ${CHROME_PATH_ENV}, ${SYSTEM_PATHS[0]}, PATH or ${cache}`, fix: CHROMIUM_FIX };
}
