import { describe, expect, it } from 'vitest';
import type { ScriptNode } from '../../../core/dsl/script-node';
import {
  findNode,
  listNodes,
  nextNode,
  nextSiblingNode,
  parseScript,
  parseScriptRecovering,
  serializeNode,
  stripComment,
  MAX_NESTING_DEPTH,
} from '../../../core/dsl/script-parser';

function parsed(text: string): ScriptNode {
  const result = parseScript(text);
  if (!result.ok) throw new Error(`expected a valid script, got ${JSON.stringify(result.problems)}`);
  return result.root;
}

function problemsOf(text: string) {
  const result = parseScript(text);
  if (result.ok) throw new Error('expected problems');
  return result.problems;
}

/** The tree as nested [type, option, children] for compact expectations. */
type Shape = [string, string | null, ...Shape[]];
function shape(node: ScriptNode): Shape[] {
  return node.children.map((child) => [child.type, child.option, ...shape(child)] as Shape);
}

function only(root: ScriptNode): ScriptNode {
  expect(root.children).toHaveLength(1);
  return root.children[0] as ScriptNode;
}

describe('parseScript: lines', () => {
  it('gives a root with type root, null option, empty path and line/column 0', () => {
    const root = parsed('noop:\n');
    expect(root).toMatchObject({ type: 'root', option: null, path: '', line: 0, column: 0, parent: undefined });
  });

  it('accepts an empty script as a root with no children', () => {
    expect(parsed('').children).toEqual([]);
    expect(parsed('\n  \n\t\n').children).toEqual([]);
  });

  it('reads type and option, trimmed, with or without a space after the colon', () => {
    expect(shape(parsed('execute: echo hi  \nexecute:echo there\nenv:\tA=1\n'))).toEqual([
      ['execute', 'echo hi'],
      ['execute', 'echo there'],
      ['env', 'A=1'],
    ]);
  });

  it('distinguishes no option (null) from an empty option after a comment ("")', () => {
    expect(shape(parsed('noop:\nnoop:   \nnoop: # c\nnoop:# c\n'))).toEqual([
      ['noop', null],
      ['noop', null],
      ['noop', ''],
      ['noop', ''],
    ]);
  });

  it('records line, column and option column (1-based)', () => {
    const root = parsed('\n\n  fork:\n    execute:   ls -l\n');
    const fork = only(root);
    expect(fork).toMatchObject({ line: 3, column: 3, optionColumn: 8 });
    expect(fork.children[0]).toMatchObject({ line: 4, column: 5, optionColumn: 16, option: 'ls -l' });
  });

  it('accepts \\r\\n line endings and a leading byte order mark', () => {
    expect(shape(parsed('\uFEFFfork:\r\n  noop: a\r\n  noop:\r\n'))).toEqual([['fork', null, ['noop', 'a'], ['noop', null]]]);
  });

  it('keeps the type exactly as written, so sub_process and subprocess stay distinct', () => {
    const root = parsed('sub_process: 1\nsubprocess: 2\n');
    expect(root.children.map((n) => n.path)).toEqual(['/0-sub_process', '/1-subprocess']);
  });

  it('accepts every known task type, including Kuroko2 root: as a sequence alias', () => {
    const root = parsed('root:\n  noop:\nsequence:\n  echo: hi\n');
    expect(root.children.map((n) => n.path)).toEqual(['/0-root', '/1-sequence']);
  });
});

describe('parseScript: comments (D1)', () => {
  it('skips comment lines at column 1 and indented comment lines', () => {
    expect(shape(parsed('# top\nfork:\n  # inside\n  noop:\n    # deeper than anything\n  noop:\n'))).toEqual([
      ['fork', null, ['noop', null], ['noop', null]],
    ]);
  });

  it('cuts a comment after a blank, outside quotes', () => {
    expect(shape(parsed('execute: echo hi # say hi\nexecute: echo hi\t#tab\n'))).toEqual([
      ['execute', 'echo hi'],
      ['execute', 'echo hi'],
    ]);
  });

  it('keeps a # that does not follow a blank', () => {
    expect(only(parsed('execute: echo a#b\n')).option).toBe('echo a#b');
    expect(only(parsed('execute: curl http://x/#frag\n')).option).toBe('curl http://x/#frag');
  });

  it('keeps a # inside single or double quotes', () => {
    expect(only(parsed(`env: OPTION='#option' # comment\n`)).option).toBe(`OPTION='#option'`);
    expect(only(parsed('execute: echo "a # b" # c\n')).option).toBe('echo "a # b"');
    expect(only(parsed(`execute: echo 'x' "y # z" '#' # end\n`)).option).toBe(`echo 'x' "y # z" '#'`);
  });

  it('treats an escaped quote as part of the quoted text', () => {
    expect(only(parsed(`env: K='c \\'d # e' # f\n`)).option).toBe(`K='c \\'d # e'`);
    expect(only(parsed('env: K="a \\" # b" # c\n')).option).toBe('K="a \\" # b"');
  });

  it('treats a backslash-escaped blank as part of a word, as a shell does', () => {
    expect(only(parsed('execute: echo a\\ #b\n')).option).toBe('echo a\\ #b');
  });

  it('finds no comment after an unterminated quote (the shell would reject it anyway)', () => {
    expect(only(parsed('execute: echo "abc # not a comment\n')).option).toBe('echo "abc # not a comment');
  });

  it('stripComment cuts at a word-start # only', () => {
    expect(stripComment('#x')).toBe('');
    expect(stripComment('a #x')).toBe('a ');
    expect(stripComment('a#x')).toBe('a#x');
    expect(stripComment(`'#' "#" #c`)).toBe(`'#' "#" `);
  });
});

