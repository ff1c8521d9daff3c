/** The console's pure pieces: signed values, one-time links, return paths, config, escaping, script links and diffs. */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseEnvLines } from '../../http/console/console-forms';
import { safeReturnTo } from '../../http/console/return-to';
import { readConsoleConfig } from '../../http/console/console-config';
import { COOKIE_PURPOSE, csrfMatches, decodeSession, encodeSession, newSession, signValue, verifyValue } from '../../http/console/console-session';
import { html, raw } from '../../http/console/html';
import { LOCAL_SIGN_IN_TTL_MS, LocalSignIn } from '../../http/console/local-sign-in';
import { renderMarkdown } from '../../http/console/markdown';
import { diffLines, referencedIds, renderScript } from '../../http/console/script-view';

const SECRET = 'x'.repeat(40);
const NOW = 1_800_000_000_000;

describe('signed cookies', () => {
  it('round-trips a session and refuses a changed payload, another key, another purpose or an expired one', () => {
    const session = newSession('a@example.com', 'A', NOW);
    const token = encodeSession(SECRET, session);
    expect(decodeSession(SECRET, token, NOW)).toEqual(session);
    const [payload, mac] = token.split('.') as [string, string];
    const forged = Buffer.from(JSON.stringify({ email: 'root@example.com', name: 'A', csrf: session.csrf, exp: session.expiresAt })).toString('base64url');
    expect(decodeSession(SECRET, `${forged}.${mac}`, NOW)).toBeUndefined();
    expect(decodeSession('y'.repeat(40), token, NOW)).toBeUndefined();
    expect(decodeSession(SECRET, `${payload}.${mac.slice(1)}`, NOW)).toBeUndefined();
    expect(decodeSession(SECRET, token, session.expiresAt)).toBeUndefined();
    const state = signValue(SECRET, COOKIE_PURPOSE.signInState, { email: 'a@example.com', name: 'A', csrf: 'c' }, NOW + 1000);
    expect(verifyValue(SECRET, COOKIE_PURPOSE.signInState, state, NOW)).toBeDefined();
    expect(decodeSession(SECRET, state, NOW)).toBeUndefined();
  });

  it('compares CSRF tokens exactly', () => {
    const session = newSession('a@example.com', 'A', NOW);
    expect(csrfMatches(session, session.csrf)).toBe(true);
    expect(csrfMatches(session, `${session.csrf}x`)).toBe(false);
    expect(csrfMatches(session, '')).toBe(false);
    expect(csrfMatches(session, undefined)).toBe(false);
    expect(newSession('a@example.com', 'A', NOW).csrf).not.toBe(session.csrf);
  });
});

describe('one-time sign-in links', () => {
  it('work once and only within their lifetime', () => {
    let now = NOW;
    const links = new LocalSignIn(() => now);
    const first = links.issue();
    const second = links.issue();
    expect(links.redeem(first)).toBe(true);
    expect(links.redeem(first)).toBe(false);
    expect(links.redeem('made-up')).toBe(false);
    expect(links.redeem(undefined)).toBe(false);
    now += LOCAL_SIGN_IN_TTL_MS;
    expect(links.redeem(second)).toBe(false);
    expect(links.link('http://127.0.0.1:3000/')).toMatch(/^http:\/\/127\.0\.0\.1:3000\/auth\/local\?token=[A-Za-z0-9_-]{43}$/);
  });
});

describe('return paths', () => {
  it('keep relative paths and send anything else home', () => {
    expect(safeReturnTo('/definitions/3?x=1')).toBe('/definitions/3?x=1');
    for (const bad of [undefined, '', 'https://evil.test/', '//evil.test/', '/\\evil.test', 'javascript:alert(1)', '/a\r\nSet-Cookie: x']) {
      expect(safeReturnTo(bad)).toBe('/');
    }
  });
});

