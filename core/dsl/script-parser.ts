import type { ScriptProblem } from '../errors';
import type { ScriptNode } from './script-node';
import { isTaskType, REJECTED_TASK_TYPES } from './task-types';

/** A parsed script, or every problem that stopped it from parsing. */
export type ParseResult = { ok: true; root: ScriptNode } | { ok: false; problems: ScriptProblem[] };

/** A best-effort tree plus the problems met while building it (see {@link parseScriptRecovering}). */
export interface RecoveredParse {
  readonly root: ScriptNode;
  readonly problems: ScriptProblem[];
}

/** The type of the tree's root node (also a task type a user may write, as in Kuroko2). */
export const ROOT_TYPE = 'root';

/** Spaces per nesting level written by {@link serializeNode} (Kuroko2's `to_script`). */
export const SERIALIZE_INDENT = '  ';

/**
 * Deepest nesting accepted. Real scripts nest a handful of levels; the cap keeps paths short and the
 * recursive consumers (serialisation, forks) far from the stack limit on hostile input.
 */
export const MAX_NESTING_DEPTH = 200;

const BYTE_ORDER_MARK = '\uFEFF';
/** No custom task types (the deployment configured none). */
const NO_NAMES: ReadonlySet<string> = new Set();
const COMMENT_MARK = '#';
const BACKSLASH = '\\';
const NODE_HEAD = /^(\w+):/;
const MISSING_COLON = /^\w+[ \t\v\f\r]*$/;
const BLANK_BEFORE_COLON = /^\w+[ \t\v\f\r]+:/;
const PATH_SEGMENT = /^(0|[1-9]\d*)-(\w+)$/;

/**
 * Blanks are ASCII only, as Ruby's `\s` in Kuroko2 (minus the newline that separates lines). A no-break
 * space or other Unicode space is ordinary text, so it can never shift indentation invisibly.
 */
function isBlank(char: string | undefined): boolean {
  return char === ' ' || char === '\t' || char === '\v' || char === '\f' || char === '\r';
}

function countLeadingBlanks(text: string): number {
  let count = 0;
  while (count < text.length && isBlank(text[count])) count++;
  return count;
}

function trimBlanks(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isBlank(text[start])) start++;
  while (end > start && isBlank(text[end - 1])) end--;
  return text.slice(start, end);
}

/**
 * Cuts `text` (the option text, which starts a shell word) at its comment (D1): a `#` that starts a word,
 * i.e. at the start or after an unescaped blank, outside '…' and "…". A backslash escapes the next
 * character both outside and inside quotes, so `'c \'d'` (the `env:` escape) stays one literal. An
 * unterminated quote runs to the end of the line, so no comment is found after it.
 */
export function stripComment(text: string): string {
  let quote: string | undefined;
  let atWordStart = true;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (quote !== undefined) {
      if (char === BACKSLASH) i++;
      else if (char === quote) quote = undefined;
      continue;
    }
    if (char === COMMENT_MARK && atWordStart) return text.slice(0, i);
    if (char === BACKSLASH) {
      i++;
      atWordStart = false;
    } else if (char === '"' || char === "'") {
      quote = char;
      atWordStart = false;
    } else {
      atWordStart = isBlank(char);
    }
  }
  return text;
}

/** Reads an option as written after `type:` and its blanks: null when nothing follows, else comment-free and trimmed. */
export function optionFromText(text: string): string | null {
  return text === '' ? null : trimBlanks(stripComment(text));
}

interface BuildNode {
  type: string;
  option: string | null;
  line: number;
  column: number;
  optionColumn?: number;
  path: string;
  index: number;
  parent: BuildNode | undefined;
  children: BuildNode[];
}

interface OpenLevel {
  readonly node: BuildNode;
  readonly indent: number;
  readonly depth: number;
}

function newRoot(): BuildNode {
  return { type: ROOT_TYPE, option: null, line: 0, column: 0, path: '', index: 0, parent: undefined, children: [] };
}

function appendChild(parent: BuildNode, child: Omit<BuildNode, 'path' | 'index' | 'parent' | 'children'>): BuildNode {
  const index = parent.children.length;
  const node: BuildNode = { ...child, path: `${parent.path}/${index}-${child.type}`, index, parent, children: [] };
  parent.children.push(node);
  return node;
}

function syntaxMessage(rest: string): string {
  if (MISSING_COLON.test(rest)) return `syntax error: \`${trimBlanks(rest)}\` needs a colon (\`${trimBlanks(rest)}:\`)`;
  if (BLANK_BEFORE_COLON.test(rest)) return 'syntax error: no blank is allowed between the task type and its colon';
  return 'syntax error: a line must read `type: option`, where the type is letters, digits or `_`';
}

/**
 * Parses a script and keeps going after errors, returning a best-effort tree with every problem. A line
 * with a syntax error stands in the tree as a node of type `""` and a line with an unknown task type as a
 * node of that type, so their indented children still parse and can be validated. Only a tree without
 * problems is fit to run. `customTaskNames` are the deployment's custom task types, accepted like the built-in
 * ones. Never throws.
 */
