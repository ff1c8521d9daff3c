/**
 * Pages for operating the fleet: working instances, unfinished executions, workers with suspend, timelines of
 * executions per worker and of instances per job; plus the sign-in and error pages.
 */
import type { InstanceWithName, TimelineBar } from '../../db/repositories/console-query-repository';
import type { UnfinishedExecution, WorkerView } from '../../db/repositories/query-repository';
import type { ConsoleUser } from './console-access';
import { actionButton, badge, emptyState, instanceBadge, instanceElapsed, layout, section, table, timeTag, type PageContext } from './console-layout';
import { html, type Html } from './html';
import { timeline, type TimelineItem } from './svg-charts';

/** Every working instance. */
export function workingPage(ctx: PageContext & { user: ConsoleUser }, instances: readonly InstanceWithName[], now: Date): Html {
  return layout(
    ctx,
    'Working instances',
    html`<h1>Working instances</h1>
${section(
  `${instances.length} working`,
  instances.length === 0
    ? emptyState('There are no working jobs.')
    : table(
        ['#', 'Status', 'Job', 'Launched by', 'Started', 'Elapsed'],
        instances.map(
          (i) =>
            html`<tr><td class="num"><a href="/definitions/${i.definitionId}/instances/${i.id}">${i.id}</a></td><td>${instanceBadge(i)}</td><td><a href="/definitions/${i.definitionId}">${i.definitionName}</a></td><td>${i.launchedBy}</td><td>${timeTag(i.createdAt)}</td><td>${instanceElapsed(i, now)}</td></tr>`,
        ),
      ),
)}`,
  );
}

/** Unfinished executions: waiting for a worker or running. */
export function executionsPage(ctx: PageContext & { user: ConsoleUser }, executions: readonly UnfinishedExecution[]): Html {
  return layout(
    ctx,
    'Executions',
    html`<h1>Executions</h1>
${section(
  'Unfinished commands',
  executions.length === 0
    ? emptyState('No command is waiting or running.')
    : table(
        ['State', 'Queue', 'Job', 'Command', 'Worker', 'Created', 'Started'],
        executions.map(
          (e) =>
            html`<tr><td>${e.startedAt ? badge('running') : badge('waiting')}</td><td>${e.queue}</td><td><a href="/definitions/${e.definitionId}/instances/${e.instanceId}">${e.definitionName ?? `#${e.definitionId}`} #${e.instanceId}</a></td><td><code>${e.shell}</code></td><td>${e.hostname ?? html`<span class="muted">unclaimed</span>`}${e.pid !== null ? ` (pid ${e.pid})` : ''}</td><td>${timeTag(e.createdAt)}</td><td>${timeTag(e.startedAt)}</td></tr>`,
        ),
      ),
)}`,
  );
}

/** Workers with their status and a suspend or resume button for global admins. */
export function workersPage(ctx: PageContext & { user: ConsoleUser }, workers: readonly WorkerView[]): Html {
  const user = ctx.user;
  return layout(
    ctx,
    'Workers',
    html`<h1>Workers</h1>
