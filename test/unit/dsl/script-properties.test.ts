import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ScriptProblem } from '../../../core/errors';
import type { ScriptNode } from '../../../core/dsl/script-node';
import { findNode, listNodes, nextNode, parseScript, serializeNode } from '../../../core/dsl/script-parser';
import { TASK_TYPES, validateScript } from '../../../core/dsl/script-validator';

const RUNS = 2000;

/** A node without its location: what serialisation must preserve. */
interface PlainNode {
  type: string;
  option: string | null;
  children: PlainNode[];
}

function project(node: ScriptNode): PlainNode {
  return { type: node.type, option: node.option, children: node.children.map(project) };
}

/** Builds a ScriptNode tree from plain nodes (only what serializeNode reads needs to be right). */
function build(plain: PlainNode, parent: ScriptNode | undefined, index: number): ScriptNode {
  const path = parent === undefined ? '' : `${parent.path}/${index}-${plain.type}`;
  const node: { -readonly [K in keyof ScriptNode]: ScriptNode[K] } = {
    type: plain.type,
    option: plain.option,
    line: 0,
    column: 0,
    path,
    index,
    parent,
    children: [],
  };
  node.children = plain.children.map((child, i) => build(child, node, i));
  return node;
}

/** Characters that stress the lexer: blanks, quotes, escapes, comment marks, separators, non-ASCII. */
const trickyChar = fc.constantFrom(' ', ' ', '\t', '#', '#', "'", '"', '\\', ':', '=', '/', ',', '-', '@', '\r', '\v', '\u00A0', '\uFEFF', '\u2028', 'é', '😀', 'ノ');
const wordChar = fc.constantFrom(...'abcxyz_019ABZ');
const anyChar = fc.oneof(
  { weight: 3, arbitrary: trickyChar },
  { weight: 3, arbitrary: wordChar },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
);

/** Raw text after `type:`, turned into an option exactly as the parser reads it (so it is a producible option). */
const optionArb: fc.Arbitrary<string | null> = fc.oneof(
  fc.constant(null),
  fc.constant(''),
  fc.string({ unit: anyChar, maxLength: 30 }).map((raw) => {
    const result = parseScript(`noop: ${raw.replaceAll('\n', ' ')}`);
    if (!result.ok) throw new Error(`a single node line must parse: ${JSON.stringify(raw)}`);
    return result.root.children[0]?.option ?? null;
  }),
);

const treeArb = fc.letrec<{ node: PlainNode }>((tie) => ({
  node: fc.record({
    type: fc.constantFrom(...TASK_TYPES),
    option: optionArb,
    children: fc.oneof({ depthSize: 'small' }, fc.constant<PlainNode[]>([]), fc.array(tie('node'), { maxLength: 4 })),
  }),
})).node;

const rootArb = fc.array(treeArb, { maxLength: 5 }).map((children): PlainNode => ({ type: 'root', option: null, children }));

const VALID_SCRIPTS = [
  'env: A=1 B="x y" # env\nfork:\n  execute: echo a#b\n  sequence:\n    noop:\n    execute: echo \'# not a comment\'\n',
  'retry: count=2 sleep_time=1\n  execute: flaky\nwait: 1/daily, 2/hourly timeout=2h\nparallel_fork: 2\n  echo: hi\n',
  '# header\nqueue: @batch\ntimeout: 30m\n\tsub_process: 3\n\t\tsubprocess: 4\nnoop: # empty\n',
];

type Mutation = (text: string) => string;

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.tuple(fc.nat(), fc.string({ unit: anyChar, minLength: 1, maxLength: 4 })).map(([at, insert]) => (text: string) => {
    const i = at % (text.length + 1);
    return text.slice(0, i) + insert + text.slice(i);
  }),
  fc.tuple(fc.nat(), fc.integer({ min: 1, max: 6 })).map(([at, length]) => (text: string) => {
    const i = at % (text.length + 1);
    return text.slice(0, i) + text.slice(i + length);
  }),
  fc.tuple(fc.nat(), fc.constantFrom('', ' ', '  ', '   ', '\t', ' \t', '      ')).map(([at, indent]) => (text: string) => {
    const lines = text.split('\n');
    const i = at % lines.length;
    lines[i] = indent + (lines[i] ?? '').trimStart();
    return lines.join('\n');
  }),
  fc.tuple(fc.nat(), fc.constantFrom('#', ' #', '"', "'", '\\', ':', '\r\n', '\n', '\uFEFF')).map(([at, insert]) => (text: string) => {
    const i = at % (text.length + 1);
    return text.slice(0, i) + insert + text.slice(i);
  }),
  fc.nat().map((at) => (text: string) => {
    const lines = text.split('\n');
    const i = at % lines.length;
    lines.splice(i, 0, lines[i] ?? '');
    return lines.join('\n');
  }),
);

