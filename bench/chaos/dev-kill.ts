/** Scenario 7: `kuroko dev` (SQLite, in-process agents) killed with SIGKILL at random moments and restarted, repeatedly. */
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { createDatabase } from '../../db/connection';
import { dataDirPaths } from '../../cli/runtime/kuroko-runtime';
import { freePort } from '../../test/helpers/free-port';
import type { ScenarioRow } from './report';
import { closeStage, conclude, openStage, randomBetween, type Harness } from './scenario';
import { httpControl, startDev, type ApiProcess } from './topology';
import { launchMains, seedDefinitions } from './workload';

const KILLS = 6;
const MAINS = 6;

export async function devKillScenario(harness: Harness): Promise<ScenarioRow> {
  const stage = await openStage(harness, '7 SIGKILL of kuroko dev, restarted x6', 7000);
  const dataDir = join(stage.dir, 'data');
  const port = await freePort();
  let dev: ApiProcess | undefined = await startDev(dataDir, port);
  const handle = createDatabase(`sqlite:${dataDirPaths(dataDir).databaseFile}`);
  try {
    await seedDefinitions(handle.db, stage.w, { webhookUrl: stage.webhook.url, cron: true });
    const control = httpControl(() => dev?.url);
    const launches = launchMains(control, stage.w, 's7', MAINS, 20_000);
    for (let i = 0; i < KILLS; i++) {
      await delay(randomBetween(1_500, 6_000));
      const pid = dev.process.child.pid!;
      process.kill(pid, 'SIGKILL');
      await dev.process.exited;
      dev = undefined;
      harness.log(`7: kuroko dev killed (${i + 1}/${KILLS})`);
      await delay(randomBetween(0, 1_000));
      dev = await startDev(dataDir, port);
    }
    await launches;
    return await conclude(harness, stage, handle.db, control);
  } finally {
    await dev?.process.stop('SIGTERM');
    await handle.close();
    await closeStage(stage);
  }
}
