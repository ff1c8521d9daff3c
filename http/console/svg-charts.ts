/**
 * Inline SVG charts: a bar chart (run time and memory per instance) and a timeline (executions per worker,
 * instances per job). Plain shapes with <title> tooltips and links; they scale with the page through viewBox.
 */
import { html, type Html } from './html';

export interface Bar {
  label: string;
  value: number;
  href: string;
  /** A status word, used as the bar's CSS class (success, error, working, canceled, failure, running). */
  state: string;
}

const CHART = { width: 640, height: 180, left: 56, bottom: 22, top: 10, right: 8 } as const;

/** A bar chart; `format` renders a value for the axis and the tooltips. */
export function barChart(title: string, bars: readonly Bar[], format: (value: number) => string): Html {
  if (bars.length === 0) return html`<p class="empty">Nothing to chart yet.</p>`;
  const max = Math.max(...bars.map((b) => b.value), 1);
  const plotWidth = CHART.width - CHART.left - CHART.right;
  const plotHeight = CHART.height - CHART.top - CHART.bottom;
  const step = plotWidth / bars.length;
  const barWidth = Math.max(1, step * 0.8);
  const rects = bars.map((bar, i) => {
    const h = (bar.value / max) * plotHeight;
    const x = CHART.left + i * step + (step - barWidth) / 2;
    const y = CHART.top + plotHeight - h;
    return html`<a href="${bar.href}"><rect class="bar s-${bar.state}" x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${barWidth.toFixed(1)}" height="${Math.max(h, 1).toFixed(1)}"><title>${bar.label}: ${format(bar.value)} (${bar.state})</title></rect></a>`;
  });
  const bottom = CHART.top + plotHeight;
  return html`<svg class="chart" viewBox="0 0 ${CHART.width} ${CHART.height}" role="img" aria-label="${title}">
<title>${title}</title>
<line class="axis" x1="${CHART.left}" y1="${bottom}" x2="${CHART.width - CHART.right}" y2="${bottom}"></line>
<line class="axis" x1="${CHART.left}" y1="${CHART.top}" x2="${CHART.left}" y2="${bottom}"></line>
<text class="tick" x="${CHART.left - 4}" y="${CHART.top + 8}" text-anchor="end">${format(max)}</text>
<text class="tick" x="${CHART.left - 4}" y="${bottom}" text-anchor="end">0</text>
<text class="tick" x="${CHART.left}" y="${CHART.height - 6}">${bars[0]?.label ?? ''}</text>
<text class="tick" x="${CHART.width - CHART.right}" y="${CHART.height - 6}" text-anchor="end">${bars.at(-1)?.label ?? ''}</text>
${rects}
</svg>`;
}

export interface TimelineItem {
  group: string;
  groupLabel: string;
  groupHref?: string;
  label: string;
  start: Date;
  /** Null while it runs: drawn to the end of the window. */
  end: Date | null;
  href: string;
  state: string;
}

const ROW_HEIGHT = 22;
const LABEL_WIDTH = 170;
const TIMELINE_WIDTH = 900;
const TICKS = 6;
const AXIS_HEIGHT = 20;

/**
 * A Gantt-like timeline of items in [from, to], one row per group. Axis labels are UTC `HH:MM` (with the date when
 * `withDate`), rewritten to the viewer's zone by the client script.
 */
export function timeline(title: string, items: readonly TimelineItem[], from: Date, to: Date, withDate: boolean): Html {
  if (items.length === 0) return html`<p class="empty">Nothing ran in this period.</p>`;
  const groups = [...new Map(items.map((i) => [i.group, i])).values()];
  const rowOf = new Map(groups.map((g, i) => [g.group, i]));
  const span = Math.max(1, to.getTime() - from.getTime());
  const plot = TIMELINE_WIDTH - LABEL_WIDTH;
  const xOf = (at: number) => LABEL_WIDTH + (Math.min(Math.max(at, from.getTime()), to.getTime()) - from.getTime()) / span * plot;
  const height = AXIS_HEIGHT + groups.length * ROW_HEIGHT + 4;
  const ticks = Array.from({ length: TICKS + 1 }, (_, i) => new Date(from.getTime() + (span * i) / TICKS));
  return html`<svg class="timeline" viewBox="0 0 ${TIMELINE_WIDTH} ${height}" role="img" aria-label="${title}">
<title>${title}</title>
${ticks.map((t, i) => {
  const x = LABEL_WIDTH + (plot * i) / TICKS;
  const anchor = i === 0 ? 'start' : i === TICKS ? 'end' : 'middle';
  return html`<line class="grid" x1="${x.toFixed(1)}" y1="${AXIS_HEIGHT - 4}" x2="${x.toFixed(1)}" y2="${height}"></line><text class="tick" x="${x.toFixed(1)}" y="12" text-anchor="${anchor}" data-local-hm="${t.toISOString()}"${withDate ? ' data-with-date' : ''}>${withDate ? t.toISOString().slice(5, 16).replace('T', ' ') : t.toISOString().slice(11, 16)}</text>`;
})}
${groups.map((g, i) => {
  const y = AXIS_HEIGHT + i * ROW_HEIGHT;
  const label = g.groupLabel.length > 24 ? `${g.groupLabel.slice(0, 23)}…` : g.groupLabel;
  const text = html`<text class="row-label" x="4" y="${y + 15}"><title>${g.groupLabel}</title>${label}</text>`;
  return html`<rect class="row s-row-${i % 2}" x="0" y="${y}" width="${TIMELINE_WIDTH}" height="${ROW_HEIGHT}"></rect>${g.groupHref ? html`<a href="${g.groupHref}">${text}</a>` : text}`;
})}
${items.map((item) => {
  const row = rowOf.get(item.group) ?? 0;
  const x1 = xOf(item.start.getTime());
  const x2 = xOf(item.end?.getTime() ?? to.getTime());
  const y = AXIS_HEIGHT + row * ROW_HEIGHT + 4;
  return html`<a href="${item.href}"><rect class="bar s-${item.state}" x="${x1.toFixed(1)}" y="${y}" width="${Math.max(2, x2 - x1).toFixed(1)}" height="${ROW_HEIGHT - 8}"><title>${item.label} (${item.state}) ${item.start.toISOString()} – ${item.end ? item.end.toISOString() : 'running'}</title></rect></a>`;
})}
</svg>`;
}
