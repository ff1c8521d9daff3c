// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { layersRule } from './eslint-rules/layers.js';

/** Modules that do I/O; `core/` may import none of them (architecture: the pure core). */
const ioModules = [
  'kysely', 'mysql2', 'mysql2/*', 'better-sqlite3', 'hono', 'hono/*', '@hono/*', 'aws-cdk-lib', 'aws-cdk-lib/*',
  '@aws-sdk/*', '@middy/*', 'fs', 'node:fs', 'fs/*', 'node:fs/*', 'child_process', 'node:child_process',
  'net', 'node:net', 'http', 'node:http', 'https', 'node:https', 'os', 'node:os', 'process', 'node:process',
];

/** The folders that ship (everything but tests, benchmarks and scripts). */
const SOURCE_FOLDERS = ['core', 'db', 'adapters', 'app', 'http', 'agent', 'functions', 'cli', 'cdk'];


/** What the console's browser script may use besides the language's own globals (the DOM's types come from lib.dom). */
const BROWSER_GLOBALS = ['window', 'document', 'location', 'navigator', 'fetch', 'localStorage', 'setTimeout', 'clearTimeout', 'console'];

export default tseslint.config(
  { ignores: ['node_modules/**', 'cdk.out/**', '.kuroko/**', 'dist/**', 'console/assets/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ioModules, message: 'core/ is pure: I/O comes through ports.' }] }],
      'no-restricted-globals': ['error', { name: 'process', message: 'core/ receives configuration, never process.env.' }],
      'no-restricted-syntax': [
        'error',
        { selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']", message: 'Time comes through the Clock port.' },
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'Time comes through the Clock port.' },
        { selector: "CallExpression[callee.object.name='Math'][callee.property.name='random']", message: 'Ids and randomness come through ports.' },
      ],
    },
  },
  {
    // Layers point down (docs/architecture.md); the rule lives in eslint-rules/layers.js.
    files: ['**/*.ts'],
    plugins: { local: { rules: { layers: layersRule } } },
    rules: { 'local/layers': 'error' },
  },
  {
    // Every source file can be read in one sitting; generated files are exempt.
    files: SOURCE_FOLDERS.map((folder) => `${folder}/**/*.ts`),
    ignores: ['cli/ops/api-types.ts'],
    rules: { 'max-lines': ['error', { max: 400 }] },
  },
  {
    // A Lambda handler parses its event and calls the application; the work lives in app/.
    files: ['functions/*/handler.ts'],
    rules: { 'max-lines': ['error', { max: 40 }] },
  },
  {
    // The console's browser script (bundled by `npm run build:console`): the browser's globals and no Node's, and
    // no import at all, so nothing of the server can end up in the bundle.
    files: ['http/console/browser/**/*.ts'],
    languageOptions: {
      globals: Object.fromEntries(BROWSER_GLOBALS.map((name) => [name, 'readonly'])),
      // The DOM's types (Element, HTMLElement...) for the scope analysis; TypeScript checks their use.
      parserOptions: { lib: ['es2022', 'dom', 'dom.iterable'] },
    },
    rules: {
      'no-undef': 'error',
      'no-restricted-imports': ['error', { patterns: [{ group: ['*'], message: 'The browser script imports nothing: it is bundled alone.' }] }],
    },
  },
  {
    files: ['bin/**/*.js', 'eslint.config.js', 'eslint-rules/**/*.js', '.ci/**'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
