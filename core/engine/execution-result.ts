import type { Execution } from '../model';

/** Marks the gap between the kept head and tail of a long output. */
export const OUTPUT_ELISION = '\n… (output elided; the whole output is in the execution log) …\n';

/** The command's output as kept in the database: head, and tail when the output was longer than the head. */
export function executionOutput(execution: Pick<Execution, 'outputHead' | 'outputTail'>): string {
  return execution.outputTail ? `${execution.outputHead}${OUTPUT_ELISION}${execution.outputTail}` : execution.outputHead;
}

/** Kuroko2's result line: "[SUCCESS] `cmd` returns 0." with the output in a fenced block. */
export function formatExecutionResult(execution: Execution): string {
  const verdict = execution.exitStatus === 0 ? 'SUCCESS' : 'FAILURE';
  let how: string;
  if (execution.lostReason) how = `was lost: ${execution.lostReason}`;
  else if (execution.termSignal) how = `was stopped by ${execution.termSignal}`;
  else how = `returns ${execution.exitStatus ?? 'no status'}`;
  const output = executionOutput(execution);
  const block = output.length > 0 ? `\n\n\`\`\`\n${output.replace(/\n$/, '')}\n\`\`\`` : '';
  return `[${verdict}] \`${execution.shell}\` ${how}.${block}`;
}
