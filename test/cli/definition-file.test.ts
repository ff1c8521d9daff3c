/** The definitions-as-code file format round-trips exactly, points at the wrong line, and diffs read like diff -u. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validateScript } from '../../core/dsl/script-validator';
import { DefinitionFileError, fileNameFor, formatDefinitionFile, parseDefinitionFile } from '../../cli/ops/definition-file';
import { unifiedDiff } from '../../cli/ops/text-diff';

const settings = {
  name: 'nightly report',
  description: 'Two lines:\n  - "quoted"\n',
  cron: ['0 3 * * *', '30 4 * * 1-5'],
  suspend_cron: [],
  time_zone: 'Asia/Tokyo',
  tags: ['reports', 'ünïcode ✓'],
  prevent_multi: 2,
  catch_up_window_minutes: 60,
  notify_cancellation: true,
  hipchat_notify_finished: false,
  api_allowed: true,
  slack_channel: '',
  webhook_url: null,
};

describe('definition files', () => {
  it('formats a readable header and reads back the same settings and the script byte for byte', () => {
    const script = 'env: A=1 # comment\nexecute: echo "$A"\n\n# --- not the header\n';
    const text = formatDefinitionFile(settings, script);
    expect(text.split('\n').slice(1, 5)).toEqual([
      '# name: nightly report',
      '# description: "Two lines:\\n  - \\"quoted\\"\\n"',
      '# cron: ["0 3 * * *", "30 4 * * 1-5"]',
      '# suspend_cron: []',
    ]);
    const parsed = parseDefinitionFile(text);
    expect(parsed.settings).toEqual(settings);
    expect(parsed.script).toBe(script);
    expect(formatDefinitionFile(parsed.settings, parsed.script)).toBe(text);
    // The header is comments: the file is a script `kuroko validate` accepts, lines numbered as in the file.
    expect(validateScript(text)).toEqual([]);
    expect(parsed.headerLines).toBe(15);
  });

  it('round-trips any strings, lists and scripts exactly', () => {
    fc.assert(
      fc.property(
        fc.record({
          name: fc.string({ minLength: 1 }),
          description: fc.string(),
          slack_channel: fc.string(),
          webhook_url: fc.option(fc.string(), { nil: null }),
          tags: fc.array(fc.string()),
          prevent_multi: fc.integer({ min: 0, max: 3 }),
          api_allowed: fc.boolean(),
        }),
        fc.string(),
        (s, script) => {
          const text = formatDefinitionFile(s, script);
          const parsed = parseDefinitionFile(text);
          expect(parsed.settings).toEqual(s);
          expect(parsed.script).toBe(script);
          expect(formatDefinitionFile(parsed.settings, parsed.script)).toBe(text);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reads what a human writes: plain strings, settings left out, and says which line is wrong', () => {
    const parsed = parseDefinitionFile('# --- kuroko definition\n# name: job-a\n#\n# time_zone: Europe/Paris\n# ---\nnoop:\n');
    expect(parsed.settings).toEqual({ name: 'job-a', time_zone: 'Europe/Paris' });
    expect(parsed.script).toBe('noop:\n');
    const wrong = (text: string) => {
      try {
        parseDefinitionFile(text);
      } catch (error) {
        if (error instanceof DefinitionFileError) return `${error.line}: ${error.message}`;
        throw error;
      }
      return 'parsed';
    };
    expect(wrong('noop:\n')).toMatch(/^1: the first line must start with/);
    expect(wrong('# --- kuroko definition\n# name: a\n# cron: 0 3 * * *\n# ---\n')).toMatch(/^3: cron: expected a JSON list/);
    expect(wrong('# --- kuroko definition\n# name: a\n# prevent_multi: two\n# ---\n')).toBe('3: prevent_multi: expected an integer, got two');
    expect(wrong('# --- kuroko definition\n# name: a\n# colour: red\n# ---\n')).toMatch(/^3: unknown setting colour/);
    expect(wrong('# --- kuroko definition\n# name: a\nnoop:\n')).toMatch(/^3: expected "# key: value"/);
    expect(wrong('# --- kuroko definition\n# description: x\n# ---\n')).toMatch(/^1: the settings need a name/);
  });

  it('makes file names from definition names', () => {
    expect(fileNameFor('nightly-report_v2.1')).toBe('nightly-report_v2.1.kuroko');
    expect(fileNameFor('a/b c')).toBe('a_b_c.kuroko');
    expect(fileNameFor('..hidden')).toBe('_hidden.kuroko');
  });

  it('diffs scripts as unified hunks with context', () => {
    const before = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', ''].join('\n');
    const after = ['a', 'b', 'c', 'X', 'e', 'f', 'g', 'h', 'i', 'j', 'k', ''].join('\n');
    expect(unifiedDiff(before, after)).toEqual(['@@ -1,10 +1,11 @@', ' a', ' b', ' c', '-d', '+X', ' e', ' f', ' g', ' h', ' i', ' j', '+k']);
    const long = Array.from({ length: 30 }, (_, i) => `line ${i}`);
    const changed = long.map((l, i) => (i === 2 || i === 25 ? `${l} changed` : l));
    const hunks = unifiedDiff(`${long.join('\n')}\n`, `${changed.join('\n')}\n`);
    expect(hunks.filter((l) => l.startsWith('@@'))).toEqual(['@@ -1,6 +1,6 @@', '@@ -23,7 +23,7 @@']);
    expect(unifiedDiff('same\n', 'same\n')).toEqual([]);
    expect(unifiedDiff('', 'noop:\n')).toEqual(['@@ -0,0 +1,1 @@', '+noop:']);
  });
});
