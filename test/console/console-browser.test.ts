/**
 * The console in real headless Chromium against the real local mode (one `kuroko dev` process for the file):
 * sign in with the one-time link, create a definition whose script error is marked at its line as it is typed,
 * fix it, launch it, watch the output and log arrive while it runs, see it fail, retry it to success; cancel a
 * running job and see its process gone; suspend a worker. Each main page is saved as a screenshot.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startLocalMode, type LocalModeProcess } from '../helpers/local-mode-process';
import { waitFor } from '../helpers/wait-for';
import { describeWithBrowser, isAlive, launchBrowser, screenshot, type TestBrowser } from './browser-fixtures';

const RUN_TIMEOUT_MS = 30_000;
const UI_TIMEOUT_MS = 15_000;
/** A test runs several waits of up to RUN_TIMEOUT_MS each in a row: the global 30 s would cut a slow CI run short. */
const TEST_TIMEOUT_MS = 120_000;

describeWithBrowser('console in a browser', { timeout: TEST_TIMEOUT_MS }, () => {
  let dev: LocalModeProcess;
  let browser: TestBrowser;
  let page: Page;
  let signInLink: string;
  let workDir: string;
  let definitionUrl = '';

  beforeAll(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'kuroko-console-'));
    dev = await startLocalMode();
    signInLink = /Console sign-in link \(works once, for 15 minutes\): (\S+)/.exec(dev.stdout())?.[1] ?? '';
    browser = await launchBrowser({ timezoneId: 'Asia/Tokyo' });
    page = browser.page;
    page.setDefaultTimeout(UI_TIMEOUT_MS);
    page.on('dialog', (dialog) => void dialog.accept());
  });

  afterAll(async () => {
    await browser?.close();
    await dev?.stop();
    dev?.cleanup();
    rmSync(workDir, { recursive: true, force: true });
  });

  it('signs in with the one-time link, which then works no more', async () => {
    expect(signInLink).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/auth\/local\?token=/);
    const before = await page.goto(`${dev.url}/`);
    expect(new URL(page.url()).pathname).toBe('/sign_in');
    expect(before?.status()).toBe(200);
    await expect(page.locator('h1').textContent()).resolves.toContain('Sign in');

    await page.goto(signInLink);
    expect(new URL(page.url()).pathname).toBe('/');
    await expect(page.locator('h1').textContent()).resolves.toBe('Dashboard');
    await expect(page.locator('.who').textContent()).resolves.toContain('admin');
    const cookie = (await browser.context.cookies()).find((c) => c.name === 'kuroko_session');
    expect(cookie?.httpOnly).toBe(true);
    expect(cookie?.sameSite).toBe('Lax');
    await screenshot(page, '01-dashboard-empty');

    const again = await fetch(signInLink, { redirect: 'manual' });
    expect(again.status).toBe(403);
    expect(again.headers.get('set-cookie')).toBeNull();
  });

  it('marks a script error at its line while typing, then creates the fixed definition', async () => {
    await page.goto(`${dev.url}/definitions/new`);
    await page.fill('#f-name', 'console-e2e');
    await page.fill('#f-script', 'execute: echo start\nexecute:\nexecute: echo end');
    const marked = page.locator('.gutter .gl.has-error[data-line="2"]');
    await marked.waitFor();
    await expect(marked.getAttribute('title')).resolves.toContain('a command is required');
    await expect(page.locator('.gutter .gl.has-error').count()).resolves.toBe(1);
    await expect(page.locator('.problems li[data-line="2"]').textContent()).resolves.toContain('Line 2, column');
    await screenshot(page, '02-definition-form-error');

    const okFile = join(workDir, 'ok');
    // The first command prints two lines, then waits for the test's go-ahead before the last two: the test sees it
    // running for as long as it needs to, however slow the machine.
    const goFile = join(workDir, 'go');
    const script = [
      `execute: for i in 1 2 3 4; do echo "tick $i"; if [ $i = 2 ]; then until [ -f ${goFile} ]; do sleep 0.1; done; fi; done`,
      `execute: test -f ${okFile} || { echo "the ok file is missing"; exit 3; }`,
      '',
    ].join('\n');
    await page.fill('#f-script', script);
    await page.locator('.problems li.ok').waitFor();
    await expect(page.locator('.gutter .gl.has-error').count()).resolves.toBe(0);
    await page.fill('#f-tags', 'e2e, console');
    await page.fill('#f-crons', '0 9 * * 1-5');
    await page.fill('#f-time_zone', 'Asia/Tokyo');
    await page.click('button[type=submit].primary');
    await page.waitForURL(/\/definitions\/\d+$/);
    definitionUrl = page.url();
    await expect(page.locator('.flash').textContent()).resolves.toContain('Created console-e2e');
    // 09:00 in Tokyo, shown in the definition's zone by the server and in the viewer's zone (Tokyo too) by the script.
    const next = page.locator('#schedules time').first();
    await expect(next.textContent()).resolves.toMatch(/ 09:00:00 (GMT\+9|JST)$/);
    await expect(next.getAttribute('title')).resolves.toMatch(/ 00:00:00 UTC$/);
    await screenshot(page, '03-definition');
  });

  it('launches, shows the output and log while it runs, fails, and retries to success', async () => {
    // The browser's notifications, recorded instead of shown; the permission is granted when asked, and stays
    // granted for the origin across pages, as a browser keeps it.
    await page.addInitScript(() => {
      const shown: { title: string; body?: string }[] = [];
      (window as unknown as { shownNotifications: typeof shown }).shownNotifications = shown;
      const GRANTED_KEY = 'test-notification-permission';
      class RecordedNotification {
        static get permission() {
          return localStorage.getItem(GRANTED_KEY) ?? 'default';
        }
        static requestPermission() {
          localStorage.setItem(GRANTED_KEY, 'granted');
          return Promise.resolve('granted');
        }
        constructor(title: string, options?: { body?: string }) {
          shown.push({ title, ...(options?.body !== undefined ? { body: options.body } : {}) });
        }
      }
      (window as unknown as { Notification: unknown }).Notification = RecordedNotification;
    });
    await page.goto(definitionUrl);
    const toggle = page.locator('[data-notify-toggle]');
    await expect(toggle.getAttribute('aria-pressed')).resolves.toBe('false');
    await toggle.click();
    await page.locator('[data-notify-toggle][aria-pressed="true"]').waitFor();
    await page.click('#launch summary');
    await page.click('#launch button[type=submit]');
    await page.waitForURL(/\/instances\/\d+$/);
    const instanceUrl = page.url();
    await page.evaluate(() => ((window as unknown as { loadedOnce: boolean }).loadedOnce = true));

    // The first command's output shows up while it runs (it waits for the go-ahead), without a reload.
    await page.locator('pre.output', { hasText: 'tick 2' }).waitFor({ timeout: RUN_TIMEOUT_MS });
    await expect(page.locator('#instance-summary .badge').first().textContent()).resolves.toBe('working');
    await screenshot(page, '04-instance-running');
    writeFileSync(join(workDir, 'go'), '');
    await page.locator('#log-lines li', { hasText: 'the ok file is missing' }).waitFor({ timeout: RUN_TIMEOUT_MS });
    await expect(page.locator('#log-lines').textContent()).resolves.toContain('tick 4');
    await expect(page.evaluate(() => (window as unknown as { loadedOnce?: boolean }).loadedOnce)).resolves.toBe(true);
    await page.locator('#instance-summary .badge', { hasText: 'error' }).waitFor({ timeout: RUN_TIMEOUT_MS });
    // The live view announced the change from working to error on the desktop.
    const instanceId = /\/instances\/(\d+)$/.exec(instanceUrl)?.[1];
    await expect(page.evaluate(() => (window as unknown as { shownNotifications: unknown[] }).shownNotifications)).resolves.toEqual([
      { title: `console-e2e #${instanceId}`, body: 'Status: error' },
    ]);
    await page.locator('#instance-tokens tr[data-status="failure"]').waitFor({ timeout: RUN_TIMEOUT_MS });
    await screenshot(page, '05-instance-error');

    writeFileSync(join(workDir, 'ok'), 'ok\n');
    await page.click('#instance-tokens button:has-text("Retry")');
    await page.waitForURL(instanceUrl);
    await expect(page.locator('.flash').textContent()).resolves.toContain('Retrying');
    await page.locator('#instance-summary .badge', { hasText: 'success' }).waitFor({ timeout: RUN_TIMEOUT_MS });
    await expect(page.locator('#log-lines').textContent()).resolves.toContain('Retry by Local admin');
    await screenshot(page, '06-instance-success');
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot(page, '07-instance-narrow');
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('cancels a running job and its process is gone', async () => {
    await page.goto(`${dev.url}/definitions/new`);
    await page.fill('#f-name', 'long-sleeper');
    await page.fill('#f-script', 'execute: sleep 300\n');
    await page.locator('.problems li.ok').waitFor();
    await page.click('button[type=submit].primary');
    await page.waitForURL(/\/definitions\/\d+$/);
    await page.click('#launch summary');
    await page.click('#launch button[type=submit]');
    await page.waitForURL(/\/instances\/\d+$/);
    const running = page.locator('[data-execution][data-state="running"]');
    await running.waitFor({ timeout: RUN_TIMEOUT_MS });
    const pid = Number(await running.getAttribute('data-pid'));
    expect(pid).toBeGreaterThan(1);
    expect(isAlive(pid)).toBe(true);

    await page.goto(`${dev.url}/executions`);
    await expect(page.locator('main').textContent()).resolves.toContain('sleep 300');
    await screenshot(page, '08-executions');
    await page.goto(`${dev.url}/instances/working`);
    await screenshot(page, '09-working');
    await page.goBack();
    await page.goBack();

    await page.click('button:has-text("Cancel instance")');
    await expect(page.locator('.flash').textContent()).resolves.toContain('Canceled');
    await waitFor(() => !isAlive(pid), { timeoutMs: RUN_TIMEOUT_MS, description: `pid ${pid} to end after cancel` });
    await page.reload();
    await expect(page.locator('#instance-summary .badge').first().textContent()).resolves.toBe('canceled');
    await expect(page.locator('#log-lines').textContent()).resolves.toContain('This job was canceled by Local admin');
  });

  it('shows the list, revisions and timelines', async () => {
    await page.goto(`${definitionUrl}/edit`);
    const script = await page.inputValue('#f-script');
    await page.fill('#f-script', `${script}echo: all done\n`);
    await page.locator('.problems li.ok').waitFor();
    await page.click('button[type=submit].primary');
    await page.waitForURL(definitionUrl);
    await page.goto(`${definitionUrl}/revisions`);
    await expect(page.locator('.diff .d-added').first().textContent()).resolves.toContain('echo: all done');
    await screenshot(page, '10-revisions');

    await page.goto(`${dev.url}/definitions?q=e2e`);
    await expect(page.locator('tbody tr').count()).resolves.toBe(1);
    await page.goto(`${dev.url}/definitions`);
    await expect(page.locator('tbody tr').count()).resolves.toBe(3);
    await screenshot(page, '11-definitions');
    await page.goto(`${dev.url}/timeline?view=workers&period=1h`);
    await expect(page.locator('svg.timeline rect.bar').count()).resolves.toBeGreaterThan(0);
    await screenshot(page, '12-timeline-workers');
    await page.goto(`${dev.url}/timeline?view=jobs&period=1h`);
    await expect(page.locator('svg.timeline rect.bar').count()).resolves.toBeGreaterThan(0);
    await screenshot(page, '13-timeline-jobs');
    await page.goto(`${dev.url}/`);
    await screenshot(page, '14-dashboard');
  });

  it('suspends a worker', async () => {
    await page.goto(`${dev.url}/workers`);
    await screenshot(page, '15-workers');
    const row = page.locator('tr[data-worker]').first();
    const workerId = Number(await row.getAttribute('data-worker'));
    await row.locator('button:has-text("Suspend")').click();
    await expect(page.locator('.flash').textContent()).resolves.toContain('Suspended');
    await expect(page.locator(`tr[data-worker="${workerId}"] .badge`).textContent()).resolves.toBe('SUSPENDED');
    const workers = await dev.api<{ id: number; suspended: boolean }[]>('/v1/workers');
    expect(workers.body.find((w) => w.id === workerId)?.suspended).toBe(true);
  });
});
