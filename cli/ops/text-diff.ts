/** A unified diff of two texts by lines (longest common subsequence), for `kuroko definitions apply`. */

type Edit = { kind: ' ' | '-' | '+'; text: string; oldLine: number; newLine: number };

const CONTEXT_LINES = 3;

function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  // A final newline ends the last line rather than starting an empty one; its absence is shown like diff does.
  if (lines.at(-1) === '') lines.pop();
  else lines[lines.length - 1] += '\n\\ No newline at end of file';
  return lines;
}

function edits(a: string[], b: string[]): Edit[] {
  // Common head and tail first, so the table covers only the changed middle.
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const am = a.slice(head, a.length - tail);
  const bm = b.slice(head, b.length - tail);
  const n = am.length;
  const m = bm.length;
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i]![j] = am[i] === bm[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
  }
  const out: Edit[] = [];
  for (let k = 0; k < head; k++) out.push({ kind: ' ', text: a[k]!, oldLine: k + 1, newLine: k + 1 });
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && am[i] === bm[j]) {
      out.push({ kind: ' ', text: am[i]!, oldLine: head + i + 1, newLine: head + j + 1 });
      i++;
      j++;
    } else if (i < n && (j === m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
      out.push({ kind: '-', text: am[i]!, oldLine: head + i + 1, newLine: head + j });
      i++;
    } else {
      out.push({ kind: '+', text: bm[j]!, oldLine: head + i, newLine: head + j + 1 });
      j++;
    }
  }
  for (let k = 0; k < tail; k++) {
    const oi = a.length - tail + k;
    const ni = b.length - tail + k;
    out.push({ kind: ' ', text: a[oi]!, oldLine: oi + 1, newLine: ni + 1 });
  }
  return out;
}

/** The hunks (`@@ -a,b +c,d @@` and ` `, `-`, `+` lines) turning `before` into `after`; empty when equal. */
export function unifiedDiff(before: string, after: string): string[] {
  if (before === after) return [];
  const all = edits(splitLines(before), splitLines(after));
  const changed = all.map((e, k) => (e.kind !== ' ' ? k : -1)).filter((k) => k >= 0);
  const out: string[] = [];
  let k = 0;
  while (k < changed.length) {
    const start = Math.max(0, changed[k]! - CONTEXT_LINES);
    let end = Math.min(all.length - 1, changed[k]! + CONTEXT_LINES);
    while (k + 1 < changed.length && changed[k + 1]! - CONTEXT_LINES <= end + 1) {
      k++;
      end = Math.min(all.length - 1, changed[k]! + CONTEXT_LINES);
    }
    k++;
    const hunk = all.slice(start, end + 1);
    const oldCount = hunk.filter((e) => e.kind !== '+').length;
    const newCount = hunk.filter((e) => e.kind !== '-').length;
    const first = hunk[0]!;
    const oldStart = oldCount === 0 ? first.oldLine : first.kind === '+' ? first.oldLine + 1 : first.oldLine;
    const newStart = newCount === 0 ? first.newLine : first.kind === '-' ? first.newLine + 1 : first.newLine;
    out.push(`@@ -${oldStart},${oldCount} +${newStart},${newCount} @@`);
    for (const e of hunk) out.push(`${e.kind}${e.text}`);
  }
  return out;
}
