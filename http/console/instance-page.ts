/**
 * The instance page: status and times, the token tree with retry and skip, commands with their live output and
 * terminate, and the log. The parts that change while it runs are rendered as fragments that the page's polling
 * endpoint returns again, so the first render and the updates share one template.
 */
import { executionOutput } from '../../core/engine/execution-result';
import { INSTANCE_STATUS, TOKEN_STATUS, instanceStatus } from '../../core/model';
import type { DefinitionRecord } from '../../core/definitions/definition-rules';
import type { LiveOutput } from '../../db/repositories/console-query-repository';
import type { ExecutionView, InstanceDetail, LogView, TokenView } from '../../db/repositories/query-repository';
import type { ConsoleUser } from './console-access';
import { actionButton, badge, emptyState, instanceElapsed, layout, section, table, timeTag, type PageContext } from './console-layout';
import { html, type Html } from './html';

export interface InstanceView {
  /** Only what the page shows of the definition: the live view re-reads it every poll. */
  definition: Pick<DefinitionRecord, 'id' | 'name'>;
  detail: InstanceDetail;
  outputs: LiveOutput[];
  env: Record<string, string>;
  canAdminister: boolean;
  user: ConsoleUser;
  now: Date;
}

/** The ids of the fragments the live endpoint refreshes. */
export const FRAGMENT_IDS = { summary: 'instance-summary', tokens: 'instance-tokens', executions: 'instance-executions' } as const;

const base = (v: InstanceView) => `/definitions/${v.definition.id}/instances/${v.detail.instance.id}`;

/** Status, times and the cancel button. */
export function summaryFragment(v: InstanceView): Html {
  const i = v.detail.instance;
  const status = instanceStatus(i);
  const open = status === INSTANCE_STATUS.working || status === INSTANCE_STATUS.error;
  return html`<div class="panel-head"><h2>Status ${badge(status)}${i.retrying && status === INSTANCE_STATUS.working ? html` <span class="muted">(retrying)</span>` : ''}</h2>
${v.canAdminister && open
  ? actionButton(v.user, `${base(v)}/cancel`, 'Cancel instance', {
      danger: true,
      confirm: `Cancel instance #${i.id} of ${v.definition.name}? Its running commands are killed (TERM, then KILL).`,
    })
  : ''}</div>
