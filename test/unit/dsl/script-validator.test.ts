import { describe, expect, it } from 'vitest';
import { ScriptError } from '../../../core/errors';
import { TASK_TYPES, assertValidScript, validateScript } from '../../../core/dsl/script-validator';
import type { ValidationContext } from '../../../core/dsl/script-validator';

function messages(text: string, context?: ValidationContext): string[] {
  return validateScript(text, context).map((p) => `${p.line}:${p.column}: ${p.message}`);
}

describe('validateScript: valid scripts', () => {
  it('accepts the empty script (a definition without script is refused by the API, not here)', () => {
    expect(validateScript('')).toEqual([]);
  });

  it('accepts a script using every task', () => {
    const script = [
      '# nightly batch',
      'env: A=1 B="two words"',
      'queue: @batch',
      'timeout: 2h',
      'expected_time: 90',
      'auto_skip_error: true',
      'rails_env: production',
      'echo: starting',
      'sleep: 5',
      'fork:',
      '  execute: echo left',
      '  sequence:',
      '    noop:',
      '    execute: echo right',
      'parallel_fork: 3',
      '  execute: echo "$KUROKO2_PARALLEL_FORK_INDEX"',
      'retry: count=3 sleep_time=10',
      '  execute: flaky-command',
      'sub_process: 12',
      'subprocess: 13',
      'wait: 1/daily 2/hourly timeout=30m',
      'root:',
      '  noop:',
    ].join('\n');
    expect(validateScript(script, { knownQueues: new Set(['@batch']), definitionExists: () => true })).toEqual([]);
  });

  it('exports the supported task types without kuroko_runner', () => {
    expect(TASK_TYPES).toContain('sub_process');
    expect(TASK_TYPES).toContain('subprocess');
    expect(TASK_TYPES).not.toContain('kuroko_runner');
  });

  it.each([
    'noop: anything at all',
    'sequence:',
    'echo:',
    'env:',
    'env: # only a comment',
    'auto_skip_error: maybe',
    'queue:',
    'queue: # blank',
    'timeout: 0',
    'sleep: 0',
    'retry: count=0\n  noop:',
  ])('accepts `%s`', (script) => {
    expect(validateScript(script)).toEqual([]);
  });
});

