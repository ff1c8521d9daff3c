/**
 * The chaos harness's independent ledger and its checker (pure: no I/O, so test/unit covers it).
 *
 * Every command of the workload runs `mark.sh LABEL MODE` (markScript), which appends to a file outside the system:
 *   `S <instance> <key> <pid> <ms>` when it starts, `E <instance> <key> <pid> <ms> <exit>` when it ends (also on
 *   SIGTERM/SIGINT/SIGHUP, exit 143; a SIGKILL leaves no E line). `key` is the label, with `.<index>` inside a
 *   parallel fork. Appends of one short line are atomic (O_APPEND), so lines never interleave.
 *
 * The checker compares that ledger with what the database says, and counts:
 * - duplicated: a step that ran twice when it must not have: two runs of the same step overlapping in time (a
 *   retry beside a survivor, one attempt claimed twice), or a run started after a run of the same step ended
 *   with exit 0 (a step that succeeded never runs again: the engine moves on); plus instances sharing one
 *   idempotency key (a launch made twice);
 * - lost: instances neither finished nor canceled with a token no person can move (a `working` token at the end,
 *   when nothing runs any more), plus successes the database recorded that never happened in the ledger;
 * - announced twice: a `launch` or `finished` event written twice for one instance, and a webhook delivery id
 *   received twice;
 * - alerts: the monitor's events.
 */

export interface LedgerRun {
  instanceId: number;
  key: string;
  pid: number;
  startMs: number;
  /** Undefined when the run was killed with SIGKILL (or still runs). */
  endMs?: number;
  exit?: number;
}

export interface CheckedInstance {
  id: number;
  finished: boolean;
  canceled: boolean;
  idempotencyKey: string | null;
  /** Statuses of the instance's tokens (none once it finished). */
  tokenStatuses: readonly string[];
}

export interface CheckedHistory {
  instanceId: number;
  shell: string;
  exitStatus: number | null;
}

export interface CheckedEvent {
  type: string;
  instanceId: number | null;
}

export interface CheckInput {
  ledger: string;
  instances: readonly CheckedInstance[];
  histories: readonly CheckedHistory[];
  events: readonly CheckedEvent[];
  /** X-Kuroko2-Id of every webhook delivery received, in order. */
  deliveryIds: readonly string[];
  /** Pids still alive when the check runs (a survivor of a lost command). */
  alivePids?: ReadonlySet<number>;
}

export interface CheckResult {
  instances: number;
  executions: number;
  duplicated: number;
  lost: number;
  announcedTwice: number;
  alerts: number;
  /** One line per finding, for the report. */
  findings: string[];
}

export const ALERT_TYPES: ReadonlySet<string> = new Set(['not_assigned', 'process_absence', 'worker_lost', 'missed_slot', 'remind_failure', 'memory_exceeded']);
/** Events announced at most once per instance. */
const ONCE_PER_INSTANCE = ['launch', 'finished'];
const MOVABLE_TOKEN = new Set(['failure', 'waiting', 'finished']);
/** `mark.sh LABEL MODE` in a history's shell. */
const MARK_CALL = /mark\.sh\s+(\S+)\s+(\S+)/;

/** Parses ledger lines into runs (pairing each E with the S of the same pid and key); bad lines are ignored. */
export function parseLedger(text: string): LedgerRun[] {
  const runs: LedgerRun[] = [];
  const open = new Map<string, LedgerRun>();
  for (const line of text.split('\n')) {
    const parts = line.trim().split(/\s+/);
    const [kind, instance, key, pid, ms, exit] = parts;
    if ((kind !== 'S' && kind !== 'E') || key === undefined || ms === undefined) continue;
    const id = `${instance} ${key} ${pid}`;
    if (kind === 'S') {
      const run: LedgerRun = { instanceId: Number(instance), key, pid: Number(pid), startMs: Number(ms) };
      runs.push(run);
      open.set(id, run);
    } else {
      const run = open.get(id);
      if (run === undefined) continue;
      open.delete(id);
      run.endMs = Number(ms);
      run.exit = Number(exit);
    }
  }
  return runs;
}

function duplicatesOf(runs: readonly LedgerRun[], alive: ReadonlySet<number>, findings: string[]): number {
  const byStep = new Map<string, LedgerRun[]>();
  for (const run of runs) {
    const step = `${run.instanceId} ${run.key}`;
    byStep.set(step, [...(byStep.get(step) ?? []), run]);
  }
  let duplicated = 0;
  for (const [step, list] of byStep) {
    const sorted = [...list].sort((a, b) => a.startMs - b.startMs);
    for (let i = 1; i < sorted.length; i++) {
      const run = sorted[i]!;
      const earlier = sorted.slice(0, i);
      const succeeded = earlier.find((e) => e.exit === 0 && e.endMs !== undefined && e.endMs <= run.startMs);
      // A run with no end overlaps only if it is known to outlive the later start (still alive now).
      const overlapping = earlier.find((e) => (e.endMs !== undefined ? e.endMs > run.startMs : alive.has(e.pid)));
      if (succeeded || overlapping) {
        duplicated++;
        findings.push(
          succeeded
            ? `step ${step} ran again (pid ${run.pid}) after it succeeded (pid ${succeeded.pid})`
            : `step ${step} ran (pid ${run.pid}) beside an earlier run (pid ${overlapping!.pid})`,
        );
      }
    }
  }
  return duplicated;
}