export function parseScriptRecovering(text: string, customTaskNames: ReadonlySet<string> = NO_NAMES): RecoveredParse {
  const root = newRoot();
  const problems: ScriptProblem[] = [];
  const stack: OpenLevel[] = [{ node: root, indent: -1, depth: 0 }];
  const source = text.startsWith(BYTE_ORDER_MARK) ? text.slice(BYTE_ORDER_MARK.length) : text;
  const lines = source.split('\n');

  for (let lineIndex = 0; lineIndex < lines.length; lineIndex++) {
    const lineNumber = lineIndex + 1;
    const raw = lines[lineIndex] ?? '';
    const lineText = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const indent = countLeadingBlanks(lineText);
    const rest = lineText.slice(indent);
    if (rest === '' || rest.startsWith(COMMENT_MARK)) continue;
    const column = indent + 1;

    let parentLevel = stack[stack.length - 1] as OpenLevel;
    if (indent <= parentLevel.indent) {
      while (stack.length > 1 && (stack[stack.length - 1] as OpenLevel).indent > indent) stack.pop();
      const top = stack[stack.length - 1] as OpenLevel;
      if (top.indent === indent) {
        stack.pop();
        parentLevel = stack[stack.length - 1] as OpenLevel;
      } else {
        const open = stack.slice(1).map((level) => level.indent);
        problems.push({
          line: lineNumber,
          column,
          message: `inconsistent indentation: ${indent} blank(s) match no enclosing level (open levels: ${open.length > 0 ? open.join(', ') : 'none'})`,
        });
        // Recover as a child of the shallower level, so the lines below keep their meaning.
        parentLevel = top;
      }
    }
    if (parentLevel.depth >= MAX_NESTING_DEPTH) {
      problems.push({ line: lineNumber, column, message: `nesting deeper than ${MAX_NESTING_DEPTH} levels` });
      continue;
    }

    const head = NODE_HEAD.exec(rest);
    let node: BuildNode;
    if (head === null) {
      problems.push({ line: lineNumber, column, message: syntaxMessage(rest) });
      node = appendChild(parentLevel.node, { type: '', option: null, line: lineNumber, column });
    } else {
      const type = head[1] as string;
      const afterColon = rest.slice(head[0].length);
      const blanks = countLeadingBlanks(afterColon);
      const optionColumn = column + head[0].length + blanks;
      node = appendChild(parentLevel.node, {
        type,
        option: optionFromText(afterColon.slice(blanks)),
        line: lineNumber,
        column,
        optionColumn,
      });
      if (!isTaskType(type) && !customTaskNames.has(type)) {
        const rejection = Object.hasOwn(REJECTED_TASK_TYPES, type) ? REJECTED_TASK_TYPES[type] : undefined;
        problems.push({ line: lineNumber, column, message: rejection ?? `unknown task type \`${type}\`` });
      }
    }
    stack.push({ node, indent, depth: parentLevel.depth + 1 });
  }
  return { root, problems };
}

/**
 * Parses a workflow script (Kuroko2's DSL with D1 comments) into a node tree, or returns every located
 * problem. Never throws.
 */
export function parseScript(text: string, customTaskNames: ReadonlySet<string> = NO_NAMES): ParseResult {
  const { root, problems } = parseScriptRecovering(text, customTaskNames);
  return problems.length === 0 ? { ok: true, root } : { ok: false, problems };
}

function optionSuffix(option: string | null): string {
  if (option === null) return '';
  // A lone comment is how the empty option is written: `noop: # c` reads as "".
  if (option === '') return ` ${COMMENT_MARK}`;
  return ` ${option}`;
}

/**
 * Writes a node and its subtree back as script text, two spaces per level (Kuroko2's `to_script`). The
 * root writes only its children. A null option is written `type:`, the empty option `type: #`; any option
 * the parser produced round-trips, because such an option never starts or ends with a blank, never starts
 * with `#` and holds no comment (D1 cut it off).
 */
export function serializeNode(node: ScriptNode, indent = 0): string {
  if (node.parent === undefined && node.type === ROOT_TYPE) {
    return node.children.map((child) => serializeNode(child, indent)).join('');
  }
  const own = `${SERIALIZE_INDENT.repeat(indent)}${node.type}:${optionSuffix(node.option)}\n`;
  return own + node.children.map((child) => serializeNode(child, indent + 1)).join('');
}

/**
 * Finds the node at `path` (`/` or `""` is the root, `/1-fork/0-noop` walks by index and checks each
 * type); undefined when the path is malformed or names no node.
 */
export function findNode(root: ScriptNode, path: string): ScriptNode | undefined {
  if (path === '' || path === '/') return root;
  if (!path.startsWith('/')) return undefined;
  let node = root;
  for (const segment of path.slice(1).split('/')) {
    const match = PATH_SEGMENT.exec(segment);
    if (match === null) return undefined;
    const child = node.children[Number(match[1])];
    if (child === undefined || child.type !== match[2]) return undefined;
    node = child;
  }
  return node;
}

/** The node after `node` in depth-first pre-order: its first child, else its next sibling, else an ancestor's. */
export function nextNode(node: ScriptNode): ScriptNode | undefined {
  return node.children[0] ?? nextSiblingNode(node);
}

/** The node after `node` skipping its children: its next sibling, else its parent's next sibling, and so on. */
export function nextSiblingNode(node: ScriptNode): ScriptNode | undefined {
  let current: ScriptNode = node;
  for (let parent = current.parent; parent !== undefined; parent = current.parent) {
    const sibling = parent.children[current.index + 1];
    if (sibling !== undefined) return sibling;
    current = parent;
  }
  return undefined;
}

/** Every node of the tree below and including `root`, in pre-order (iterative, so depth cannot overflow). */
export function listNodes(root: ScriptNode): ScriptNode[] {
  const result: ScriptNode[] = [];
  const pending: ScriptNode[] = [root];
  for (let node = pending.pop(); node !== undefined; node = pending.pop()) {
    result.push(node);
    for (let i = node.children.length - 1; i >= 0; i--) pending.push(node.children[i] as ScriptNode);
  }
  return result;
}