describe('parseScript: indentation', () => {
  it('builds the tree from indentation: deeper is a child, equal a sibling, shallower returns', () => {
    expect(shape(parsed('fork:\n  noop: a\n    noop: b\n  noop: c\nnoop: d\n'))).toEqual([
      ['fork', null, ['noop', 'a', ['noop', 'b']], ['noop', 'c']],
      ['noop', 'd'],
    ]);
  });

  it('counts each blank character once, tabs included', () => {
    expect(shape(parsed('fork:\n\tnoop: a\n\tnoop: b\n'))).toEqual([['fork', null, ['noop', 'a'], ['noop', 'b']]]);
  });

  it('reports inconsistent indentation at the first non-blank character', () => {
    expect(problemsOf('noop:\n    noop:\n  noop:\n')).toEqual([
      { line: 3, column: 3, message: expect.stringMatching(/^inconsistent indentation/) },
    ]);
  });

  it('reports a first line that is indented when a later line is shallower', () => {
    expect(problemsOf('  noop:\nnoop:\n')).toEqual([
      { line: 2, column: 1, message: expect.stringMatching(/inconsistent indentation/) },
    ]);
  });

  it('recovers from inconsistent indentation so later lines keep their meaning', () => {
    const { root, problems } = parseScriptRecovering('fork:\n    noop: a\n  noop: b\n  noop: c\n');
    expect(problems).toHaveLength(1);
    expect(shape(root)).toEqual([['fork', null, ['noop', 'a'], ['noop', 'b'], ['noop', 'c']]]);
  });

  it('rejects nesting deeper than the limit', () => {
    const lines = Array.from({ length: MAX_NESTING_DEPTH + 2 }, (_, depth) => `${' '.repeat(depth)}noop:`);
    const problems = problemsOf(lines.join('\n'));
    expect(problems.map((p) => p.line)).toEqual([MAX_NESTING_DEPTH + 1, MAX_NESTING_DEPTH + 2]);
    expect(problems[0]?.message).toMatch(/nesting deeper than/);
  });
});

describe('parseScript: errors', () => {
  it('reports a line without a colon as a syntax error at its first non-blank character', () => {
    expect(problemsOf('noop:\n  noop\n')).toEqual([{ line: 2, column: 3, message: expect.stringMatching(/^syntax error/) }]);
  });

  it.each([':', ': x', 'no-op:', 'noop :', 'ノop:', '\u00A0noop:', '"noop": x'])('reports `%s` as a syntax error', (line) => {
    const problems = problemsOf(`${line}\n`);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ line: 1, column: 1 });
    expect(problems[0]?.message).toMatch(/^syntax error/);
  });

  it('reports an unknown task type by name, pointing at the type', () => {
    expect(problemsOf('noop:\n  frobnicate: 1\n')).toEqual([{ line: 2, column: 3, message: 'unknown task type `frobnicate`' }]);
  });

  it('rejects kuroko_runner saying it is Rails-only (D3)', () => {
    const [problem] = problemsOf('kuroko_runner: remind_failure\n');
    expect(problem).toMatchObject({ line: 1, column: 1 });
    expect(problem?.message).toMatch(/kuroko_runner.*Rails-only/);
  });

  it('collects every error instead of stopping at the first', () => {
    const problems = problemsOf('bad line\nnoop:\n      noop:\n   noop:\nunknown:\n');
    expect(problems.map((p) => [p.line, p.column])).toEqual([
      [1, 1],
      [4, 4],
      [5, 1],
    ]);
  });

  it('keeps the children of a bad line in the recovered tree', () => {
    const { root } = parseScriptRecovering('fork\n  noop: a\nbogus:\n  noop: b\n');
    expect(shape(root)).toEqual([
      ['', null, ['noop', 'a']],
      ['bogus', null, ['noop', 'b']],
    ]);
  });
});