const mutatedScriptArb = fc
  .tuple(fc.constantFrom(...VALID_SCRIPTS), fc.array(mutationArb, { minLength: 1, maxLength: 6 }))
  .map(([script, mutations]) => mutations.reduce((text, mutate) => mutate(text), script));

const randomTextArb = fc.oneof(
  fc.string({ unit: anyChar, maxLength: 200 }),
  fc.array(fc.string({ unit: anyChar, maxLength: 30 }), { maxLength: 12 }).map((lines) => lines.join('\n')),
  fc.string({ unit: 'binary', maxLength: 100 }),
);

const inputArb = fc.oneof(mutatedScriptArb, randomTextArb);

function sourceLines(text: string): string[] {
  return text
    .replace(/^\uFEFF/, '')
    .split('\n')
    .map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
}

function expectLocated(problems: readonly ScriptProblem[], text: string): void {
  const lines = sourceLines(text);
  for (const problem of problems) {
    expect(Number.isInteger(problem.line) && Number.isInteger(problem.column)).toBe(true);
    expect(problem.line).toBeGreaterThanOrEqual(1);
    expect(problem.line).toBeLessThanOrEqual(lines.length);
    expect(problem.column).toBeGreaterThanOrEqual(1);
    expect(problem.column).toBeLessThanOrEqual((lines[problem.line - 1] ?? '').length + 1);
    expect(typeof problem.message).toBe('string');
    expect(problem.message.length).toBeGreaterThan(0);
  }
}

describe('serialisation round trip (property)', () => {
  it('parse(serialize(tree)) gives back the same tree', () => {
    fc.assert(
      fc.property(rootArb, (plain) => {
        const text = serializeNode(build(plain, undefined, 0));
        const result = parseScript(text);
        expect(result.ok).toBe(true);
        if (!result.ok) return;
        expect(project(result.root)).toEqual(plain);
      }),
      { numRuns: RUNS },
    );
  });

  it('parsed trees have consistent paths, findable nodes and a full pre-order walk', () => {
    fc.assert(
      fc.property(rootArb, (plain) => {
        const result = parseScript(serializeNode(build(plain, undefined, 0)));
        if (!result.ok) throw new Error('round trip failed');
        const all = listNodes(result.root);
        for (const node of all) {
          if (node.parent !== undefined) expect(node.path).toBe(`${node.parent.path}/${node.index}-${node.type}`);
          expect(findNode(result.root, node.path)).toBe(node);
        }
        const walked: ScriptNode[] = [];
        for (let node = nextNode(result.root); node !== undefined; node = nextNode(node)) walked.push(node);
        expect(walked).toEqual(all.slice(1));
      }),
      { numRuns: RUNS },
    );
  });
});

describe('robustness on arbitrary and mutated input (property)', () => {
  it('parseScript returns a tree or located problems, and never throws', () => {
    fc.assert(
      fc.property(inputArb, (text) => {
        const result = parseScript(text);
        if (result.ok) {
          // Whatever parsed must survive a round trip unchanged.
          const again = parseScript(serializeNode(result.root));
          expect(again.ok).toBe(true);
          if (again.ok) expect(project(again.root)).toEqual(project(result.root));
        } else {
          expect(result.problems.length).toBeGreaterThan(0);
          expectLocated(result.problems, text);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('validateScript returns sorted located problems, never throws, and passes only parseable scripts', () => {
    const context = { knownQueues: new Set(['batch']), definitionExists: (id: number) => id % 2 === 1 };
    fc.assert(
      fc.property(inputArb, fc.boolean(), (text, withContext) => {
        const problems = validateScript(text, withContext ? context : undefined);
        expectLocated(problems, text);
        const order = problems.map((p) => [p.line, p.column] as const);
        const sorted = [...order].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
        expect(order).toEqual(sorted);
        if (problems.length === 0) expect(parseScript(text).ok).toBe(true);
        if (!parseScript(text).ok) expect(problems.length).toBeGreaterThan(0);
      }),
      { numRuns: RUNS },
    );
  });
});
