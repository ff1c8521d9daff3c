// @ts-check
/**
 * The layer rule of docs/architecture.md: a relative import may only point to the same folder or to a
 * lower layer. Folders not named here (test/, bench/, scripts/, infra-tests/, bin/) may import anything.
 */
import { dirname, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Each layer's rank: an import must go to a strictly lower rank, or stay in its own folder. */
export const LAYER_RANKS = {
  core: 0,
  db: 1,
  adapters: 1,
  app: 2,
  http: 3,
  agent: 3,
  functions: 4,
  cli: 4,
};

/**
 * What the CDK app may load at synthesis: the pure core, constants shared with the runtime (variable
 * names, database user names) and the bundling scripts. Type-only imports are erased and always allowed.
 */
const CDK_MAY_IMPORT = ['core/', 'cdk/', 'scripts/', 'app/config/env-keys.ts', 'db/database-user-names.ts',
  'adapters/aws/sleep-value.ts'];

/** @param {string} path */
const topFolder = (path) => relative(ROOT, path).split(sep)[0] ?? '';

/** @type {import('eslint').Rule.RuleModule} */
export const layersRule = {
  meta: {
    type: 'problem',
    docs: { description: 'Imports point down the layers of docs/architecture.md' },
    schema: [],
  },
  create(context) {
    const file = context.filename;
    const from = topFolder(file);
    /** @param {any} node @param {any} source @param {boolean} typeOnly */
    function check(node, source, typeOnly) {
      if (!source || typeof source.value !== 'string' || !source.value.startsWith('.')) return;
      const target = resolve(dirname(file), source.value);
      const to = topFolder(target);
      if (from === 'cdk') {
        const rel = relative(ROOT, target).split(sep).join('/').replace(/\.js$/, '.ts');
        const withTs = rel.endsWith('.ts') ? rel : `${rel}.ts`;
        if (typeOnly || CDK_MAY_IMPORT.some((allowed) => rel.startsWith(allowed) || withTs === allowed)) return;
        context.report({
          node,
          message: `cdk/ loads only the pure core and shared constants at synthesis, not \`${rel}\` (docs/architecture.md)`,
        });
        return;
      }
      const fromRank = LAYER_RANKS[/** @type {keyof typeof LAYER_RANKS} */ (from)];
      const toRank = LAYER_RANKS[/** @type {keyof typeof LAYER_RANKS} */ (to)];
      if (fromRank === undefined || toRank === undefined || from === to) return;
      if (toRank < fromRank) return;
      context.report({
        node,
        message: `${from}/ may not import ${to}/ (\`${source.value}\`): layers only point down (docs/architecture.md)`,
      });
    }
    return {
      ImportDeclaration: (node) => check(node, node.source, node.importKind === 'type'),
      ExportAllDeclaration: (node) => check(node, node.source, node.exportKind === 'type'),
      ExportNamedDeclaration: (node) => check(node, node.source, node.exportKind === 'type'),
      ImportExpression: (node) => check(node, node.source, false),
    };
  },
};
