/**
 * Script rendering for the console: numbered lines with `wait:` and `sub_process:` ids linked to their
 * definitions, the command each custom task line runs, and a line diff between two script revisions.
 */
import type { CustomTasks } from '../../core/dsl/custom-tasks';
import { customTaskShell } from '../../core/dsl/custom-tasks';
import { listNodes, parseScript } from '../../core/dsl/script-parser';
import { parseSubProcessOption, parseWaitOption } from '../../core/dsl/task-options';
import { html, type Html } from './html';

/** A `wait:` or `sub_process:` line: where its task type starts, and where each definition id is written. */
interface LinkedTask {
  type: string;
  /** 0-based column of the type. */
  column: number;
  ids: { column: number; digits: string }[];
  /** For a custom task: the command the line runs. */
  command?: string;
}

const LINKED_TYPES: ReadonlySet<string> = new Set(['wait', 'sub_process', 'subprocess']);
const BYTE_ORDER_MARK = '\uFEFF';

/** Offsets in a `wait:` or `sub_process:` option where a definition id starts; none when the option does not read. */
function idOffsets(type: string, option: string): number[] {
  if (type !== 'wait') return parseSubProcessOption(option).ok ? [0] : [];
  const wait = parseWaitOption(option);
  return wait.ok ? wait.value.jobs.map((job) => job.offset) : [];
}

/** The script's `wait:` and `sub_process:` lines by line number, as the DSL parser reads them; none when it does not parse. */
function linkedTasks(script: string, customTasks?: CustomTasks): Map<number, LinkedTask> {
  const tasks = new Map<number, LinkedTask>();
  const parsed = parseScript(script, customTasks ? new Set(customTasks.keys()) : undefined);
  if (!parsed.ok) return tasks;
  for (const node of listNodes(parsed.root)) {
    // To 0-based columns in the line; on the first line the parser did not count a byte order mark the text holds.
    const shift = node.line === 1 && script.startsWith(BYTE_ORDER_MARK) ? 0 : -1;
    const custom = customTasks?.get(node.type);
    if (custom) {
      tasks.set(node.line, { type: node.type, column: node.column + shift, ids: [], command: customTaskShell(custom, node.option ?? '') });
      continue;
    }
    if (!LINKED_TYPES.has(node.type)) continue;
    const optionColumn = (node.optionColumn ?? 0) + shift;
    const option = node.option ?? '';
    const ids = idOffsets(node.type, option).map((offset) => ({ column: optionColumn + offset, digits: /^\d+/.exec(option.slice(offset))?.[0] ?? '' }));
    tasks.set(node.line, { type: node.type, column: node.column + shift, ids });
  }
  return tasks;
}

/** One script line with the definition ids of its `wait:` or `sub_process:` as links (named when known). */
function renderLine(line: string, task: LinkedTask | undefined, nameOf: (id: number) => string | undefined): Html {
  if (!task) return html`${line}`;
  if (task.command !== undefined) {
    return html`${line.slice(0, task.column)}<span class="task" title="custom task">${task.type}</span>${line.slice(task.column + task.type.length)}<span class="note"> (custom task, runs: ${task.command})</span>`;
  }
  const parts: (Html | string)[] = [line.slice(0, task.column), html`<span class="task">${task.type}</span>`];
  let at = task.column + task.type.length;
  for (const { column, digits } of task.ids) {
    const name = nameOf(Number(digits));
    parts.push(line.slice(at, column), html`<a href="/definitions/${digits}" title="${name ?? 'unknown definition'}">${digits}</a>${name ? html`<span class="note"> (${name})</span>` : ''}`);
    at = column + digits.length;
  }
  parts.push(line.slice(at));
  return html`${parts}`;
}

/** The script as a numbered code block; a script that does not parse is shown as plain text. */
export function renderScript(script: string, nameOf: (id: number) => string | undefined, customTasks?: CustomTasks): Html {
  const tasks = linkedTasks(script, customTasks);
  const lines = script.replace(/\n$/, '').split('\n');
  return html`<pre class="script" aria-label="script"><code>${lines.map(
    (line, i) => html`<span class="line"><span class="ln" aria-hidden="true">${i + 1}</span>${renderLine(line, tasks.get(i + 1), nameOf)}</span>\n`,
  )}</code></pre>`;
}

/** The definition ids a script refers to through `wait:` and `sub_process:`. */
export function referencedIds(script: string): number[] {
  return [...new Set([...linkedTasks(script).values()].flatMap((task) => task.ids.map((id) => Number(id.digits))))];
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
