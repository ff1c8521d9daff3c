// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Modules that do I/O; `core/` may import none of them (architecture: the pure core). */
const ioModules = [
  'kysely', 'mysql2', 'mysql2/*', 'better-sqlite3', 'hono', 'hono/*', '@hono/*', 'aws-cdk-lib', 'aws-cdk-lib/*',
  '@aws-sdk/*', '@middy/*', 'fs', 'node:fs', 'fs/*', 'node:fs/*', 'child_process', 'node:child_process',
  'net', 'node:net', 'http', 'node:http', 'https', 'node:https', 'os', 'node:os', 'process', 'node:process',
];

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
    files: ['bin/**/*.js', 'eslint.config.js', '.ci/**'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
