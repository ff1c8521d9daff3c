/**
 * `npm run chaos`: the workload of workload.ts under one fault family per scenario, each checked against the ledger
 * its commands wrote (ledger.ts). Prints one row per scenario and `chaos: N scenarios, D duplicated, L lost`; exits
 * 1 when D or L is not 0. KUROKO_CHAOS_ONLY=1,7 runs only those scenarios. Every process it starts is ended, and
 * its MariaDB (a throwaway `mariadbd`, never the machine's shared server) and folders removed, even on failure.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cutOffAgentScenario, logSinkScenario, mariadbScenario, skewScenario } from './self-hosted';
import { devKillScenario } from './dev-kill';
import { closeAwsStack, dataApiFaultScenario, lambdaCutOffScenario } from './lambda';
import { startMariadb, type Mariadb } from './mariadb';
import { endAll } from './processes';
import { closingLine, formatRow, header, type ScenarioRow } from './report';
import type { Harness } from './scenario';

const SCENARIOS: readonly [string, (h: Harness) => Promise<ScenarioRow>][] = [
  ['1', mariadbScenario],
  ['2', dataApiFaultScenario],
  ['3', lambdaCutOffScenario],
  ['4', cutOffAgentScenario],
  ['5', skewScenario],
  ['6', logSinkScenario],
  ['7', devKillScenario],
];

async function main(): Promise<number> {
  const only = process.env.KUROKO_CHAOS_ONLY?.split(',').map((s) => s.trim());
  const root = mkdtempSync(join(tmpdir(), 'kuroko-chaos-'));
  const started = performance.now();
  const log = (message: string) => process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${message}\n`);
  let mariadb: Mariadb | undefined;
  const rows: ScenarioRow[] = [];
  const stop = () => {
    void endAll(true).finally(() => {
      void mariadb?.close().finally(() => process.exit(130));
    });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    mariadb = await startMariadb();
    const harness: Harness = { root, mariadb, log };
    for (const [id, run] of SCENARIOS) {
      if (only && !only.includes(id)) continue;
      log(`scenario ${id}: start`);
      try {
        const row = await run(harness);
        rows.push(row);
        for (const finding of row.findings.slice(0, 10)) log(`  ${row.scenario}: ${finding}`);
        if (row.unsettled > 0) log(`  ${row.scenario}: ${row.unsettled} instance(s) still in error or waiting at the end (movable, not lost)`);
      } catch (error) {
        log(`scenario ${id} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        rows.push({ scenario: `${id} (harness error)`, instances: 0, executions: 0, duplicated: 0, lost: 1, announcedTwice: 0, alerts: 0, recoverSeconds: Number.NaN, unsettled: 0, agentRestarts: 0, findings: [] });
      } finally {
        await endAll();
      }
    }
  } finally {
    await closeAwsStack();
    await endAll();
    await mariadb?.close();
    await endAll(true);
    rmSync(root, { recursive: true, force: true });
  }
  console.log(header());
  for (const row of rows) console.log(formatRow(row));
  const closing = closingLine(rows);
  console.log(closing.line);
  log(`done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  return closing.failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
