/**
 * `npm run bench:idle`: one idle day of the AWS mode, with and without idle sleep, and what it means for Aurora.
 *
 * Each mode runs in its own process (the handlers read their configuration at import, as on a cold start). The
 * real scheduler, processor, monitor and notifier handlers are invoked with EventBridge's scheduled event once a
 * simulated minute for 24 hours, over the local Data API server on MariaDB. The clock is simulated by shifting
 * `Date`, so a day takes seconds to a minute; SSM and SNS are served on loopback (the real SDK clients reach them
 * through AWS_ENDPOINT_URL_SSM and AWS_ENDPOINT_URL_SNS). One definition launches a `noop:` job daily at 03:00.
 *
 * It prints, per mode, the Data API calls of the day, the minutes in which any tick touched the database, when
 * the 03:00 job was launched, and the minutes Aurora would stay awake given `autoPauseMinutes` (it pauses that
 * long after the last activity). The provisioner is not run: it needs EC2, and it skips exactly like the others.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { INITIAL_SLEEP_VALUE } from '../aws/sleep-gate';
import { createDatabase } from '../db/connection';
import { migrateToLatest } from '../db/migrator';
import { ENV_KEYS } from '../functions/shared/env-keys';
import { startDataApiServer } from '../test/helpers/data-api-server';
import { insertDefinition } from '../test/helpers/engine-fixtures';
import { startFakeAws } from '../test/helpers/fake-aws-server';
import { createMysqlDatabase } from '../test/helpers/test-database';
import { applyEnv, lambdaContext, scheduledEvent } from '../test/functions/function-fixtures';

const MYSQL_URL = process.env.KUROKO_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

const MINUTE_MS = 60_000;
const DAY_MINUTES = 24 * 60;
const START = Date.parse('2026-03-02T00:00:30Z');
const DAILY_CRON = '0 3 * * *';
const AUTO_PAUSE_MINUTES = [10, 5];
/** List price, us-east-1: 0.12 USD per ACU-hour; the smallest running size is 0.5 ACU. */
const USD_PER_ACU_HOUR = 0.12;
const MIN_ACU = 0.5;
const MONTH_DAYS = 730 / 24;
const MODES = ['on', 'off'] as const;
type Mode = (typeof MODES)[number];

interface DayResult {
  mode: Mode;
  dataApiCalls: number;
  /** Simulated minutes (0-based from midnight) in which a tick made at least one Data API call. */
  activeMinutes: number[];
  /** When the 03:00 job's instance was created, ISO. */
  launchedAt: string | undefined;
  invocations: number;
  wallSeconds: number;
}

/** Shifts every `Date` (and Date.now) by `offset` ms; timers and performance.now stay real. */
function simulatedClock(startMs: number) {
  const RealDate = Date;
  let offset = startMs - RealDate.now();
  class ShiftedDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(RealDate.now() + offset);
      else super(...(args as [string | number]));
    }
    static override now(): number {
      return RealDate.now() + offset;
    }
  }
  globalThis.Date = ShiftedDate as DateConstructor;
  return { set: (ms: number) => (offset = ms - RealDate.now()) };
}

