/**
 * The console's only static files: one stylesheet and one small script, served from memory with a content hash
 * in their URLs so browsers may cache them for good. No build step, no framework: the pages work without the
 * script, which adds local times, confirmations, live script validation and live instance updates.
 */
import { createHash } from 'node:crypto';

const CSS = String.raw`
:root{--bg:#f7f7f8;--fg:#1d1f23;--muted:#60656f;--panel:#fff;--line:#dcdfe4;--accent:#2456c7;--accent-fg:#fff;
--ok:#1f7a3a;--err:#b3261e;--warn:#8a5a00;--run:#2456c7;--cancel:#6b6f76;--code:#f1f2f4;--focus:#ffbf47;
font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;font-size:15px;line-height:1.45}
@media (prefers-color-scheme:dark){:root{--bg:#16181c;--fg:#e6e7ea;--muted:#a0a5ae;--panel:#1e2126;--line:#343840;
--accent:#7aa2ff;--accent-fg:#0b0d10;--ok:#5cc879;--err:#ff8a80;--warn:#f2c14e;--run:#7aa2ff;--cancel:#a0a5ae;--code:#25282e}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg)}
a{color:var(--accent)}
:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
.skip{position:absolute;left:-9999px}.skip:focus{left:8px;top:8px;background:var(--panel);padding:6px;z-index:10}
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
.top{display:flex;flex-wrap:wrap;align-items:center;gap:8px 18px;padding:8px 16px;background:var(--panel);border-bottom:1px solid var(--line)}
.brand{font-weight:700;font-size:1.15rem;text-decoration:none;color:var(--fg)}
.top nav{display:flex;flex-wrap:wrap;gap:4px 12px;flex:1}
.top nav a{text-decoration:none;padding:4px 2px;border-bottom:2px solid transparent}
.top nav a[aria-current=page]{border-bottom-color:var(--accent);font-weight:600}
.who{display:flex;gap:8px;align-items:center;color:var(--muted);font-size:.9rem}
.role{border:1px solid var(--line);border-radius:10px;padding:0 6px;font-size:.8rem}
main{padding:16px;max-width:1200px;margin:0 auto}
h1{font-size:1.4rem;margin:4px 0 12px;display:flex;flex-wrap:wrap;gap:8px;align-items:center}
h2{font-size:1.05rem;margin:0}
.panel{background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:12px;margin:0 0 16px}
.panel-head{display:flex;flex-wrap:wrap;justify-content:space-between;align-items:center;gap:8px;margin-bottom:8px}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:16px}
.table-wrap{overflow-x:auto}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:.85rem;color:var(--muted);font-weight:600}
td.num,th.num{text-align:right}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:.8rem;font-weight:600;color:#fff;background:var(--cancel);white-space:nowrap}
.s-success,.s-finished,.s-idle{background:var(--ok)}.s-error,.s-failure,.s-critical,.s-lost{background:var(--err)}
.s-working,.s-running{background:var(--run)}.s-waiting,.s-suspended,.s-draining{background:var(--warn)}.s-canceled{background:var(--cancel)}
@media (prefers-color-scheme:dark){.badge{color:#0b0d10}}
.muted,.note{color:var(--muted)}
.btn,button,input[type=submit]{font:inherit;border:1px solid var(--line);background:var(--panel);color:var(--fg);padding:5px 12px;border-radius:6px;cursor:pointer;min-height:32px}
.btn.primary,button.primary{background:var(--accent);color:var(--accent-fg);border-color:var(--accent)}
.btn.danger,button.danger{color:var(--err);border-color:var(--err)}
button[disabled]{opacity:.5;cursor:not-allowed}
button.link{border:0;background:none;color:var(--accent);padding:0;min-height:0;text-decoration:underline}
button.link[aria-pressed=true]{font-weight:600;text-decoration:none}
[hidden]{display:none!important}
a.btn{text-decoration:none;display:inline-block}
form.inline{display:inline}
.actions{display:flex;flex-wrap:wrap;gap:8px;align-items:center}
.flash{padding:8px 12px;border-radius:6px;border:1px solid var(--line);background:var(--panel)}
.flash-error{border-color:var(--err);color:var(--err)}
.empty{color:var(--muted);padding:8px 0}
.empty p{margin:0 0 6px}
label{display:block;font-weight:600;margin:10px 0 4px}
.hint{font-weight:400;color:var(--muted);font-size:.85rem}
input[type=text],input[type=search],input[type=email],input[type=number],input[type=url],textarea,select{font:inherit;width:100%;padding:6px 8px;border:1px solid var(--line);border-radius:6px;background:var(--panel);color:var(--fg)}
fieldset{border:1px solid var(--line);border-radius:6px;margin:10px 0}
fieldset label{display:inline-flex;gap:6px;font-weight:400;margin:2px 12px 2px 0}
.field-error{color:var(--err);font-size:.9rem;margin:2px 0}
.search{display:flex;gap:8px;flex-wrap:wrap;margin-bottom:8px}.search input{flex:1;min-width:180px}
.tags{display:flex;flex-wrap:wrap;gap:4px}
.tag{display:inline-block;border:1px solid var(--line);border-radius:10px;padding:0 8px;font-size:.85rem;text-decoration:none}
.tag[aria-pressed=true]{background:var(--accent);color:var(--accent-fg);border-color:var(--accent)}
pre,code,textarea.code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
pre{background:var(--code);padding:8px;border-radius:6px;overflow-x:auto;margin:0;white-space:pre}
pre.wrap{white-space:pre-wrap;word-break:break-word}
.markdown{overflow-wrap:anywhere}.markdown>:first-child{margin-top:0}.markdown>:last-child{margin-bottom:0}.markdown pre{white-space:pre-wrap}
.script .ln{display:inline-block;width:3ch;margin-right:1.5ch;text-align:right;color:var(--muted);user-select:none}
.script .task{font-weight:600}
.diff .d-added{display:block;color:var(--ok)}.diff .d-removed{display:block;color:var(--err)}.diff .d-same{display:block;color:var(--muted)}
.editor{display:flex;border:1px solid var(--line);border-radius:6px;background:var(--panel);overflow:hidden}
.editor.invalid{border-color:var(--err)}
.gutter{flex:none;width:5.5ch;overflow:hidden;background:var(--code);color:var(--muted);text-align:right;padding:6px 4px 6px 0;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px;line-height:20px;user-select:none}
.gutter .gl{height:20px;white-space:nowrap}
.gutter .gl.has-error{color:#fff;background:var(--err);font-weight:700}
.editor textarea{border:0;border-radius:0;resize:vertical;min-height:220px;line-height:20px;padding:6px 8px;white-space:pre;overflow:auto;tab-size:2}
.problems{margin:6px 0 0;padding:0;list-style:none}
.problems li{color:var(--err);margin:2px 0}
.problems li.ok{color:var(--ok)}
.problems button{color:var(--err);font-weight:600}
.log{list-style:none;margin:0;padding:0;max-height:70vh;overflow:auto}
.log li{display:grid;grid-template-columns:auto auto 1fr;gap:8px;padding:4px 0;border-bottom:1px solid var(--line);align-items:start}
.log .msg{white-space:pre-wrap;word-break:break-word;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
.lv{font-size:.75rem;font-weight:700}.lv-ERROR{color:var(--err)}.lv-WARN{color:var(--warn)}.lv-INFO{color:var(--muted)}
.output{max-height:300px;overflow:auto}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:4px 12px;margin:0}
dl.meta dt{color:var(--muted)}dl.meta dd{margin:0}
svg.chart,svg.timeline{width:100%;height:auto;display:block}
svg .bar{fill:var(--cancel)}svg .bar.s-success{fill:var(--ok)}svg .bar.s-error,svg .bar.s-failure{fill:var(--err)}
svg .bar.s-working,svg .bar.s-running{fill:var(--run)}
svg .axis,svg .grid{stroke:var(--line)}svg .tick,svg .row-label{fill:var(--muted);font-size:11px}
svg .row.s-row-0{fill:transparent}svg .row.s-row-1{fill:var(--code)}
.star{font-size:1.1rem;line-height:1;padding:2px 6px;min-height:0}
.star[aria-pressed=true]{color:#d49b00}
details summary{cursor:pointer;font-weight:600}
@media (max-width:640px){.log li{grid-template-columns:auto 1fr}.log .msg{grid-column:1/-1}main{padding:10px}.panel{padding:8px}th,td{padding:5px}h1{font-size:1.2rem}}
`;

