/**
 * The agent's grouping of start and finish reports (agent/report-batcher.ts): reports of one turn leave together,
 * reports arriving while one is in flight leave together when it returns, and a lost fence drops only its own report.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { expect, it } from 'vitest';
import { LeaseLostError } from '../../core/errors';
import type { ExecutionHold } from '../../db/repositories/execution-queue-repository';
import { MAX_REPORTS_PER_STATEMENT, ReportBatcher } from '../../agent/report-batcher';

interface Report extends ExecutionHold {
  pid: number;
}

function recordingBatcher(lost: (item: Report) => boolean = () => false) {
  const statements: number[][] = [];
  const answers: Array<() => void> = [];
  const batcher = new ReportBatcher<Report>(async (items) => {
    statements.push(items.map((item) => item.id));
    await new Promise<void>((resolve) => answers.push(resolve));
    return items.filter(lost).map((item) => ({ id: item.id, attempt: item.attempt }));
  });
  const answerNext = async () => {
    while (answers.length === 0) await nextTurn();
    answers.shift()!();
  };
  return { batcher, statements, answerNext };
}

it('sends the reports of one turn in one statement, and those arriving meanwhile in the next', async () => {
  const { batcher, statements, answerNext } = recordingBatcher();
  const first = [1, 2, 3].map((id) => batcher.submit({ id, attempt: 1, pid: id }));
  await nextTurn();
  expect(statements).toEqual([[1, 2, 3]]);
  const second = [4, 5].map((id) => batcher.submit({ id, attempt: 1, pid: id }));
  await nextTurn();
  // The first statement is still in flight: nothing more leaves until it returns.
  expect(statements).toEqual([[1, 2, 3]]);
  await answerNext();
  await Promise.all(first);
  await answerNext();
  await Promise.all(second);
  expect(statements).toEqual([[1, 2, 3], [4, 5]]);
});

it('rejects only the report whose attempt lost the execution, with LeaseLostError', async () => {
  const { batcher, answerNext } = recordingBatcher((item) => item.id === 2);
  const results = [1, 2, 3].map((id) => batcher.submit({ id, attempt: 1, pid: id }).then(() => 'recorded', (error: unknown) => error));
  await answerNext();
  const [one, two, three] = await Promise.all(results);
  expect([one, three]).toEqual(['recorded', 'recorded']);
  expect(two).toBeInstanceOf(LeaseLostError);
});

it('rejects every report of a statement that failed, and sends the next ones all the same', async () => {
  let calls = 0;
  const batcher = new ReportBatcher<Report>(async (items) => {
    calls++;
    if (calls === 1) throw new Error('connection lost');
    return items.filter(() => false);
  });
  const failed = [1, 2].map((id) => batcher.submit({ id, attempt: 1, pid: id }).then(() => 'recorded', (error: unknown) => (error as Error).message));
  expect(await Promise.all(failed)).toEqual(['connection lost', 'connection lost']);
  await expect(batcher.submit({ id: 1, attempt: 1, pid: 1 })).resolves.toBeUndefined();
});

it(`puts at most ${MAX_REPORTS_PER_STATEMENT} reports in one statement`, async () => {
  const { batcher, statements, answerNext } = recordingBatcher();
  const all = Array.from({ length: MAX_REPORTS_PER_STATEMENT + 2 }, (_, i) => batcher.submit({ id: i + 1, attempt: 1, pid: i }));
  await answerNext();
  await answerNext();
  await Promise.all(all);
  expect(statements.map((ids) => ids.length)).toEqual([MAX_REPORTS_PER_STATEMENT, 2]);
});
