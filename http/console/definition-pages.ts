/**
 * Pages about job definitions: the dashboard, the searchable list, a definition with its schedules, instances,
 * launch form and charts, and script revisions (the create/edit form is in definition-form-page.ts).
 */
import type { CustomTasks } from '../../core/dsl/custom-tasks';
import { DateTime } from 'luxon';
import type { ScriptProblem } from '../../core/errors';
import type { Instance } from '../../core/model';
import { nextLaunchTime, parseCron, type CronExpression } from '../../core/schedule';
import type { DefinitionRecord } from '../../core/definitions/definition-rules';
import type { InstanceStat, InstanceWithName, ScriptRevision } from '../../db/repositories/console-query-repository';
import type { ConsoleUser } from './console-access';
import {
  actionButton,
  badge,
  csrfField,
  emptyState,
  formatDuration,
  instanceBadge,
  instanceElapsed,
  layout,
  section,
  table,
  timeTag,
  type PageContext,
} from './console-layout';
import { PREVENT_MULTI_TEXT, scriptEditor } from './definition-form-page';
import { html, type Html } from './html';
import { renderMarkdown } from './markdown';
import { diffLines, renderDiff, renderScript } from './script-view';
import { barChart } from './svg-charts';

/** What a list row shows about a definition. */
export interface DefinitionRow {
  definition: DefinitionRecord;
  admins: string[];
  latest: Instance | undefined;
  starred: boolean;
}

const parsed = (crons: readonly string[]): CronExpression[] =>
  crons.flatMap((c) => {
    const r = parseCron(c);
    return r.ok ? [r.cron] : [];
  });

/** The next launch of a definition (suspend schedules applied), or undefined when none or scheduling is suspended. */
export function nextRunOf(definition: DefinitionRecord, now: Date, crons: readonly string[] = definition.crons): Date | undefined {
  if (definition.suspended || crons.length === 0) return undefined;
  return nextLaunchTime(parsed(crons), parsed(definition.suspendCrons), now, definition.timeZone);
}

/** A time as the definition's zone shows it, e.g. `2024-05-01 09:00 JST`. */
function inZone(at: Date, zone: string): string {
  return DateTime.fromJSDate(at, { zone }).toFormat('yyyy-MM-dd HH:mm ZZZZ');
}

function starButton(user: ConsoleUser, row: DefinitionRow, back: string): Html {
  const label = row.starred ? `Unstar ${row.definition.name}` : `Star ${row.definition.name}`;
  return html`<form method="post" action="/definitions/${row.definition.id}/star" class="inline">${csrfField(user)}<input type="hidden" name="starred" value="${row.starred ? 'false' : 'true'}"><input type="hidden" name="back" value="${back}"><button type="submit" class="star link" aria-pressed="${row.starred ? 'true' : 'false'}" aria-label="${label}" title="${label}">${row.starred ? '★' : '☆'}</button></form>`;
}

function tagLinks(tags: readonly string[], selected: readonly string[] = []): Html {
  return html`<span class="tags">${tags.map((t) => {
    const on = selected.includes(t);
    const next = on ? selected.filter((s) => s !== t) : [...selected, t];
    const query = next.map((s) => `tag=${encodeURIComponent(s)}`).join('&');
    return html`<a class="tag" href="/definitions${query ? `?${query}` : ''}" aria-pressed="${on ? 'true' : 'false'}">${t}</a>`;
  })}</span>`;
}

function definitionTable(user: ConsoleUser, rows: readonly DefinitionRow[], now: Date, back: string, selectedTags: readonly string[] = []): Html {
  return table(
    ['', '#', 'Name', 'Next run', 'Latest', 'Tags', 'Admins'],
    rows.map((row) => {
      const d = row.definition;
      const next = nextRunOf(d, now);
      return html`<tr>
<td>${starButton(user, row, back)}</td>
<td class="num">${d.id}</td>
<td><a href="/definitions/${d.id}">${d.name}</a> ${d.suspended ? badge('suspended', 'SUSPENDED') : ''}<div class="note">${d.description.split('\n')[0] ?? ''}</div></td>
<td>${next ? timeTag(next) : html`<span class="muted">–</span>`}</td>
<td>${row.latest ? html`<a href="/definitions/${d.id}/instances/${row.latest.id}">${instanceBadge(row.latest)}</a>` : html`<span class="muted">never run</span>`}</td>
<td>${tagLinks(d.tags, selectedTags)}</td>
<td>${row.admins.join(', ')}</td>
</tr>`;
    }),
    'job definitions',
  );
}