const JS = String.raw`(function () {
  'use strict';
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute('content') : '';
  function pad(n) { return String(n).padStart(2, '0'); }
  function localize(root) {
    root.querySelectorAll('time[data-local]').forEach(function (el) {
      var d = new Date(el.getAttribute('datetime'));
      if (isNaN(d.getTime())) return;
      var zone = '';
      try {
        var part = new Intl.DateTimeFormat(undefined, { timeZoneName: 'short' }).formatToParts(d).find(function (p) { return p.type === 'timeZoneName'; });
        zone = part ? ' ' + part.value : '';
      } catch (e) { zone = ''; }
      el.textContent = d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()) + zone;
      el.removeAttribute('data-local');
    });
    root.querySelectorAll('[data-local-hm]').forEach(function (el) {
      var d = new Date(el.getAttribute('data-local-hm'));
      if (isNaN(d.getTime())) return;
      var hm = pad(d.getHours()) + ':' + pad(d.getMinutes());
      el.textContent = el.hasAttribute('data-with-date') ? pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + hm : hm;
      el.removeAttribute('data-local-hm');
    });
  }
  document.addEventListener('submit', function (e) {
    var message = e.target.getAttribute && e.target.getAttribute('data-confirm');
    if (message && !window.confirm(message)) e.preventDefault();
  });

  function setupEditor(wrap) {
    var ta = wrap.querySelector('textarea');
    var gutter = wrap.querySelector('.gutter');
    var list = wrap.parentNode.querySelector('.problems');
    var problems = JSON.parse(wrap.getAttribute('data-problems') || '[]');
    var timer = 0, seq = 0, checked = wrap.hasAttribute('data-checked');
    function goTo(line) {
      var lines = ta.value.split('\n'), start = 0;
      for (var i = 0; i < line - 1 && i < lines.length; i++) start += lines[i].length + 1;
      ta.focus();
      ta.setSelectionRange(start, start + (lines[line - 1] || '').length);
    }
    function render() {
      var count = ta.value.split('\n').length, byLine = {};
      problems.forEach(function (p) { (byLine[p.line] = byLine[p.line] || []).push(p.message); });
      var frag = document.createDocumentFragment();
      for (var i = 1; i <= count; i++) {
        var row = document.createElement('div');
        row.className = 'gl' + (byLine[i] ? ' has-error' : '');
        row.setAttribute('data-line', String(i));
        row.textContent = (byLine[i] ? '! ' : '') + i;
        if (byLine[i]) row.title = byLine[i].join('\n');
        frag.appendChild(row);
      }
      gutter.replaceChildren(frag);
      gutter.scrollTop = ta.scrollTop;
      wrap.classList.toggle('invalid', problems.length > 0);
      ta.setAttribute('aria-invalid', problems.length > 0 ? 'true' : 'false');
      if (!list) return;
      list.replaceChildren();
      if (problems.length === 0) {
        if (checked) { var ok = document.createElement('li'); ok.className = 'ok'; ok.textContent = 'No problems found.'; list.appendChild(ok); }
        return;
      }
      problems.forEach(function (p) {
        var li = document.createElement('li');
        li.setAttribute('data-line', String(p.line));
        var b = document.createElement('button');
        b.type = 'button'; b.className = 'link';
        b.textContent = 'Line ' + p.line + ', column ' + p.column;
        b.addEventListener('click', function () { goTo(p.line); });
        li.appendChild(b);
        li.appendChild(document.createTextNode(': ' + p.message));
        list.appendChild(li);
      });
    }
    function validate() {
      var mine = ++seq;
      fetch('/console/validate', { method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json', 'x-csrf-token': csrf }, body: JSON.stringify({ script: ta.value }) })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) { if (!body || mine !== seq) return; problems = body.problems; checked = true; render(); })
        .catch(function () { /* the server checks again on save */ });
    }
    ta.addEventListener('input', function () { render(); clearTimeout(timer); timer = setTimeout(validate, 250); });
    ta.addEventListener('scroll', function () { gutter.scrollTop = ta.scrollTop; });
    render();
  }

  // Desktop notifications (Kuroko2's "Allow user to receive notification"): turned on per browser with the toggle,
  // once the browser's permission is granted; the live instance view then announces each status change.
  var NOTIFY_KEY = 'kuroko-desktop-notifications';
  function notifyOn() {
    try { return localStorage.getItem(NOTIFY_KEY) === 'on' && window.Notification.permission === 'granted'; } catch (e) { return false; }
  }
  function setupNotifyToggle(button) {
    if (!('Notification' in window)) return;
    function show() { button.setAttribute('aria-pressed', notifyOn() ? 'true' : 'false'); }
    button.addEventListener('click', function () {
      if (notifyOn()) { localStorage.setItem(NOTIFY_KEY, 'off'); show(); return; }
      Promise.resolve(window.Notification.requestPermission()).then(function (permission) {
        if (permission === 'granted') localStorage.setItem(NOTIFY_KEY, 'on');
        show();
      });
    });
    button.hidden = false;
    show();
  }

  function setupLive(el) {
    var url = el.getAttribute('data-live-url');
    var logCount = Number(el.getAttribute('data-log-count') || '0');
    var status = el.getAttribute('data-status');
    var title = el.getAttribute('data-title') || document.title;
    var seen = {};
    function tick() {
      fetch(url + '?logs=' + logCount, { credentials: 'same-origin', headers: { accept: 'application/json' } })
        .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
        .then(function (state) {
          Object.keys(state.fragments).forEach(function (id) {
            var target = document.getElementById(id);
            if (!target || seen[id] === state.fragments[id]) return;
            seen[id] = state.fragments[id];
            target.innerHTML = state.fragments[id];
            localize(target);
          });
          var log = document.getElementById('log-lines');
          if (log && state.logs.length > 0) {
            var empty = document.getElementById('log-empty');
            if (empty) empty.remove();
            state.logs.forEach(function (line) { log.insertAdjacentHTML('beforeend', line); });
            localize(log);
            log.scrollTop = log.scrollHeight;
          }
          logCount = state.logCount;
          el.setAttribute('data-log-count', String(logCount));
          if (state.status && state.status !== status) {
            if (status && notifyOn()) {
              try { new window.Notification(title, { body: 'Status: ' + state.status }); } catch (e) { /* shown on the page anyway */ }
            }
            status = state.status;
          }
          if (state.done) { el.setAttribute('data-live', 'done'); return; }
          setTimeout(tick, 1500);
        })
        .catch(function () { setTimeout(tick, 5000); });
    }
    el.setAttribute('data-live', 'on');
    setTimeout(tick, 1500);
  }

  function start() {
    localize(document);
    document.querySelectorAll('[data-editor]').forEach(setupEditor);
    document.querySelectorAll('[data-live-url]').forEach(setupLive);
    document.querySelectorAll('[data-notify-toggle]').forEach(setupNotifyToggle);
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
})();
`;

const hash = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 12);

export const CONSOLE_ASSETS = {
  css: { body: CSS, type: 'text/css; charset=utf-8' },
  js: { body: JS, type: 'text/javascript; charset=utf-8' },
} as const;

export const ASSET_PATHS = {
  css: `/console/assets/console.css?v=${hash(CSS)}`,
  js: `/console/assets/console.js?v=${hash(JS)}`,
} as const;
