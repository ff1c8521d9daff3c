/**
 * The task types a script may use. `root` is Kuroko2's registry alias of `sequence` (a user may write
 * `root:`), and `subprocess` is its alias of `sub_process`; both stay distinct in paths.
 */
export const TASK_TYPES = [
  'root',
  'sequence',
  'noop',
  'echo',
  'env',
  'execute',
  'queue',
  'timeout',
  'expected_time',
  'sleep',
  'auto_skip_error',
  'fork',
  'parallel_fork',
  'sub_process',
  'subprocess',
  'wait',
  'retry',
  'rails_env',
] as const;
export type TaskType = (typeof TASK_TYPES)[number];

/** Kuroko2 task types this project refuses, with the reason shown to the user (D3). */
export const REJECTED_TASK_TYPES: Readonly<Record<string, string>> = {
  kuroko_runner:
    '`kuroko_runner` is not supported: it runs Ruby scripts inside a Kuroko2 Rails installation (Rails-only); use `execute:` instead',
};

const taskTypeSet: ReadonlySet<string> = new Set(TASK_TYPES);

/** Whether `type` names a task this project runs. */
export function isTaskType(type: string): type is TaskType {
  return taskTypeSet.has(type);
}