describe('validateScript: each task', () => {
  it.each([
    ['execute:', '1:9: execute: a command is required'],
    ['execute: # just a comment', '1:10: execute: a command is required'],
    ['env: A="x', '1:8: env: unterminated " quote in `A="x`'],
    ['timeout: 1d', '1:10: timeout: expected minutes as N, Nm or Nh (e.g. 30, 30m, 2h), got `1d`'],
    ['timeout:', '1:9: timeout: expected minutes as N, Nm or Nh (e.g. 30, 30m, 2h), got nothing'],
    ['expected_time: soon', '1:16: expected_time: expected minutes as N, Nm or Nh (e.g. 30, 30m, 2h), got `soon`'],
    ['sleep: 5s', '1:8: sleep: expected a number of seconds, got `5s`'],
    ['queue: a b', '1:8: queue: `a b` is not a queue name: use 1 to 180 letters, digits, `_` or `-`, optionally after `@`'],
    ['sub_process: x', '1:14: sub_process: expected a job definition id, got `x`'],
    ['subprocess:', '1:12: subprocess: expected a job definition id, got nothing'],
    ['rails_env:', '1:11: rails_env: expected an environment name'],
    ['fork:', '1:1: fork: needs at least one indented child node'],
    ['retry: count=2', '1:1: retry: needs at least one indented child node'],
    ['parallel_fork: 2', '1:1: parallel_fork: needs at least one indented child node'],
  ])('rejects `%s`', (script, expected) => {
    expect(messages(script)).toEqual([expected]);
  });

  it('rejects parallel_fork: 0 and more than 100 branches (D4)', () => {
    expect(messages('parallel_fork: 0\n  noop:')).toEqual(['1:16: parallel_fork: 0 would start no branch and never finish; give 1 to 100']);
    expect(messages('parallel_fork: 101\n  noop:')).toEqual(['1:16: parallel_fork: 101 exceeds the limit of 100 branches']);
  });

  it('reports both a bad option and missing children', () => {
    expect(messages('retry: sleep_time=1')).toEqual([
      '1:1: retry: needs at least one indented child node',
      '1:8: retry: `count=N` is required (`sleep_time=S` is optional)',
    ]);
  });

  it('points inside the option at the bad item', () => {
    expect(messages('wait: 1/daily 2/yearly')).toEqual([
      '1:15: wait: `2/yearly` is neither `<definition id>/<hourly|daily|weekly|monthly>` nor `timeout=N|Nm|Nh`',
    ]);
    expect(messages('env: A=1 B=\'x')).toEqual(["1:12: env: unterminated ' quote in `B='x`"]);
  });

  it('checks that every wait: id exists, when it can', () => {
    const context: ValidationContext = { definitionExists: (id) => id === 1 };
    expect(messages('wait: 1/daily 2/daily, 3/weekly', context)).toEqual([
      '1:15: wait: job definition 2 does not exist',
      '1:24: wait: job definition 3 does not exist',
    ]);
    expect(messages('wait: 1/daily 2/daily')).toEqual([]);
  });

  it('checks that the queue is known (D14), when it can; @default and blank always are', () => {
    const context: ValidationContext = { knownQueues: new Set(['fast']) };
    expect(messages('queue: fast\nqueue: slow\nqueue:\nqueue: @default', context)).toEqual([
      '2:8: queue: queue `slow` is not known: no live worker serves it and the deployment does not declare it',
    ]);
    expect(messages('queue: slow')).toEqual([]);
  });

  it('rejects kuroko_runner, saying it is Rails-only (D3)', () => {
    const [problem] = validateScript('kuroko_runner: remind_failure');
    expect(problem).toMatchObject({ line: 1, column: 1 });
    expect(problem?.message).toContain('Rails-only');
  });

  it('validates nodes nested at any depth', () => {
    expect(messages('fork:\n  sequence:\n    sleep: x\n')).toEqual(['3:12: sleep: expected a number of seconds, got `x`']);
  });
});

describe('validateScript: many problems', () => {
  it('reports three independent errors as three located problems', () => {
    const script = ['env: A=1', 'timeout: soon', 'execute: echo ok', 'bogus: 1', 'fork:', 'noop:'].join('\n');
    expect(validateScript(script)).toEqual([
      { line: 2, column: 10, message: 'timeout: expected minutes as N, Nm or Nh (e.g. 30, 30m, 2h), got `soon`' },
      { line: 4, column: 1, message: 'unknown task type `bogus`' },
      { line: 5, column: 1, message: 'fork: needs at least one indented child node' },
    ]);
  });

  it('mixes syntax, indentation and option errors, sorted by line then column', () => {
    const script = ['sleep: x', 'fork:', '    noop:', '  noop:', 'noop', '\tretry:'].join('\n');
    expect(validateScript(script).map((p) => [p.line, p.column])).toEqual([
      [1, 8],
      [4, 3],
      [5, 1],
      [6, 2],
      [6, 8],
    ]);
  });

  it('still checks the children of a line with a syntax error', () => {
    expect(messages('fork\n  sleep: x\n').map((m) => m.split(':').slice(0, 2).join(':'))).toEqual(['1:1', '2:10']);
  });
});

describe('assertValidScript', () => {
  it('returns the tree of a valid script', () => {
    expect(assertValidScript('noop:\n').children[0]?.path).toBe('/0-noop');
  });

  it('throws a ScriptError carrying every problem', () => {
    let caught: unknown;
    try {
      assertValidScript('sleep: x\nbogus:\n');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ScriptError);
    const error = caught as ScriptError;
    expect(error.code).toBe('script_invalid');
    expect(error.problems.map((p) => p.line)).toEqual([1, 2]);
    expect(error.message).toContain('line 2, column 1: unknown task type `bogus`');
  });
});
