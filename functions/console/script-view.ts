/**
 * Script rendering for the console: numbered lines with `wait:` and `sub_process:` ids linked to their
 * definitions, and a line diff between two script revisions.
 */
import { html, type Html } from './html-template';

const LINKED_TASK = /^(\s*)(wait|sub_process|subprocess)(:\s*)(.*)$/;
const WAIT_ITEM = /(\d+)(\s*\/\s*(?:hourly|daily|weekly|monthly))/g;

/** One script line with the definition ids of `wait:` and `sub_process:` as links (named when known). */
function renderLine(line: string, nameOf: (id: number) => string | undefined): Html {
  const match = LINKED_TASK.exec(line);
  if (!match) return html`${line}`;
  const [, indent = '', task = '', colon = '', option = ''] = match;
  const link = (id: string) => {
    const name = nameOf(Number(id));
    return html`<a href="/definitions/${id}" title="${name ?? 'unknown definition'}">${id}</a>${name ? html`<span class="note"> (${name})</span>` : ''}`;
  };
  if (task === 'wait') {
    const parts: (Html | string)[] = [];
    let last = 0;
    for (const item of option.matchAll(WAIT_ITEM)) {
      parts.push(option.slice(last, item.index));
      parts.push(html`${link(item[1] ?? '')}${item[2] ?? ''}`);
      last = (item.index ?? 0) + item[0].length;
    }
    parts.push(option.slice(last));
    return html`${indent}<span class="task">${task}</span>${colon}${parts}`;
  }
  const id = /^\s*(\d+)(.*)$/.exec(option);
  if (!id) return html`${indent}<span class="task">${task}</span>${colon}${option}`;
  return html`${indent}<span class="task">${task}</span>${colon}${link(id[1] ?? '')}${id[2] ?? ''}`;
}

/** The script as a numbered code block; `problems` marks lines with errors. */
export function renderScript(script: string, nameOf: (id: number) => string | undefined): Html {
  const lines = script.replace(/\n$/, '').split('\n');
  return html`<pre class="script" aria-label="script"><code>${lines.map(
    (line, i) => html`<span class="line"><span class="ln" aria-hidden="true">${i + 1}</span>${renderLine(line, nameOf)}</span>\n`,
  )}</code></pre>`;
}

/** The definition ids a script refers to through `wait:` and `sub_process:`. */
export function referencedIds(script: string): number[] {
  const ids = new Set<number>();
  for (const line of script.split('\n')) {
    const match = LINKED_TASK.exec(line);
    if (!match) continue;
    const option = match[4] ?? '';
    if (match[2] === 'wait') for (const item of option.matchAll(WAIT_ITEM)) ids.add(Number(item[1]));
    else {
      const id = /^\s*(\d+)/.exec(option)?.[1];
      if (id) ids.add(Number(id));
    }
  }
  return [...ids].filter((id) => Number.isSafeInteger(id));
}

export const DIFF_OP = { same: 'same', added: 'added', removed: 'removed' } as const;
export type DiffOp = (typeof DIFF_OP)[keyof typeof DIFF_OP];

export interface DiffLine {
  op: DiffOp;
  text: string;
}

/** Scripts longer than this are compared line by line without alignment (the table would be too large). */
const MAX_DIFF_CELLS = 4_000_000;

/** A line diff (longest common subsequence) from `before` to `after`. */
export function diffLines(before: string, after: string): DiffLine[] {
  const a = before.replace(/\n$/, '').split('\n');
  const b = after.replace(/\n$/, '').split('\n');
  if (before === '') a.length = 0;
  if (a.length * b.length > MAX_DIFF_CELLS) {
    return [...a.map((text) => ({ op: DIFF_OP.removed, text })), ...b.map((text) => ({ op: DIFF_OP.added, text }))];
  }
  const width = b.length + 1;
  const lcs = new Uint32Array((a.length + 1) * width);
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i * width + j] = a[i] === b[j] ? (lcs[(i + 1) * width + j + 1] ?? 0) + 1 : Math.max(lcs[(i + 1) * width + j] ?? 0, lcs[i * width + j + 1] ?? 0);
    }
  }
  const out: DiffLine[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      out.push({ op: DIFF_OP.same, text: a[i] ?? '' });
      i++;
      j++;
    } else if ((lcs[(i + 1) * width + j] ?? 0) >= (lcs[i * width + j + 1] ?? 0)) {
      out.push({ op: DIFF_OP.removed, text: a[i++] ?? '' });
    } else {
      out.push({ op: DIFF_OP.added, text: b[j++] ?? '' });
    }
  }
  while (i < a.length) out.push({ op: DIFF_OP.removed, text: a[i++] ?? '' });
  while (j < b.length) out.push({ op: DIFF_OP.added, text: b[j++] ?? '' });
  return out;
}

/** A diff as a code block with +/- markers. */
export function renderDiff(lines: readonly DiffLine[]): Html {
  const sign = { same: ' ', added: '+', removed: '-' } as const;
  return html`<pre class="diff"><code>${lines.map((l) => html`<span class="d-${l.op}">${sign[l.op]} ${l.text}</span>\n`)}</code></pre>`;
}
