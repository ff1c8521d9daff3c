/**
 * The page frame and the small pieces every console page uses: times in the viewer's zone (UTC on hover), status
 * badges, CSRF-carrying action buttons with confirmations, empty states and durations.
 */
import { instanceStatus, type Instance } from '../../core/model';
import type { ConsoleUser } from './console-access';
import type { Flash } from './console-session';
import { ASSET_PATHS } from './console-assets';
import { html, type Html, type HtmlValue } from './html';

export interface PageContext {
  user: ConsoleUser | undefined;
  flash?: Flash | undefined;
  /** The request path, to mark the current section in the navigation. */
  path: string;
}

const NAV = [
  { href: '/', label: 'Dashboard', match: (p: string) => p === '/' },
  { href: '/definitions', label: 'Definitions', match: (p: string) => p.startsWith('/definitions') },
  { href: '/instances/working', label: 'Working', match: (p: string) => p.startsWith('/instances') },
  { href: '/executions', label: 'Executions', match: (p: string) => p.startsWith('/executions') },
  { href: '/workers', label: 'Workers', match: (p: string) => p.startsWith('/workers') },
  { href: '/timeline', label: 'Timeline', match: (p: string) => p.startsWith('/timeline') },
] as const;

/** The whole page: header with navigation and the signed-in person, a flash message, and the content. */
export function layout(ctx: PageContext, title: string, content: Html): Html {
  const user = ctx.user;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
${user ? html`<meta name="csrf-token" content="${user.csrf}">` : ''}
<title>${title} · Kuroko</title>
<link rel="stylesheet" href="${ASSET_PATHS.css}">
<script src="${ASSET_PATHS.js}" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <a class="brand" href="/">Kuroko</a>
  ${user
    ? html`<nav aria-label="Main">${NAV.map((n) => html`<a href="${n.href}"${n.match(ctx.path) ? html` aria-current="page"` : ''}>${n.label}</a>`)}</nav>
  <div class="who"><button type="button" class="link" data-notify-toggle aria-pressed="false" title="Desktop notifications when a job you are watching changes status" hidden>Notify me</button>
    <span title="${user.email}">${user.name}</span> <span class="role">${user.globalAdmin ? 'admin' : 'viewer'}</span>
    <form method="post" action="/sign_out" class="inline">${csrfField(user)}<button type="submit" class="link">Sign out</button></form></div>`
    : ''}
</header>
<main id="main" tabindex="-1">
${ctx.flash ? html`<p class="flash flash-${ctx.flash.kind}" role="${ctx.flash.kind === 'error' ? 'alert' : 'status'}">${ctx.flash.text}</p>` : ''}
${content}
</main>
</body>
</html>`;
}

/** The hidden CSRF field every console form carries. */
export function csrfField(user: ConsoleUser): Html {
  return html`<input type="hidden" name="_csrf" value="${user.csrf}">`;
}

export interface ActionOptions {
  /** Asked before the form is sent (destructive actions). */
  confirm?: string;
  danger?: boolean;
  fields?: Record<string, string>;
  disabled?: boolean;
  /** Accessible name when the label alone is ambiguous in a table row. */
  ariaLabel?: string;
  className?: string;
}

/** A one-button form posting to `action`. */
export function actionButton(user: ConsoleUser, action: string, label: string, options: ActionOptions = {}): Html {
  return html`<form method="post" action="${action}" class="inline"${options.confirm ? html` data-confirm="${options.confirm}"` : ''}>${csrfField(user)}${Object.entries(
    options.fields ?? {},
  ).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}<button type="submit" class="btn${options.danger ? ' danger' : ''}${options.className ? ` ${options.className}` : ''}"${options.disabled ? ' disabled' : ''}${options.ariaLabel ? html` aria-label="${options.ariaLabel}"` : ''}>${label}</button></form>`;
}

/** `2024-05-01 12:34:56 UTC` */
export function utcText(at: Date): string {
  return `${at.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** A time the client script shows in the viewer's zone; UTC in the tooltip (and as the text without script). */
export function timeTag(at: Date | null | undefined): Html {
  if (!at) return html`<span class="muted">–</span>`;
  return html`<time datetime="${at.toISOString()}" title="${utcText(at)}" data-local>${utcText(at)}</time>`;
}

const MS = { second: 1000, minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;

/** Kuroko2's elapsed format: `[Nd ]HH:MM:SS`. */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.floor(ms / MS.second));
  const days = Math.floor(total / (MS.day / MS.second));
  const rest = total % (MS.day / MS.second);
  const pad = (n: number) => String(n).padStart(2, '0');
  const clock = `${pad(Math.floor(rest / 3600))}:${pad(Math.floor((rest % 3600) / 60))}:${pad(rest % 60)}`;
  return days > 0 ? `${days}d ${clock}` : clock;
}

/** A status word as a coloured badge. */
export function badge(status: string, text: string = status): Html {
  return html`<span class="badge s-${status}">${text}</span>`;
}

/** The badge of an instance's status. */
export function instanceBadge(instance: Pick<Instance, 'finishedAt' | 'canceledAt' | 'errorAt'>): Html {
  return badge(instanceStatus(instance));
}

/** Elapsed time of an instance, up to now while it works. */
export function instanceElapsed(instance: Instance, now: Date): string {
  const end = instance.finishedAt ?? instance.canceledAt ?? instance.errorAt ?? now;
  return formatDuration(end.getTime() - instance.createdAt.getTime());
}

/** A friendly message where a list has nothing to show, with an optional next step. */
export function emptyState(text: string, next?: Html): Html {
  return html`<div class="empty"><p>${text}</p>${next ?? ''}</div>`;
}

/** A section with a heading. */
export function section(title: HtmlValue, body: HtmlValue, extra?: Html, id?: string): Html {
  return html`<section class="panel"${id ? html` id="${id}"` : ''}><div class="panel-head"><h2>${title}</h2>${extra ?? ''}</div>${body}</section>`;
}

/** A table that scrolls sideways on a narrow screen instead of squeezing. */
export function table(head: readonly string[], rows: readonly Html[], caption?: string): Html {
  return html`<div class="table-wrap"><table>${caption ? html`<caption class="sr-only">${caption}</caption>` : ''}<thead><tr>${head.map((h) => html`<th scope="col">${h}</th>`)}</tr></thead><tbody>${rows}</tbody></table></div>`;
}