<dl class="meta">
<dt>Launched by</dt><dd>${i.launchedBy}</dd>
<dt>Started</dt><dd>${timeTag(i.createdAt)}</dd>
${i.finishedAt ? html`<dt>Finished</dt><dd>${timeTag(i.finishedAt)}</dd>` : ''}
${i.errorAt ? html`<dt>Error at</dt><dd>${timeTag(i.errorAt)}</dd>` : ''}
${i.canceledAt ? html`<dt>Canceled</dt><dd>${timeTag(i.canceledAt)}</dd>` : ''}
<dt>Elapsed</dt><dd>${instanceElapsed(i, v.now)}</dd>
${Object.keys(v.env).length > 0 ? html`<dt>Environment</dt><dd><code>${Object.entries(v.env).map(([k, val]) => `${k}=${val}`).join(' ')}</code></dd>` : ''}
</dl>`;
}

function depthOf(token: TokenView, byId: Map<number, TokenView>): number {
  let depth = 0;
  let parent = token.parentId === null ? undefined : byId.get(token.parentId);
  while (parent && depth < 50) {
    depth++;
    parent = parent.parentId === null ? undefined : byId.get(parent.parentId);
  }
  return depth;
}

/** The token tree with retry and skip. */
export function tokensFragment(v: InstanceView): Html {
  const tokens = v.detail.tokens;
  if (tokens.length === 0) {
    return html`<h2>Tokens</h2>${emptyState(
      instanceStatus(v.detail.instance) === INSTANCE_STATUS.working ? 'No token yet: the processor will pick this instance up in a moment.' : 'No tokens left: the instance has ended.',
    )}`;
  }
  const byId = new Map(tokens.map((t) => [t.id, t]));
  return html`<h2>Tokens</h2>${table(
    ['Path', 'Status', 'Message', ''],
    tokens.map((t) => {
      const depth = depthOf(t, byId);
      const canRetry = t.status === TOKEN_STATUS.failure;
      const canSkip = t.status === TOKEN_STATUS.failure || t.status === TOKEN_STATUS.waiting;
      const buttons = v.canAdminister
        ? html`<div class="actions">${canRetry ? actionButton(v.user, `${base(v)}/tokens/${t.id}/retry`, 'Retry', { ariaLabel: `Retry ${t.path}`, className: 'primary' }) : ''}${
            canSkip ? actionButton(v.user, `${base(v)}/tokens/${t.id}/skip`, 'Skip', { ariaLabel: `Skip ${t.path}`, confirm: `Skip ${t.path}? The workflow moves on as if it succeeded.` }) : ''
          }</div>`
        : '';
      return html`<tr data-token="${t.id}" data-status="${t.status}"><td><code>${'  '.repeat(depth)}${t.path}</code></td><td>${badge(t.status)}</td><td class="wrap">${t.message}</td><td>${buttons}</td></tr>`;
    }),
    'tokens',
  )}`;
}

function executionState(e: ExecutionView): string {
  if (e.finishedAt === null) return e.pid === null ? (e.claimedAt ? 'starting' : 'waiting') : 'running';
  return e.exitStatus === 0 ? 'success' : 'failure';
}

/** The commands with their live output and terminate. */
export function executionsFragment(v: InstanceView): Html {
  const executions = v.detail.executions;
  if (executions.length === 0) return html`<h2>Commands</h2>${emptyState('No command has run yet.')}`;
  const outputOf = new Map(v.outputs.map((o) => [o.executionId, o]));
  return html`<h2>Commands</h2>${executions.map((e) => {
    const state = executionState(e);
    const live = outputOf.get(e.id);
    const output = live ? executionOutput(live) : '';
    const canTerminate = v.canAdminister && e.finishedAt === null && e.pid !== null;
    return html`<div class="panel execution" data-execution="${e.id}" data-state="${state}"${e.pid !== null ? html` data-pid="${e.pid}"` : ''}>
<div class="panel-head"><div><code>${e.shell}</code></div><div class="actions">${badge(state === 'starting' || state === 'waiting' ? 'waiting' : state, state)}${
      canTerminate
        ? actionButton(v.user, `${base(v)}/executions/${e.id}/terminate`, 'Terminate', {
            danger: true,
            confirm: `Terminate pid ${e.pid} (${e.shell})? Its process group gets TERM, then KILL; the token fails and can be retried.`,
          })
        : ''
    }</div></div>
<dl class="meta"><dt>Worker</dt><dd>${e.hostname ?? html`<span class="muted">not claimed yet</span>`}${e.pid !== null ? html` · pid <span class="pid">${e.pid}</span>` : ''}</dd>
<dt>Started</dt><dd>${timeTag(e.startedAt)}${e.finishedAt ? html` · finished ${timeTag(e.finishedAt)}` : ''}</dd>
${e.finishedAt ? html`<dt>Result</dt><dd>${e.termSignal ? `stopped by ${e.termSignal}` : `exit status ${e.exitStatus ?? 'unknown'}`}</dd>` : ''}</dl>
${e.finishedAt === null ? html`<pre class="output" aria-label="output of ${e.shell}">${output || '(no output yet)'}</pre>` : html`<p class="muted">Its output is in the log below.</p>`}
</div>`;
  })}`;
}

/** One log line. */
export function logLine(log: LogView): Html {
  return html`<li><span class="lv lv-${log.level}">${log.level}</span>${timeTag(log.createdAt)}<span class="msg">${log.message}</span></li>`;
}

/** The whole instance page. */
export function instancePage(ctx: PageContext & { user: ConsoleUser }, v: InstanceView, logs: readonly LogView[]): Html {
  const i = v.detail.instance;
  const live = instanceStatus(i) === INSTANCE_STATUS.working;
  return layout(
    ctx,
    `#${i.id} ${v.definition.name}`,
    html`<h1><a href="/definitions/${v.definition.id}">${v.definition.name}</a> <span>instance #${i.id}</span></h1>
<div id="instance-live"${live ? html` data-live-url="${base(v)}/live" data-log-count="${logs.length}" data-status="${instanceStatus(i)}" data-title="${v.definition.name} #${i.id}"` : ''}>
<section class="panel" id="${FRAGMENT_IDS.summary}">${summaryFragment(v)}</section>
<section class="panel" id="${FRAGMENT_IDS.tokens}">${tokensFragment(v)}</section>
<section id="${FRAGMENT_IDS.executions}">${executionsFragment(v)}</section>
${section(
  'Log',
  html`${logs.length === 0 ? html`<p id="log-empty" class="muted">Nothing logged yet.</p>` : ''}<ol class="log" id="log-lines" aria-live="polite">${logs.map(logLine)}</ol>`,
  live ? html`<span class="muted">updates live</span>` : undefined,
  'log',
)}
</div>
${section('Script of this run', html`<details><summary>Show the script</summary><pre>${i.script}</pre></details>`)}`,
  );
}
