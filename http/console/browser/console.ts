/**
 * The console's only script, bundled by `npm run build:console` into console-assets.generated.ts. The pages work
 * without it; it adds local times, confirmations, live script validation, live instance updates and desktop
 * notifications. It runs in the browser: it imports nothing, least of all from the server.
 */

export {};

interface Problem {
  line: number;
  column: number;
  message: string;
}

interface LiveState {
  status?: string;
  done: boolean;
  fragments: Record<string, string>;
  logs: string[];
  logCount: number;
}

const VALIDATE_DELAY_MS = 250;
const POLL_MS = 1500;
const POLL_AFTER_ERROR_MS = 5000;
const NOTIFY_KEY = 'kuroko-desktop-notifications';

const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? '';

const pad = (n: number): string => String(n).padStart(2, '0');

/** Rewrites the UTC times the server rendered into the viewer's zone. */
function localize(root: ParentNode): void {
  root.querySelectorAll('time[data-local]').forEach((el) => {
    const d = new Date(el.getAttribute('datetime') ?? '');
    if (isNaN(d.getTime())) return;
    let zone = '';
    try {
      const part = new Intl.DateTimeFormat(undefined, { timeZoneName: 'short' }).formatToParts(d).find((p) => p.type === 'timeZoneName');
      zone = part ? ` ${part.value}` : '';
    } catch {
      zone = '';
    }
    el.textContent = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}${zone}`;
    el.removeAttribute('data-local');
  });
  root.querySelectorAll('[data-local-hm]').forEach((el) => {
    const d = new Date(el.getAttribute('data-local-hm') ?? '');
    if (isNaN(d.getTime())) return;
    const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    el.textContent = el.hasAttribute('data-with-date') ? `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hm}` : hm;
    el.removeAttribute('data-local-hm');
  });
}

document.addEventListener('submit', (e) => {
  const message = e.target instanceof Element ? e.target.getAttribute('data-confirm') : null;
  if (message && !window.confirm(message)) e.preventDefault();
});

/** The script editor: a gutter with a line per line of text, each problem marked at its line, checked as you type. */
function setupEditor(wrap: Element): void {
  const ta = wrap.querySelector('textarea');
  const gutter = wrap.querySelector<HTMLElement>('.gutter');
  if (!ta || !gutter) return;
  const list = wrap.parentNode?.querySelector('.problems');
  let problems = JSON.parse(wrap.getAttribute('data-problems') || '[]') as Problem[];
  let timer: ReturnType<typeof setTimeout> | undefined;
  let seq = 0;
  let checked = wrap.hasAttribute('data-checked');

  const goTo = (line: number): void => {
    const lines = ta.value.split('\n');
    let start = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) start += (lines[i] ?? '').length + 1;
    ta.focus();
    ta.setSelectionRange(start, start + (lines[line - 1] ?? '').length);
  };

  const render = (): void => {
    const count = ta.value.split('\n').length;
    const byLine = new Map<number, string[]>();
    for (const p of problems) byLine.set(p.line, [...(byLine.get(p.line) ?? []), p.message]);
    const frag = document.createDocumentFragment();
    for (let i = 1; i <= count; i++) {
      const messages = byLine.get(i);
      const row = document.createElement('div');
      row.className = `gl${messages ? ' has-error' : ''}`;
      row.setAttribute('data-line', String(i));
      row.textContent = `${messages ? '! ' : ''}${i}`;
      if (messages) row.title = messages.join('\n');
      frag.appendChild(row);
    }
    gutter.replaceChildren(frag);
    gutter.scrollTop = ta.scrollTop;
    wrap.classList.toggle('invalid', problems.length > 0);
    ta.setAttribute('aria-invalid', problems.length > 0 ? 'true' : 'false');
    if (!list) return;
    list.replaceChildren();
    if (problems.length === 0) {
      if (checked) {
        const ok = document.createElement('li');
        ok.className = 'ok';
        ok.textContent = 'No problems found.';
        list.appendChild(ok);
      }
      return;
    }
    for (const p of problems) {
      const li = document.createElement('li');
      li.setAttribute('data-line', String(p.line));
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'link';
      b.textContent = `Line ${p.line}, column ${p.column}`;
      b.addEventListener('click', () => goTo(p.line));
      li.appendChild(b);
      li.appendChild(document.createTextNode(`: ${p.message}`));
      list.appendChild(li);
    }
  };

  const validate = (): void => {
    const mine = ++seq;
    fetch('/console/validate', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
      body: JSON.stringify({ script: ta.value }),
    })
      .then((r) => (r.ok ? (r.json() as Promise<{ problems: Problem[] }>) : null))
      .then((body) => {
        if (!body || mine !== seq) return;
        problems = body.problems;
        checked = true;
        render();
      })
      .catch(() => {
        /* the server checks again on save */
      });
  };

  ta.addEventListener('input', () => {
    render();
    clearTimeout(timer);
    timer = setTimeout(validate, VALIDATE_DELAY_MS);
  });
  ta.addEventListener('scroll', () => {
    gutter.scrollTop = ta.scrollTop;
  });
  render();
}

// Desktop notifications (Kuroko2's "Allow user to receive notification"): turned on per browser with the toggle,
// once the browser's permission is granted; the live instance view then announces each status change.
function notifyOn(): boolean {
  try {
    return localStorage.getItem(NOTIFY_KEY) === 'on' && window.Notification.permission === 'granted';
  } catch {
    return false;
  }
}

function setupNotifyToggle(button: HTMLElement): void {
  if (!('Notification' in window)) return;
  const show = () => button.setAttribute('aria-pressed', notifyOn() ? 'true' : 'false');
  button.addEventListener('click', () => {
    if (notifyOn()) {
      localStorage.setItem(NOTIFY_KEY, 'off');
      show();
      return;
    }
    void Promise.resolve(window.Notification.requestPermission()).then((permission) => {
      if (permission === 'granted') localStorage.setItem(NOTIFY_KEY, 'on');
      show();
    });
  });
  button.hidden = false;
  show();
}

/** Polls an instance's live endpoint: replaces the changed fragments and appends new log lines until it is done. */
function setupLive(el: Element): void {
  const url = el.getAttribute('data-live-url') ?? '';
  let logCount = Number(el.getAttribute('data-log-count') || '0');
  let status = el.getAttribute('data-status');
  const title = el.getAttribute('data-title') || document.title;
  const seen = new Map<string, string>();

  function apply(state: LiveState): void {
    for (const [id, fragment] of Object.entries(state.fragments)) {
      const target = document.getElementById(id);
      if (!target || seen.get(id) === fragment) continue;
      seen.set(id, fragment);
      target.innerHTML = fragment;
      localize(target);
    }
    const log = document.getElementById('log-lines');
    if (log && state.logs.length > 0) {
      document.getElementById('log-empty')?.remove();
      for (const line of state.logs) log.insertAdjacentHTML('beforeend', line);
      localize(log);
      log.scrollTop = log.scrollHeight;
    }
    logCount = state.logCount;
    el.setAttribute('data-log-count', String(logCount));
    if (state.status && state.status !== status) {
      if (status && notifyOn()) {
        try {
          new window.Notification(title, { body: `Status: ${state.status}` });
        } catch {
          /* shown on the page anyway */
        }
      }
      status = state.status;
    }
  }

  function tick(): void {
    fetch(`${url}?logs=${logCount}`, { credentials: 'same-origin', headers: { accept: 'application/json' } })
      .then((r) => {
        if (!r.ok) throw new Error(String(r.status));
        return r.json() as Promise<LiveState>;
      })
      .then((state) => {
        apply(state);
        if (state.done) {
          el.setAttribute('data-live', 'done');
          return;
        }
        setTimeout(tick, POLL_MS);
      })
      .catch(() => setTimeout(tick, POLL_AFTER_ERROR_MS));
  }

  el.setAttribute('data-live', 'on');
  setTimeout(tick, POLL_MS);
}

function start(): void {
  localize(document);
  document.querySelectorAll('[data-editor]').forEach(setupEditor);
  document.querySelectorAll('[data-live-url]').forEach(setupLive);
  document.querySelectorAll<HTMLElement>('[data-notify-toggle]').forEach(setupNotifyToggle);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
