/** One printed row per scenario, and the closing line. */
import type { CheckResult } from './ledger';

export interface ScenarioRow extends CheckResult {
  scenario: string;
  /** Seconds from the fault's end until a probe instance launched then had finished. */
  recoverSeconds: number;
  /** Instances that did not reach finished or canceled while the harness retried and skipped (not a loss). */
  unsettled: number;
  /** Agents started again after a failure, as systemd does on EC2 (processes.ts, RestartOnFailure). */
  agentRestarts: number;
}

const COLUMNS = ['scenario', 'instances', 'executions', 'ran twice', 'lost', 'announced twice', 'alerts', 'recover s', 'agent restarts'] as const;
const WIDTHS = [44, 9, 10, 9, 5, 15, 6, 9, 14];

function cells(values: readonly string[]): string {
  return values.map((v, i) => (i === 0 ? v.padEnd(WIDTHS[i]!) : v.padStart(WIDTHS[i]!))).join(' ');
}

export function header(): string {
  return cells(COLUMNS);
}

export function formatRow(row: ScenarioRow): string {
  const recover = Number.isFinite(row.recoverSeconds) ? row.recoverSeconds.toFixed(1) : 'never';
  return cells([row.scenario, String(row.instances), String(row.executions), String(row.duplicated), String(row.lost), String(row.announcedTwice), String(row.alerts), recover, String(row.agentRestarts)]);
}

export function closingLine(rows: readonly ScenarioRow[]): { line: string; failed: boolean } {
  const duplicated = rows.reduce((sum, r) => sum + r.duplicated, 0);
  const lost = rows.reduce((sum, r) => sum + r.lost, 0);
  return { line: `chaos: ${rows.length} scenarios, ${duplicated} duplicated, ${lost} lost`, failed: duplicated !== 0 || lost !== 0 };
}
