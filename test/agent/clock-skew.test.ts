/**
 * An agent whose host clock is minutes off the database's (issue 15, `npm run chaos` scenario 5) stamps its rows on
 * the database's clock: a heartbeat written 4 minutes in the past would have the monitor judge the worker lost at
 * once, and its commands with it. A real `kuroko agent` whose Date runs 4 minutes behind, on real MariaDB.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fromDbTime } from '../../db/column-codec';
import { readDatabaseClock } from '../../db/database-clock';
import { spawnTracked, endAll, KUROKO_BIN } from '../../bench/chaos/processes';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { waitFor } from '../helpers/wait-for';

const SKEW_MS = 4 * 60_000;
const PRELOAD = `const skew = Number(process.env.SKEW_MS);
const RealDate = Date;
class SkewedDate extends RealDate {
  constructor(...args) { if (args.length === 0) super(RealDate.now() + skew); else super(...args); }
  static now() { return RealDate.now() + skew; }
}
globalThis.Date = SkewedDate;
`;

let tdb: TestDatabase;
let dir: string;

beforeAll(async () => {
  tdb = await createTestDatabase('mysql');
  dir = mkdtempSync(join(tmpdir(), 'kuroko-clock-skew-'));
  writeFileSync(join(dir, 'skew.mjs'), PRELOAD);
});
afterAll(async () => {
  await endAll();
  await tdb?.close();
  rmSync(dir, { recursive: true, force: true });
});

for (const skew of [-SKEW_MS, SKEW_MS]) {
  it(`an agent ${skew < 0 ? 'behind' : 'ahead'} by 4 minutes heart-beats on the database's clock`, { timeout: 60_000 }, async () => {
    const hostname = `skewed-${skew}`;
    spawnTracked('agent', process.execPath, [KUROKO_BIN, 'agent', '--database-url', tdb.url, '--hostname', hostname, '--log-dir', join(dir, hostname), '--heartbeat-interval', '1'], {
      env: { ...process.env, NODE_OPTIONS: `--import=${join(dir, 'skew.mjs')}`, SKEW_MS: String(skew) },
    });
    // A second heartbeat, not the registration only.
    const row = await waitFor(
      async () => {
        const worker = await tdb.db.selectFrom('workers').select(['heartbeat_at', 'started_at']).where('hostname', '=', hostname).executeTakeFirst();
        return worker && fromDbTime(worker.heartbeat_at).getTime() > fromDbTime(worker.started_at).getTime() ? worker : undefined;
      },
      { timeoutMs: 30_000, description: 'the skewed agent to heart-beat' },
    );
    const reference = (await readDatabaseClock(tdb.db, 'mysql'))!;
    expect(Math.abs(fromDbTime(row.heartbeat_at).getTime() - reference.getTime())).toBeLessThan(10_000);
    expect(Math.abs(fromDbTime(row.started_at).getTime() - reference.getTime())).toBeLessThan(30_000);
  });
}