describe('paths', () => {
  it('names each node parent path + /index-type', () => {
    const root = parsed('noop:\nfork:\n  noop:\n  retry: count=1\n    noop:\n');
    expect(listNodes(root).map((n) => n.path)).toEqual(['', '/0-noop', '/1-fork', '/1-fork/0-noop', '/1-fork/1-retry', '/1-fork/1-retry/0-noop']);
  });

  it('gives two fork: blocks distinct paths', () => {
    const root = parsed('fork:\n  noop:\nfork:\n  noop:\n');
    expect(listNodes(root).map((n) => n.path)).toEqual(['', '/0-fork', '/0-fork/0-noop', '/1-fork', '/1-fork/0-noop']);
  });

  it('gives retry: children their own paths', () => {
    const root = parsed('retry: count=3\n  execute: a\n  execute: b\n');
    expect(root.children[0]?.children.map((n) => n.path)).toEqual(['/0-retry/0-execute', '/0-retry/1-execute']);
  });
});

describe('findNode', () => {
  const root = parsed('noop:\nfork:\n  noop:\n  sub_process: 1\nsubprocess: 2\n');

  it('finds the root at / and at the empty path', () => {
    expect(findNode(root, '/')).toBe(root);
    expect(findNode(root, '')).toBe(root);
  });

  it('walks by index and checks the type', () => {
    expect(findNode(root, '/0-noop')).toBe(root.children[0]);
    expect(findNode(root, '/1-fork/1-sub_process')?.option).toBe('1');
    expect(findNode(root, '/2-subprocess')?.option).toBe('2');
  });

  it.each(['/1-fork/1-subprocess', '/2-sub_process', '/0-fork', '/9-noop', '/1-fork/5-noop', 'noop', '/0-noop/', '//0-noop', '/00-noop', '/x-noop', '/0-noop/0-noop'])(
    'finds nothing at %s',
    (path) => {
      expect(findNode(root, path)).toBeUndefined();
    },
  );

  it('finds every node by its own path', () => {
    for (const node of listNodes(root)) expect(findNode(root, node.path)).toBe(node);
  });
});

describe('nextNode and nextSiblingNode', () => {
  const root = parsed('noop: a\nfork:\n  noop: b\n    noop: c\n  noop: d\nnoop: e\n');
  const at = (path: string) => findNode(root, path) as ScriptNode;

  it('walks depth-first, pre-order, from the root to the end', () => {
    const order: string[] = [];
    for (let node = nextNode(root); node !== undefined; node = nextNode(node)) order.push(node.path);
    expect(order).toEqual(['/0-noop', '/1-fork', '/1-fork/0-noop', '/1-fork/0-noop/0-noop', '/1-fork/1-noop', '/2-noop']);
  });

  it('climbs to an ancestor next sibling after the last child', () => {
    expect(nextNode(at('/1-fork/0-noop/0-noop'))?.path).toBe('/1-fork/1-noop');
    expect(nextNode(at('/1-fork/1-noop'))?.path).toBe('/2-noop');
  });

  it('skips a node own children with nextSiblingNode', () => {
    expect(nextSiblingNode(at('/1-fork'))?.path).toBe('/2-noop');
    expect(nextSiblingNode(at('/1-fork/0-noop'))?.path).toBe('/1-fork/1-noop');
  });

  it('returns undefined at the end and for the root', () => {
    expect(nextNode(at('/2-noop'))).toBeUndefined();
    expect(nextSiblingNode(at('/2-noop'))).toBeUndefined();
    expect(nextSiblingNode(root)).toBeUndefined();
    expect(nextNode(parsed(''))).toBeUndefined();
  });
});

describe('serializeNode', () => {
  it('writes two spaces per level, type: option, and the root as its children', () => {
    const root = parsed('env: A=1   # c\nfork:\n\tnoop:\n\texecute: echo "x # y"\n');
    expect(serializeNode(root)).toBe('env: A=1\nfork:\n  noop:\n  execute: echo "x # y"\n');
  });

  it('writes a subtree as its own top-level script (as fork children get)', () => {
    const root = parsed('fork:\n  sequence:\n    noop: a\n    noop: b\n');
    const child = findNode(root, '/0-fork/0-sequence') as ScriptNode;
    expect(serializeNode(child)).toBe('sequence:\n  noop: a\n  noop: b\n');
    expect(listNodes(parsed(serializeNode(child))).map((n) => n.path)).toEqual(['', '/0-sequence', '/0-sequence/0-noop', '/0-sequence/1-noop']);
  });

  it('writes null as `type:` and the empty option as `type: #`, both round-tripping', () => {
    const root = parsed('noop:\nnoop: # c\n');
    const text = serializeNode(root);
    expect(text).toBe('noop:\nnoop: #\n');
    expect(shape(parsed(text))).toEqual([
      ['noop', null],
      ['noop', ''],
    ]);
  });

  it('starts at the given indent', () => {
    expect(serializeNode(parsed('noop:\n'), 2)).toBe('    noop:\n');
  });

  it('serializes the empty script as the empty string', () => {
    expect(serializeNode(parsed(''))).toBe('');
  });
});