${section(
  `${workers.length} workers`,
  workers.length === 0
    ? emptyState('No worker has registered. Start one with `kuroko agent`, or run the local mode with agents.')
    : table(
        ['Hostname', 'Id', 'Queues', 'Slots', 'Status', 'Heartbeat', 'Running', ''],
        workers.map(
          (w) =>
            html`<tr data-worker="${w.id}"><td><a href="/timeline?view=workers&amp;host=${encodeURIComponent(w.hostname)}">${w.hostname}</a></td><td class="num">${w.id}</td><td>${w.queues.join(', ')}</td><td class="num">${w.slots}</td><td>${badge(w.status, w.status.toUpperCase())}</td><td>${timeTag(w.heartbeatAt)}</td><td>${w.executionIds.length}</td><td>${
              user.globalAdmin
                ? w.suspended
                  ? actionButton(user, `/workers/${w.id}/suspend`, 'Resume', { fields: { suspended: 'false' }, ariaLabel: `Resume ${w.hostname}` })
                  : actionButton(user, `/workers/${w.id}/suspend`, 'Suspend', {
                      fields: { suspended: 'true' },
                      ariaLabel: `Suspend ${w.hostname}`,
                      confirm: `Suspend ${w.hostname}? It finishes what it runs and claims nothing new until resumed.`,
                    })
                : ''
            }</td></tr>`,
        ),
      ),
)}`,
  );
}

export const TIMELINE_PERIODS = { '15m': 900_000, '1h': 3_600_000, '6h': 21_600_000, '1d': 86_400_000, '1w': 604_800_000 } as const;
export type TimelinePeriod = keyof typeof TIMELINE_PERIODS;

export interface TimelineData {
  view: 'workers' | 'jobs';
  period: TimelinePeriod;
  from: Date;
  to: Date;
  bars: TimelineBar[];
  host: string | undefined;
}

/** A timeline of executions per worker, or of instances per job, over a period. */
export function timelinePage(ctx: PageContext & { user: ConsoleUser }, data: TimelineData): Html {
  const items: TimelineItem[] = data.bars.map((b) =>
    data.view === 'workers'
      ? { group: b.group, groupLabel: b.group, label: b.label, start: b.start, end: b.end, href: `/definitions/${b.definitionId}/instances/${b.instanceId}`, state: b.state }
      : {
          group: b.group,
          groupLabel: b.definitionName,
          groupHref: `/definitions/${b.definitionId}`,
          label: b.label,
          start: b.start,
          end: b.end,
          href: `/definitions/${b.definitionId}/instances/${b.instanceId}`,
          state: b.state,
        },
  );
  const link = (view: string, period: string) => `/timeline?view=${view}&period=${period}${data.host ? `&host=${encodeURIComponent(data.host)}` : ''}`;
  return layout(
    ctx,
    'Timeline',
    html`<h1>Timeline</h1>
<p class="actions"><span>Show:</span>
<a class="tag" href="${link('workers', data.period)}" aria-pressed="${data.view === 'workers' ? 'true' : 'false'}">Executions per worker</a>
<a class="tag" href="${link('jobs', data.period)}" aria-pressed="${data.view === 'jobs' ? 'true' : 'false'}">Instances per job</a>
<span>Period:</span>${Object.keys(TIMELINE_PERIODS).map((p) => html`<a class="tag" href="${link(data.view, p)}" aria-pressed="${p === data.period ? 'true' : 'false'}">${p}</a>`)}
${data.host ? html`<span>Worker ${data.host} · <a href="/timeline?view=workers&amp;period=${data.period}">all workers</a></span>` : ''}</p>
${section(
  html`${data.view === 'workers' ? 'Executions per worker' : 'Instances per job'}, ${timeTag(data.from)} to ${timeTag(data.to)}`,
  timeline(data.view === 'workers' ? 'Executions per worker' : 'Instances per job', items, data.from, data.to, data.to.getTime() - data.from.getTime() > TIMELINE_PERIODS['1d']),
)}`,
  );
}

export interface SignInOptions {
  oidcLabel: string | undefined;
  localSignIn: boolean;
  returnTo: string;
  message?: string;
}

/** The sign-in page. */
export function signInPage(ctx: PageContext, options: SignInOptions): Html {
  return layout(
    ctx,
    'Sign in',
    html`<section class="panel"><h1>Sign in to Kuroko</h1>
${options.message ? html`<p class="flash flash-error" role="alert">${options.message}</p>` : ''}
${options.oidcLabel ? html`<p><a class="btn primary" href="/auth/oidc?return_to=${encodeURIComponent(options.returnTo)}">Sign in with ${options.oidcLabel}</a></p>` : ''}
${options.localSignIn ? html`<p>Open the one-time sign-in link that <code>kuroko dev</code> printed in its terminal. Each link works once, for 15 minutes; restart to get a new one.</p>` : ''}
${!options.oidcLabel && !options.localSignIn ? html`<p>No sign-in method is configured. Set KUROKO_OIDC_ISSUER, KUROKO_OIDC_CLIENT_ID, KUROKO_OIDC_CLIENT_SECRET and KUROKO_OIDC_ALLOWED_DOMAINS.</p>` : ''}
</section>`,
  );
}

/** An error page (not found, forbidden, conflict) with a way back. */
export function errorPage(ctx: PageContext, title: string, message: string): Html {
  return layout(ctx, title, html`<section class="panel"><h1>${title}</h1><p>${message}</p><p><a href="/">Back to the dashboard</a></p></section>`);
}