function instancesWithNames(instances: readonly InstanceWithName[], now: Date, empty: string): Html {
  if (instances.length === 0) return emptyState(empty);
  return table(
    ['#', 'Status', 'Job', 'Started', 'Elapsed'],
    instances.map(
      (i) => html`<tr><td class="num"><a href="/definitions/${i.definitionId}/instances/${i.id}">${i.id}</a></td><td>${instanceBadge(i)}</td><td><a href="/definitions/${i.definitionId}">${i.definitionName}</a></td><td>${timeTag(i.createdAt)}</td><td>${instanceElapsed(i, now)}</td></tr>`,
    ),
  );
}

export interface DashboardData {
  starred: DefinitionRow[];
  working: InstanceWithName[];
  failures: InstanceWithName[];
  canceled: InstanceWithName[];
  now: Date;
}

/** The dashboard: starred definitions, working instances and recent failures. */
export function dashboardPage(ctx: PageContext & { user: ConsoleUser }, data: DashboardData): Html {
  const starred =
    data.starred.length === 0
      ? emptyState('You have not starred any definitions yet. Star the ones you care about (☆) to see them here.', html`<a class="btn" href="/definitions">Browse definitions</a>`)
      : definitionTable(ctx.user, data.starred, data.now, '/');
  return layout(
    ctx,
    'Dashboard',
    html`<h1>Dashboard</h1>
${section('Starred definitions', starred)}
<div class="grid2">
${section('Working instances', instancesWithNames(data.working, data.now, 'There are no working jobs.'), html`<a href="/instances/working">All working</a>`)}
${section('Recent failures', instancesWithNames(data.failures, data.now, 'No instance is stopped on an error. Good.'))}
</div>
${data.canceled.length > 0 ? section('Canceled in the last 24 hours', instancesWithNames(data.canceled, data.now, '')) : ''}`,
  );
}

export interface DefinitionListData {
  rows: DefinitionRow[];
  q: string;
  tags: string[];
  allTags: string[];
  total: number;
  now: Date;
  canCreate: boolean;
  backPath: string;
}

/** Every definition, searchable by name, script and tag, filterable by tags (all of them). */
export function definitionListPage(ctx: PageContext & { user: ConsoleUser }, data: DefinitionListData): Html {
  const filtered = data.q !== '' || data.tags.length > 0;
  let body: Html;
  if (data.rows.length > 0) body = definitionTable(ctx.user, data.rows, data.now, data.backPath, data.tags);
  else if (filtered) body = emptyState('No definition matches this search.', html`<a class="btn" href="/definitions">Clear the search</a>`);
  else body = emptyState('There are no job definitions yet.', data.canCreate ? html`<a class="btn primary" href="/definitions/new">Create the first one</a>` : html`<p>Ask an admin to create one.</p>`);
  return layout(
    ctx,
    'Definitions',
    html`<h1>Job definitions ${data.canCreate ? html`<a class="btn primary" href="/definitions/new">New definition</a>` : ''}</h1>
<form class="search" method="get" action="/definitions" role="search">
  <label class="sr-only" for="q">Search definitions</label>
  <input id="q" type="search" name="q" value="${data.q}" placeholder="Search name, script or tag">
  ${data.tags.map((t) => html`<input type="hidden" name="tag" value="${t}">`)}
  <button type="submit">Search</button>
</form>
${data.allTags.length > 0 ? html`<p>Tags: ${tagLinks(data.allTags, data.tags)}</p>` : ''}
<p class="muted">${data.rows.length} of ${data.total} definitions</p>
${body}`,
  );
}

export interface DefinitionPageData {
  definition: DefinitionRecord;
  admins: string[];
  starred: boolean;
  canAdminister: boolean;
  instances: Instance[];
  olderThan: number | undefined;
  stats: InstanceStat[];
  names: Map<number, string>;
  now: Date;
  launch?: { script: string; env: string; problems: readonly ScriptProblem[]; error?: string };
  /** The deployment's custom task types, shown with the command each line runs. */
  customTasks?: CustomTasks;
}