async function runDay(mode: Mode): Promise<DayResult> {
  const clock = simulatedClock(START - MINUTE_MS);
  const scratch = await createMysqlDatabase(MYSQL_URL);
  const server = await startDataApiServer({ mysqlUrl: scratch.url });
  const setup = createDatabase(scratch.url);
  await migrateToLatest(setup.db);
  await insertDefinition(setup.db, 1, 'noop:\n', { crons: [DAILY_CRON], createdAt: new Date(START - MINUTE_MS), catchUpWindowMinutes: 0 });
  const aws = await startFakeAws(INITIAL_SLEEP_VALUE);
  applyEnv({
    [ENV_KEYS.stage]: 'bench',
    [ENV_KEYS.dbClusterArn]: server.resourceArn,
    [ENV_KEYS.dbSecretArn]: server.secretArn,
    [ENV_KEYS.dbName]: scratch.name,
    [ENV_KEYS.dataApiEndpoint]: server.endpoint,
    [ENV_KEYS.powertoolsLogLevel]: 'ERROR',
    [ENV_KEYS.alertTopicArn]: 'arn:aws:sns:us-east-1:123456789012:kuroko-bench-alerts',
    [ENV_KEYS.metricsNamespace]: 'KurokoBench',
    ...(mode === 'on' ? { [ENV_KEYS.sleepParameter]: '/kuroko/bench/sleep' } : {}),
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL_SSM: aws.endpoint,
    AWS_ENDPOINT_URL_SNS: aws.endpoint,
    AWS_ACCESS_KEY_ID: 'bench',
    AWS_SECRET_ACCESS_KEY: 'bench',
  });
  const handlers = await Promise.all([
    import('../functions/scheduler/handler'),
    import('../functions/processor/handler'),
    import('../functions/monitor/handler'),
    import('../functions/notifier/handler'),
  ]);
  // The notifier writes its metric as an EMF line on stdout; this process's stdout carries only the result.
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = (() => true) as typeof process.stdout.write;
  const activeMinutes: number[] = [];
  let invocations = 0;
  const began = performance.now();
  try {
    for (let minute = 0; minute < DAY_MINUTES; minute++) {
      const at = START + minute * MINUTE_MS;
      clock.set(at);
      const before = server.callCount();
      for (const { handler } of handlers) {
        await (handler as (event: unknown, context: unknown) => Promise<unknown>)(
          scheduledEvent('kuroko-bench-Tick', new Date(at).toISOString()),
          lambdaContext('kuroko-bench'),
        );
        invocations++;
      }
      if (server.callCount() > before) activeMinutes.push(minute);
      if (minute % 240 === 0) process.stderr.write(`  ${mode}: ${minute / 60} h simulated\n`);
    }
  } finally {
    process.stdout.write = write;
  }
  const dataApiCalls = server.callCount();
  const launched = await setup.db.selectFrom('job_instances').select('created_at').where('job_definition_id', '=', 1).executeTakeFirst();
  await Promise.all(handlers.map((h) => h.runtime.close()));
  await setup.close();
  await aws.close();
  await server.close();
  await scratch.drop();
  return {
    mode,
    dataApiCalls,
    activeMinutes,
    launchedAt: launched ? new Date(launched.created_at).toISOString() : undefined,
    invocations,
    wallSeconds: (performance.now() - began) / 1000,
  };
}

/** Minutes of the day Aurora is awake: each active minute and the autoPause minutes after it. */
function awakeMinutes(active: readonly number[], autoPauseMinutes: number): number {
  const awake = new Set<number>();
  for (const minute of active) for (let m = minute; m <= minute + autoPauseMinutes && m < DAY_MINUTES; m++) awake.add(m);
  return awake.size;
}

function report(results: DayResult[]): void {
  const lines = [
    `One idle day of the AWS mode (4 ticking functions, a noop job daily at 03:00 UTC), simulated minute by minute.`,
    '',
    '| idle sleep | Data API calls a day | minutes touching the database | 03:00 job created at | wall time |',
    '|---|---:|---:|---|---:|',
    ...results.map(
      (r) =>
        `| ${r.mode} | ${r.dataApiCalls.toLocaleString('en-US')} | ${r.activeMinutes.length} of ${DAY_MINUTES} | ${r.launchedAt ?? 'never'} | ${r.wallSeconds.toFixed(0)} s |`,
    ),
    '',
    '| idle sleep | autoPauseMinutes | Aurora awake, minutes a day | Aurora compute, USD a month at 0.5 ACU |',
    '|---|---:|---:|---:|',
  ];
  for (const r of results) {
    for (const pause of AUTO_PAUSE_MINUTES) {
      const awake = awakeMinutes(r.activeMinutes, pause);
      const usd = (awake / 60) * MONTH_DAYS * MIN_ACU * USD_PER_ACU_HOUR;
      lines.push(`| ${r.mode} | ${pause} | ${awake} | ${usd.toFixed(2)} |`);
    }
  }
  lines.push('', 'Aurora awake = every minute a tick touched the database, plus autoPauseMinutes after it (resume time not counted).');
  process.stdout.write(`${lines.join('\n')}\n`);
}

const modeArg = process.argv.indexOf('--mode');
if (modeArg >= 0) {
  const mode = process.argv[modeArg + 1] as Mode;
  if (!MODES.includes(mode)) throw new Error(`--mode must be one of ${MODES.join(', ')}`);
  const result = await runDay(mode);
  process.stdout.write(`${JSON.stringify(result)}\n`);
} else {
  const results: DayResult[] = [];
  for (const mode of MODES) {
    process.stderr.write(`idle sleep ${mode}: simulating a day...\n`);
    const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--mode', mode], {
      stdio: ['ignore', 'pipe', 'inherit'],
      encoding: 'utf8',
      maxBuffer: 16 * 1024 * 1024,
    });
    if (child.status !== 0) throw new Error(`the ${mode} run failed (exit ${child.status})`);
    results.push(JSON.parse(child.stdout.trim().split('\n').at(-1)!) as DayResult);
  }
  report(results);
}