describe('console configuration', () => {
  it('lists every problem at once', () => {
    expect(() =>
      readConsoleConfig({ KUROKO_CONSOLE_SECRET: 'short', KUROKO_OIDC_ISSUER: 'not a url', KUROKO_CONSOLE_ADMINS: 'nobody' }, { localSignIn: 'never' }),
    ).toThrow(/at least 32[\s\S]*KUROKO_OIDC_ISSUER must be[\s\S]*CLIENT_ID is required[\s\S]*CLIENT_SECRET is required[\s\S]*ALLOWED_DOMAINS is required[\s\S]*`nobody` is not an email/);
  });

  it('keeps a generated secret in the data dir, and offers the local link as asked', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kuroko-console-config-'));
    try {
      const file = join(dir, 'nested', 'console-secret');
      const first = readConsoleConfig({}, { secretFile: file, localSignIn: 'always' });
      expect(first.secret.length).toBeGreaterThanOrEqual(32);
      expect(readFileSync(file, 'utf8').trim()).toBe(first.secret);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(readConsoleConfig({}, { secretFile: file, localSignIn: 'always' }).secret).toBe(first.secret);
      const oidcEnv = {
        KUROKO_OIDC_ISSUER: 'https://accounts.google.com',
        KUROKO_OIDC_CLIENT_ID: 'id',
        KUROKO_OIDC_CLIENT_SECRET: 'secret',
        KUROKO_OIDC_ALLOWED_DOMAINS: '@Example.com, example.org',
        KUROKO_CONSOLE_ADMINS: 'Boss@Example.com',
      };
      const warnings: string[] = [];
      const server = readConsoleConfig(oidcEnv, { localSignIn: 'without-oidc', warn: (m) => warnings.push(m) });
      expect(server.localSignIn).toBe(false);
      expect(server.oidc?.allowedDomains).toEqual(['example.com', 'example.org']);
      expect(server.admins).toEqual(['boss@example.com']);
      expect(warnings).toHaveLength(1);
      expect(readConsoleConfig({}, { localSignIn: 'without-oidc' }).localSignIn).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('rendering', () => {
  it('escapes interpolated text but not nested markup', () => {
    const name = '<script>alert("x")</script> & \'q\'';
    expect(html`<p title="${name}">${name}${html`<b>${'<i>'}</b>`}${[raw('<br>'), 'a<b']}${null}${false}</p>`.toString()).toBe(
      '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;<b>&lt;i&gt;</b><br>a&lt;b</p>',
    );
  });

  it('renders a description as Markdown, escaping raw HTML and refusing script links', () => {
    const out = renderMarkdown('# Nightly *batch*\nOwner: <b onclick="x()">ops</b>\n\n- see https://example.com/runbook\n- [bad](javascript:alert(1))\n').toString();
    expect(out).toContain('<h1>Nightly <em>batch</em></h1>');
    expect(out).toContain('Owner: &lt;b onclick=&quot;x()&quot;&gt;ops&lt;/b&gt;');
    expect(out).toContain('<a href="https://example.com/runbook" target="_blank" rel="noopener noreferrer">https://example.com/runbook</a>');
    expect(out).not.toContain('href="javascript:');
    expect(out).not.toContain('<b ');
  });

  it('links wait and sub_process ids to their definitions', () => {
    const script = 'wait: 12/daily, 34/hourly timeout=30\nsub_process: 56\nexecute: echo 78/daily\n';
    expect(referencedIds(script)).toEqual([12, 34, 56]);
    const out = renderScript(script, (id) => (id === 12 ? 'upstream <job>' : undefined)).toString();
    expect(out).toContain('<a href="/definitions/12" title="upstream &lt;job&gt;">12</a><span class="note"> (upstream &lt;job&gt;)</span>/daily');
    expect(out).toContain('<a href="/definitions/34"');
    expect(out).toContain('<a href="/definitions/56"');
    expect(out).not.toContain('/definitions/78');
  });

  it('links what the DSL parser reads as definition ids, nested or not, and nothing in comments', () => {
    const script = 'fork:\n  sequence:\n    wait: 1/daily,2 / weekly   timeout=2h # upstream 3/daily\n    subprocess: 007 # the copy\n  execute: echo <b>\n';
    expect(referencedIds(script)).toEqual([1, 2, 7]);
    const line = (n: number, text: string) => `<span class="line"><span class="ln" aria-hidden="true">${n}</span>${text}</span>\n`;
    expect(renderScript(script, (id) => (id === 2 ? 'two & co' : undefined)).toString()).toBe(
      `<pre class="script" aria-label="script"><code>${[
        line(1, 'fork:'),
        line(2, '  sequence:'),
        line(
          3,
          '    <span class="task">wait</span>: <a href="/definitions/1" title="unknown definition">1</a>/daily,<a href="/definitions/2" title="two &amp; co">2</a><span class="note"> (two &amp; co)</span> / weekly   timeout=2h # upstream 3/daily',
        ),
        line(4, '    <span class="task">subprocess</span>: <a href="/definitions/007" title="unknown definition">007</a> # the copy'),
        line(5, '  execute: echo &lt;b&gt;'),
      ].join('')}</code></pre>`,
    );
    const withMark = renderScript('\uFEFFsub_process: 9\n', () => undefined).toString();
    expect(withMark).toContain('\uFEFF<span class="task">sub_process</span>: <a href="/definitions/9" title="unknown definition">9</a></span>');
  });

  it('shows a script the parser refuses as plain text', () => {
    const script = 'wait: 12/daily\n    sub_process: 34\n  execute: misaligned\n';
    expect(referencedIds(script)).toEqual([]);
    const out = renderScript(script, () => 'named').toString();
    expect(out).not.toContain('<a ');
    expect(out).toContain('<span class="ln" aria-hidden="true">1</span>wait: 12/daily</span>');
  });

  it('diffs script revisions line by line', () => {
    expect(diffLines('a\nb\nc\n', 'a\nc\nd\n')).toEqual([
      { op: 'same', text: 'a' },
      { op: 'removed', text: 'b' },
      { op: 'same', text: 'c' },
      { op: 'added', text: 'd' },
    ]);
    expect(diffLines('', 'x')).toEqual([{ op: 'added', text: 'x' }]);
  });

  it('reads KEY=value environment lines and reports the others', () => {
    expect(parseEnvLines('A=1\n\nB = two=2\r\nnot a pair\n')).toEqual({ env: { A: '1', B: ' two=2' }, problems: ['environment line 4: expected KEY=value'] });
  });
});