const KIB_PER_MIB = 1024;

/** A definition: details, script, schedules with their next runs, launch, instances and charts. */
export function definitionPage(ctx: PageContext & { user: ConsoleUser }, data: DefinitionPageData): Html {
  const d = data.definition;
  const user = ctx.user;
  const row: DefinitionRow = { definition: d, admins: data.admins, latest: undefined, starred: data.starred };
  const back = `/definitions/${d.id}`;
  const actions = data.canAdminister
    ? html`<div class="actions">
  <a class="btn" href="/definitions/${d.id}/edit">Edit</a>
  <a class="btn" href="/definitions/new?dup_from=${d.id}">Duplicate</a>
  ${actionButton(user, `/definitions/${d.id}/suspend`, d.suspended ? 'Resume scheduling' : 'Suspend scheduling', {
    fields: { suspended: d.suspended ? 'false' : 'true' },
    ...(d.suspended ? {} : { confirm: `Suspend every schedule of ${d.name}? Cron launches stop until you resume.` }),
  })}
  ${actionButton(user, `/definitions/${d.id}/delete`, 'Delete', { danger: true, confirm: `Delete the definition ${d.name}? Its instances stay as history. This cannot be undone.` })}
</div>`
    : html`<p class="muted">You can view this definition. Its admins (${data.admins.length > 0 ? data.admins.join(', ') : 'global admins only'}) can change and launch it.</p>`;

  const schedules =
    d.crons.length === 0
      ? emptyState('No cron schedule: this job runs only when launched. Add schedules on the edit page.')
      : table(
          ['Cron', `Next run (${d.timeZone})`, 'Next run (your time)'],
          d.crons.map((cron) => {
            const next = nextRunOf(d, data.now, [cron]);
            return html`<tr><td><code>${cron}</code></td><td>${next ? inZone(next, d.timeZone) : html`<span class="muted">${d.suspended ? 'suspended' : 'none'}</span>`}</td><td>${next ? timeTag(next) : ''}</td></tr>`;
          }),
        );
  const suspendSchedules =
    d.suspendCrons.length === 0
      ? html`<p class="muted">No suspend schedule.</p>`
      : html`<ul>${d.suspendCrons.map((c) => html`<li><code>${c}</code></li>`)}</ul>`;
  const next = nextRunOf(d, data.now);

  const instances =
    data.instances.length === 0
      ? emptyState(data.olderThan ? 'No older instances.' : 'This definition has never run.')
      : html`${table(
          ['#', 'Status', 'Launched by', 'Started', 'Elapsed'],
          data.instances.map(
            (i) =>
              html`<tr><td class="num"><a href="/definitions/${d.id}/instances/${i.id}">${i.id}</a></td><td>${instanceBadge(i)}</td><td>${i.launchedBy}</td><td>${timeTag(i.createdAt)}</td><td>${instanceElapsed(i, data.now)}</td></tr>`,
          ),
        )}
<p class="actions">${data.olderThan ? html`<a href="/definitions/${d.id}">Newest</a>` : ''}${data.instances.length > 0 ? html`<a href="/definitions/${d.id}?before=${data.instances.at(-1)?.id}">Older instances</a>` : ''}</p>`;

  const launch = data.canAdminister
    ? section(
        'Launch',
        html`<details${data.launch ? ' open' : ''}><summary>Launch now, optionally with a changed script or extra environment</summary>
<form method="post" action="/definitions/${d.id}/instances">
${csrfField(user)}
${data.launch?.error ? html`<p class="field-error" role="alert">${data.launch.error}</p>` : ''}
${scriptEditor('launch-script', 'script', 'Script for this run only', data.launch?.script ?? d.script, data.launch?.problems ?? [])}
<label for="launch-env">Environment <span class="hint">one KEY=value per line, added before the script</span></label>
<textarea id="launch-env" name="env" rows="3" class="code" spellcheck="false">${data.launch?.env ?? ''}</textarea>
<p><button type="submit" class="primary">Launch</button></p>
</form></details>`,
        undefined,
        'launch',
      )
    : '';

  const durations = data.stats.map((s) => ({ label: `#${s.instanceId}`, value: s.durationMs, href: `/definitions/${d.id}/instances/${s.instanceId}`, state: s.status }));
  const memory = data.stats
    .filter((s) => s.maxRssKb !== null)
    .map((s) => ({ label: `#${s.instanceId}`, value: (s.maxRssKb ?? 0) / KIB_PER_MIB, href: `/definitions/${d.id}/instances/${s.instanceId}`, state: s.status }));

  return layout(
    ctx,
    d.name,
    html`<h1>${starButton(user, row, back)} ${d.name} <span class="muted">#${d.id}</span> ${d.suspended ? badge('suspended', 'SUSPENDED') : ''}</h1>
${actions}
<div class="grid2">
${section(
  'Details',
  html`<dl class="meta">
<dt>Description</dt><dd>${d.description ? html`<div class="markdown">${renderMarkdown(d.description)}</div>` : html`<span class="muted">none</span>`}</dd>
<dt>Tags</dt><dd>${d.tags.length > 0 ? tagLinks(d.tags) : html`<span class="muted">none</span>`}</dd>
<dt>Admins</dt><dd>${data.admins.length > 0 ? data.admins.join(', ') : html`<span class="muted">global admins only</span>`}</dd>
<dt>Time zone</dt><dd>${d.timeZone}</dd>
<dt>Next run</dt><dd>${next ? html`${timeTag(next)}` : html`<span class="muted">${d.suspended ? 'scheduling suspended' : 'not scheduled'}</span>`}</dd>
<dt>Overlap</dt><dd>${PREVENT_MULTI_TEXT[d.preventMulti] ?? d.preventMulti}</dd>
<dt>API launches</dt><dd>${d.apiAllowed ? 'allowed' : 'not allowed'}</dd>
<dt>Notifications</dt><dd>${d.notifyAll ? 'every event' : 'failures'}${d.slackChannel ? `, Slack ${d.slackChannel}` : ''}${d.webhookUrl ? ', webhook' : ''}${d.notifyCancellation ? ', cancellations' : ''}</dd>
<dt>Catch-up</dt><dd>missed slots launch up to ${d.catchUpWindowMinutes} minutes late</dd>
<dt>Retention</dt><dd>${d.retentionDays === null || d.retentionDays === undefined ? 'the global policy' : d.retentionDays === 0 ? 'kept forever' : `finished and canceled instances kept ${d.retentionDays} days`}</dd>
<dt>Updated</dt><dd>${timeTag(d.updatedAt)} · <a href="/definitions/${d.id}/revisions">Script revisions</a></dd>
</dl>`,
)}
${section('Schedules', html`${schedules}<h3>Suspend schedules</h3>${suspendSchedules}`, undefined, 'schedules')}
</div>
${section('Script', renderScript(d.script, (id) => data.names.get(id), data.customTasks))}
${launch}
${section('Instances', instances, undefined, 'instances')}
<div class="grid2">
${section('Run time per instance', barChart(`Run time of the last ${durations.length} instances`, durations, (ms) => formatDuration(ms)))}
${section('Peak memory per instance', barChart(`Peak memory of the last ${memory.length} instances`, memory, (mib) => `${mib.toFixed(1)} MiB`))}
</div>`,
  );
}

/** Script revisions, newest first, each with its diff to the one before. */
export function revisionsPage(ctx: PageContext & { user: ConsoleUser }, definition: DefinitionRecord, revisions: readonly ScriptRevision[]): Html {
  const items = revisions.map((rev, i) => {
    const previous = revisions[i + 1];
    return html`<section class="panel"><div class="panel-head"><h2>${timeTag(rev.changedAt)}</h2><span class="muted">by ${rev.changedBy}</span></div>
${previous ? renderDiff(diffLines(previous.script, rev.script)) : html`<p class="muted">First revision</p>${renderDiff(diffLines('', rev.script))}`}</section>`;
  });
  return layout(
    ctx,
    `Revisions of ${definition.name}`,
    html`<h1>Script revisions of <a href="/definitions/${definition.id}">${definition.name}</a></h1>
${items.length > 0 ? items : emptyState('No revision was recorded.')}`,
  );
}
