import { describe, expect, it } from 'vitest';
import {
  MAX_PARALLEL_FORK,
  parseAutoSkipErrorOption,
  parseEnvOption,
  parseMinutesOption,
  parseParallelForkOption,
  parseQueueOption,
  parseRailsEnvOption,
  parseRetryOption,
  parseSleepOption,
  parseSubProcessOption,
  parseWaitOption,
} from '../../../core/dsl/task-options';

describe('parseEnvOption', () => {
  it('reads plain, double-quoted and single-quoted values', () => {
    expect(parseEnvOption(`K=V K2="a b" K3='c \\'d'`)).toEqual({ ok: true, value: { K: 'V', K2: 'a b', K3: "c 'd" } });
  });

  it('unescapes only the quote of its own kind and keeps other backslashes', () => {
    expect(parseEnvOption('A="x \\" y" B="p\\q" C=\'\\"\'')).toEqual({ ok: true, value: { A: 'x " y', B: 'p\\q', C: '\\"' } });
  });

  it('lets later keys win', () => {
    expect(parseEnvOption('A=1 B=2 A=3')).toEqual({ ok: true, value: { A: '3', B: '2' } });
  });

  it('keeps = and quotes inside a plain value', () => {
    expect(parseEnvOption('URL=a=b&c="d"')).toEqual({ ok: true, value: { URL: 'a=b&c="d"' } });
  });

  it('reads empty quoted values and an empty or null option', () => {
    expect(parseEnvOption(`A="" B=''`)).toEqual({ ok: true, value: { A: '', B: '' } });
    expect(parseEnvOption(null)).toEqual({ ok: true, value: {} });
    expect(parseEnvOption('')).toEqual({ ok: true, value: {} });
  });

  it('rejects an unterminated quote, pointing at it', () => {
    const result = parseEnvOption('A=1 B="oops');
    expect(result).toMatchObject({ ok: false, offset: 6 });
    expect(!result.ok && result.message).toMatch(/unterminated " quote/);
    expect(parseEnvOption("A='x")).toMatchObject({ ok: false, offset: 2 });
  });

  it.each(['A', 'A=', '=1', 'A-B=1', 'A=1 junk', '"A"=1'])('rejects `%s`', (option) => {
    expect(parseEnvOption(option).ok).toBe(false);
  });
});

describe('parseMinutesOption', () => {
  it.each([
    ['30', 30],
    ['30m', 30],
    ['2h', 120],
    ['0', 0],
  ])('reads %s as %i minutes', (option, minutes) => {
    expect(parseMinutesOption(option)).toEqual({ ok: true, value: minutes });
  });

  it.each([null, '', 'abc', '1.5', '-1', '2d', '2 h', 'h', '99999999999999999999'])('rejects %s', (option) => {
    expect(parseMinutesOption(option).ok).toBe(false);
  });
});

describe('parseSleepOption', () => {
  it('reads digits as seconds', () => {
    expect(parseSleepOption('10')).toEqual({ ok: true, value: 10 });
  });

  it.each([null, '', '10s', '1m', '-1', ' 1'])('rejects %s', (option) => {
    expect(parseSleepOption(option).ok).toBe(false);
  });
});

describe('parseAutoSkipErrorOption', () => {
  it.each([
    ['true', true],
    ['1', true],
    ['TRUE', true],
    [' true ', true],
    ['True', false],
    ['false', false],
    ['yes', false],
    ['', false],
    [null, false],
  ] as const)('reads %s as %s', (option, value) => {
    expect(parseAutoSkipErrorOption(option)).toEqual({ ok: true, value });
  });
});

describe('parseQueueOption', () => {
  it('reads a queue name, with or without @', () => {
    expect(parseQueueOption('batch-1')).toEqual({ ok: true, value: 'batch-1' });
    expect(parseQueueOption('@heavy_jobs')).toEqual({ ok: true, value: '@heavy_jobs' });
    expect(parseQueueOption('x'.repeat(180))).toEqual({ ok: true, value: 'x'.repeat(180) });
  });

  it('reads blank as the default queue', () => {
    expect(parseQueueOption(null)).toEqual({ ok: true, value: '@default' });
    expect(parseQueueOption('')).toEqual({ ok: true, value: '@default' });
  });

  it.each(['a b', '@@x', 'x'.repeat(181), 'q.name', 'ü'])('rejects %s', (option) => {
    expect(parseQueueOption(option).ok).toBe(false);
  });
});

describe('parseParallelForkOption', () => {
  it('reads 1 up to the limit', () => {
    expect(parseParallelForkOption('1')).toEqual({ ok: true, value: 1 });
    expect(parseParallelForkOption(String(MAX_PARALLEL_FORK))).toEqual({ ok: true, value: MAX_PARALLEL_FORK });
  });

  it('rejects 0, which would never finish (D4)', () => {
    const result = parseParallelForkOption('0');
    expect(result.ok).toBe(false);
    expect(!result.ok && result.message).toMatch(/never finish/);
  });

  it('rejects more than the limit', () => {
    const result = parseParallelForkOption(String(MAX_PARALLEL_FORK + 1));
    expect(!result.ok && result.message).toMatch(/limit of 100/);
    expect(parseParallelForkOption('99999999999999999999').ok).toBe(false);
  });

  it.each([null, '', 'two', '-1', '1.0'])('rejects %s', (option) => {
    expect(parseParallelForkOption(option).ok).toBe(false);
  });
});

describe('parseSubProcessOption', () => {
  it('reads a definition id', () => {
    expect(parseSubProcessOption('42')).toEqual({ ok: true, value: 42 });
  });

  it.each([null, '', '0', 'abc', '4 2', '#1'])('rejects %s', (option) => {
    expect(parseSubProcessOption(option).ok).toBe(false);
  });
});

describe('parseWaitOption', () => {
  it('reads jobs split by blanks or commas with the default timeout of 60 minutes', () => {
    expect(parseWaitOption('100/daily,101/hourly  102/weekly, 103/monthly')).toEqual({
      ok: true,
      value: {
        jobs: [
          { definitionId: 100, period: 'daily', offset: 0 },
          { definitionId: 101, period: 'hourly', offset: 10 },
          { definitionId: 102, period: 'weekly', offset: 22 },
          { definitionId: 103, period: 'monthly', offset: 34 },
        ],
        timeoutMinutes: 60,
      },
    });
  });

  it.each([
    ['1/daily timeout=2h', 120],
    ['1/daily timeout=15m', 15],
    ['timeout=45 1/daily', 45],
  ])('reads the timeout of %s as %i minutes', (option, minutes) => {
    const result = parseWaitOption(option);
    expect(result.ok && result.value.timeoutMinutes).toBe(minutes);
  });

  it('accepts blanks around the slash, as Kuroko2 does', () => {
    const result = parseWaitOption('7 / daily');
    expect(result.ok && result.value.jobs).toEqual([{ definitionId: 7, period: 'daily', offset: 0 }]);
  });

  it('points at the offending item', () => {
    expect(parseWaitOption('1/daily 2/yearly')).toMatchObject({ ok: false, offset: 8 });
    expect(parseWaitOption('1/daily timeout=x')).toMatchObject({ ok: false, offset: 8 });
  });

  it.each([null, '', 'timeout=5', ',', 'daily', '1/', '/daily', '1/Daily', '0/daily'])('rejects %s', (option) => {
    expect(parseWaitOption(option).ok).toBe(false);
  });
});

describe('parseRetryOption', () => {
  it.each([
    ['count=3', { count: 3, sleepTime: 0 }],
    ['count=3 sleep_time=30', { count: 3, sleepTime: 30 }],
    ['sleep_time=5,count=2', { count: 2, sleepTime: 5 }],
    ['count=0', { count: 0, sleepTime: 0 }],
  ])('reads %s', (option, value) => {
    expect(parseRetryOption(option)).toEqual({ ok: true, value });
  });

  it('requires count', () => {
    const result = parseRetryOption('sleep_time=5');
    expect(!result.ok && result.message).toMatch(/count=N/);
    expect(parseRetryOption(null).ok).toBe(false);
    expect(parseRetryOption('').ok).toBe(false);
  });

  it('points at an unknown item', () => {
    expect(parseRetryOption('count=1 tries=2')).toMatchObject({ ok: false, offset: 8 });
    expect(parseRetryOption('count=x').ok).toBe(false);
  });
});

describe('parseRailsEnvOption', () => {
  it('reads any non-blank environment name', () => {
    expect(parseRailsEnvOption('staging')).toEqual({ ok: true, value: 'staging' });
    expect(parseRailsEnvOption('custom_env')).toEqual({ ok: true, value: 'custom_env' });
  });

  it.each([null, '', '   '])('rejects %s', (option) => {
    expect(parseRailsEnvOption(option).ok).toBe(false);
  });
});