/** Successes the database recorded (exit 0 histories per instance and label) beyond the ledger's exit-0 runs. */
function phantomsOf(runs: readonly LedgerRun[], histories: readonly CheckedHistory[], findings: string[]): number {
  const ledgerOk = new Map<string, number>();
  for (const run of runs) {
    if (run.exit !== 0) continue;
    const step = `${run.instanceId} ${run.key.split('.')[0]}`;
    ledgerOk.set(step, (ledgerOk.get(step) ?? 0) + 1);
  }
  const dbOk = new Map<string, number>();
  for (const history of histories) {
    const label = MARK_CALL.exec(history.shell)?.[1];
    if (label === undefined || history.exitStatus !== 0) continue;
    const step = `${history.instanceId} ${label}`;
    dbOk.set(step, (dbOk.get(step) ?? 0) + 1);
  }
  let phantoms = 0;
  for (const [step, count] of dbOk) {
    const extra = count - (ledgerOk.get(step) ?? 0);
    if (extra > 0) {
      phantoms += extra;
      findings.push(`step ${step}: ${count} successes recorded, ${ledgerOk.get(step) ?? 0} in the ledger`);
    }
  }
  return phantoms;
}

/** Checks the database's facts against the ledger. */
export function checkLedger(input: CheckInput): CheckResult {
  const findings: string[] = [];
  const runs = parseLedger(input.ledger);
  let duplicated = duplicatesOf(runs, input.alivePids ?? new Set(), findings);
  const byKey = new Map<string, number[]>();
  for (const instance of input.instances) {
    if (instance.idempotencyKey === null) continue;
    byKey.set(instance.idempotencyKey, [...(byKey.get(instance.idempotencyKey) ?? []), instance.id]);
  }
  for (const [key, ids] of byKey) {
    if (ids.length < 2) continue;
    duplicated += ids.length - 1;
    findings.push(`idempotency key ${key} launched ${ids.length} instances (${ids.join(', ')})`);
  }

  let lost = phantomsOf(runs, input.histories, findings);
  for (const instance of input.instances) {
    if (instance.finished || instance.canceled) continue;
    const stuck = instance.tokenStatuses.filter((s) => !MOVABLE_TOKEN.has(s));
    if (stuck.length === 0 && instance.tokenStatuses.length > 0) continue;
    lost++;
    findings.push(`instance ${instance.id} is stuck (tokens: ${instance.tokenStatuses.join(', ') || 'none'})`);
  }

  let announcedTwice = 0;
  const perInstance = new Map<string, number>();
  for (const event of input.events) {
    if (event.instanceId === null || !ONCE_PER_INSTANCE.includes(event.type)) continue;
    const id = `${event.instanceId} ${event.type}`;
    perInstance.set(id, (perInstance.get(id) ?? 0) + 1);
  }
  for (const [id, count] of perInstance) {
    if (count < 2) continue;
    announcedTwice += count - 1;
    findings.push(`event ${id} written ${count} times`);
  }
  const seen = new Map<string, number>();
  for (const id of input.deliveryIds) seen.set(id, (seen.get(id) ?? 0) + 1);
  for (const [id, count] of seen) {
    if (count < 2) continue;
    announcedTwice += count - 1;
    findings.push(`webhook delivery ${id} received ${count} times`);
  }

  return {
    instances: input.instances.length,
    executions: runs.length,
    duplicated,
    lost,
    announcedTwice,
    alerts: input.events.filter((e) => ALERT_TYPES.has(e.type)).length,
    findings,
  };
}

/**
 * The marker script every command runs: `mark.sh LABEL MODE` with MODE `ok`, `fail` (exit 1), `flaky` (exit 1 the
 * first time per step, then 0), `sleep:N` (N seconds, then 0) or `linger:N` (N seconds the first time per step, then
 * 1: a command cut off that way, and its quick retry). It prints a few lines while it runs.
 */
export function markScript(ledgerPath: string, stateDir: string): string {
  return `#!/bin/sh
key="$1\${KUROKO2_PARALLEL_FORK_INDEX:+.$KUROKO2_PARALLEL_FORK_INDEX}"
id="$KUROKO2_JOB_INSTANCE_ID"
now() { date +%s%3N; }
echo "S $id $key $$ $(now)" >> '${ledgerPath}'
trap 'echo "E $id $key $$ $(now) 143" >> "${ledgerPath}"; exit 143' TERM INT HUP
rc=0
case "$2" in
  fail) rc=1 ;;
  flaky) if [ ! -e '${stateDir}'/"$id.$key" ]; then : > '${stateDir}'/"$id.$key"; rc=1; fi ;;
  linger:*) n=1; if [ ! -e '${stateDir}'/"$id.$key" ]; then : > '${stateDir}'/"$id.$key"; n="\${2#linger:}"; fi; i=0; while [ "$i" -lt "$n" ]; do echo "tick $i of $key"; sleep 1 & wait $!; i=$((i+1)); done ;;
  sleep:*) n="\${2#sleep:}"; i=0; while [ "$i" -lt "$n" ]; do echo "tick $i of $key"; sleep 1 & wait $!; i=$((i+1)); done ;;
esac
echo "step $key of instance $id: exit $rc"
sleep 0.2 & wait $!
echo "E $id $key $$ $(now) $rc" >> '${ledgerPath}'
exit $rc
`;
}
