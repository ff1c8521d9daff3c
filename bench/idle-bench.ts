/**
 * `npm run bench:idle`: one idle day of the AWS mode, with and without idle sleep, and what it means for Aurora.
 *
 * Each mode runs in its own process (the handlers read their configuration at import, as on a cold start). The
 * real scheduler, processor, monitor and notifier handlers are invoked with EventBridge's scheduled event once a
 * simulated minute for 24 hours, over the local Data API server on MariaDB. The clock is simulated by shifting
 * `Date`, so a day takes seconds to a minute; SSM and SNS are served on loopback (the real SDK clients reach them
 * through AWS_ENDPOINT_URL_SSM and AWS_ENDPOINT_URL_SNS). One definition launches a `noop:` job daily at 03:00, and
 * the retention function runs at 04:00 as its daily schedule does.
 *
 * It prints, per mode, the Data API calls of the day, the minutes in which any tick touched the database, when
 * the 03:00 job was launched, and the minutes Aurora would stay awake given `autoPauseMinutes` (it pauses that
 * long after the last activity). The provisioner is not run: it needs EC2, and it skips exactly like the others.
 *
 * The cluster pauses as Aurora does: the local Data API server pauses after `autoPauseMinutes` (5, the default) without a call,
 * and the first call after that starts a 15 s resume during which every call answers DatabaseResumingException.
 * The resume runs in simulated time: the Data API client's waits (db/dialects/data-api-retry.ts) advance the
 * simulated clock instead of sleeping. The bench counts failed invocations (a handler that threw: Lambda would
 * count an error and the alarm would see it), ticks skipped because the database was still resuming, whether the
 * 03:00 job launched in its minute, and, after the day, what an API request sent to the paused cluster received.
 * Last, it prices an idle month (bench/idle-cost.ts): the measured lines, and the always-on resources (alarms,
 * secrets, KMS keys) counted in the default deploy config's synthesized templates.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { INITIAL_SLEEP_VALUE } from '../adapters/aws/sleep-gate';
import { createDatabase } from '../db/connection';
import { dataApiRetryClock } from '../db/dialects/data-api-retry';
import { ApiClientRepository } from '../db/repositories/api-client-repository';
import { createEngineServices } from '../app/engine-services';
import { ensureApiClients } from '../http/api/http-auth';
import { migrateToLatest } from '../db/migrator';
import type * as ApiModule from '../functions/api/handler';
import { ENV_KEYS } from '../app/config/env-keys';
import { startDataApiServer } from '../test/helpers/data-api-server';
import { insertDefinition } from '../test/helpers/engine-fixtures';
import { startFakeAws } from '../test/helpers/fake-aws-server';
import { createMysqlDatabase } from '../test/helpers/test-database';
import { applyEnv, httpApiEvent, lambdaContext, scheduledEvent } from '../test/functions/function-fixtures';
import { alwaysOn, idleMonth } from './idle-cost';

const MYSQL_URL = process.env.KUROKO_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

const MINUTE_MS = 60_000;
const DAY_MINUTES = 24 * 60;
const START = Date.parse('2026-03-02T00:00:30Z');
const DAILY_CRON = '0 3 * * *';
const AUTO_PAUSE_MINUTES = [5, 10];
/** The server pauses after the first (the deploy config's default, 5), and a resume takes RESUME_MS. */
const RESUME_MS = 15_000;
const DAILY_HOUR = 3;
const RETENTION_HOUR = 4;
/** The retention function's name: the scheduler's nudge to it is run in the same simulated minute. */
const RETENTION_FUNCTION = 'kuroko-bench-retention';
const API_CLIENT = { name: 'bench-reader', secret: 'bench-reader-secret' };
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
  /** The 03:00 job's instance was created within the 03:00 minute. */
  launchedOnTime: boolean;
  invocations: number;
  /** Invocations that made a Data API call (the rest read the sleep parameter and returned). */
  passes: number;
  /** Hours of the day in which the notifier ran a pass (its EMF metric line is billed per hour published). */
  metricHours: number;
  /** Handler invocations that threw (Lambda errors, which the error alarms count). */
  failedInvocations: number;
  /** Ticks that returned early because the database was still resuming when their wait ended. */
  resumingSkips: number;
  /** Resumes the day started (15 s each). */
  resumes: number;
  /** Calls answered DatabaseResumingException (and retried) during the day's resumes. */
  refusedWhileResuming: number;
  /** What `GET /v1/definitions` sent to the paused cluster after the day received, and how long it took. */
  apiDuringPause: { status: number; retryAfter: string | undefined; simulatedSeconds: number; clusterBefore: string };
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
  return {
    set: (ms: number) => (offset = ms - RealDate.now()),
    /** Moves simulated time forward (the Data API client's waits during a resume). */
    advance: (ms: number) => (offset += ms),
  };
}

async function runDay(mode: Mode): Promise<DayResult> {
  const clock = simulatedClock(START - MINUTE_MS);
  // A wait for a resume passes in simulated time; the server's clock is the (shifted) Date.
  dataApiRetryClock.sleep = async (ms: number) => {
    clock.advance(ms);
  };
  const scratch = await createMysqlDatabase(MYSQL_URL);
  const server = await startDataApiServer({
    mysqlUrl: scratch.url,
    autoPause: { idleMs: (AUTO_PAUSE_MINUTES[0] ?? 0) * MINUTE_MS, resumeMs: RESUME_MS },
  });
  const setup = createDatabase(scratch.url);
  await migrateToLatest(setup.db);
  const setupServices = createEngineServices(setup);
  await ensureApiClients(
    new ApiClientRepository(setup.db, setupServices.ids, setupServices.clock),
    `${API_CLIENT.name}:${API_CLIENT.secret}:read`,
  );
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
    [ENV_KEYS.declaredQueues]: '["@default"]',
    // As the CDK app does with idle sleep: the scheduler nudges the retention function in a wake when a pass is owed.
    ...(mode === 'on'
      ? { [ENV_KEYS.sleepParameter]: '/kuroko/bench/sleep', [ENV_KEYS.retentionFunction]: RETENTION_FUNCTION, [ENV_KEYS.retentionHourUtc]: String(RETENTION_HOUR) }
      : {}),
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL_SSM: aws.endpoint,
    AWS_ENDPOINT_URL_SNS: aws.endpoint,
    AWS_ENDPOINT_URL_LAMBDA: aws.endpoint,
    AWS_ACCESS_KEY_ID: 'bench',
    AWS_SECRET_ACCESS_KEY: 'bench',
  });
  const handlers = await Promise.all([
    import('../functions/scheduler/handler'),
    import('../functions/processor/handler'),
    import('../functions/monitor/handler'),
    import('../functions/notifier/handler'),
  ]);
  const api = await import('../functions/api/handler');
  // The retention pass, on its own daily schedule (deploy config retention.hourUtc, 4 by default).
  const retention = await import('../functions/retention/handler');
  // The notifier writes its metric as an EMF line on stdout; this process's stdout carries only the result.
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = (() => true) as typeof process.stdout.write;
  const activeMinutes: number[] = [];
  let invocations = 0;
  let passes = 0;
  const metricHours = new Set<number>();
  let failedInvocations = 0;
  let resumingSkips = 0;
  const began = performance.now();
  try {
    for (let minute = 0; minute < DAY_MINUTES; minute++) {
      const at = START + minute * MINUTE_MS;
      clock.set(at);
      const before = server.callCount();
      const due: { handler: unknown; event?: unknown }[] = minute === RETENTION_HOUR * 60 ? [...handlers, retention] : [...handlers];
      aws.takeInvocations();
      for (let i = 0; i < due.length; i++) {
        const { handler, event } = due[i]!;
        invocations++;
        const callsBefore = server.callCount();
        try {
          const result = await (handler as (event: unknown, context: unknown) => Promise<unknown>)(
            event ?? scheduledEvent('kuroko-bench-Tick', new Date(at).toISOString()),
            // The retention function's 15-minute timeout; the ticks return long before theirs.
            lambdaContext('kuroko-bench', () => 15 * MINUTE_MS),
          );
          if (typeof result === 'object' && result !== null && 'databaseResuming' in result) resumingSkips++;
        } catch {
          failedInvocations++;
        }
        if (server.callCount() > callsBefore) {
          passes++;
          if (handler === handlers[3]?.handler) metricHours.add(Math.floor(minute / 60));
        }
        // A nudge to the retention function (Lambda's asynchronous invoke) runs it within the same minute.
        if (aws.takeInvocations().includes(RETENTION_FUNCTION)) due.push({ handler: retention.handler, event: { nudge: true } });
      }
      if (server.callCount() > before) activeMinutes.push(minute);
      if (minute % 240 === 0) process.stderr.write(`  ${mode}: ${minute / 60} h simulated\n`);
    }
  } finally {
    process.stdout.write = write;
  }
  // Calls the service answered; those refused while a resume ran are counted apart.
  const refusedWhileResuming = server.resumingAnswers();
  const dataApiCalls = server.callCount() - refusedWhileResuming;
  const resumes = server.resumeCount();
  const apiDuringPause = await probeApiDuringPause(api, server, clock);
  const launched = await setup.db.selectFrom('job_instances').select('created_at').where('job_definition_id', '=', 1).executeTakeFirst();
  const dailyAt = START - 30_000 + DAILY_HOUR * 60 * MINUTE_MS;
  const launchedMs = launched ? new Date(launched.created_at).getTime() : undefined;
  await Promise.all([...handlers, api, retention].map((h) => h.runtime.close()));
  await setup.close();
  await aws.close();
  await server.close();
  await scratch.drop();
  return {
    mode,
    dataApiCalls,
    activeMinutes,
    launchedAt: launchedMs !== undefined ? new Date(launchedMs).toISOString() : undefined,
    launchedOnTime: launchedMs !== undefined && launchedMs >= dailyAt && launchedMs < dailyAt + MINUTE_MS,
    invocations,
    passes,
    metricHours: metricHours.size,
    failedInvocations,
    resumingSkips,
    resumes,
    refusedWhileResuming,
    apiDuringPause,
    wallSeconds: (performance.now() - began) / 1000,
  };
}

/**
 * After the day: lets the cluster pause (autoPauseMinutes without a call), then sends `GET /v1/definitions` through
 * the api handler, as API Gateway would, and reports what came back and how long (simulated) it took.
 */
async function probeApiDuringPause(
  api: typeof ApiModule,
  server: Awaited<ReturnType<typeof startDataApiServer>>,
  clock: ReturnType<typeof simulatedClock>,
): Promise<DayResult['apiDuringPause']> {
  clock.set(START + DAY_MINUTES * MINUTE_MS + ((AUTO_PAUSE_MINUTES[0] ?? 0) + 1) * MINUTE_MS);
  const clusterBefore = server.clusterState();
  const sentAt = Date.now();
  const authorization = `Basic ${Buffer.from(`${API_CLIENT.name}:${API_CLIENT.secret}`).toString('base64')}`;
  const response = (await api.handler(
    httpApiEvent('GET', '/v1/definitions', { headers: { authorization } }) as never,
    lambdaContext('kuroko-bench-api') as never,
  )) as { statusCode: number; headers?: Record<string, string> };
  return {
    status: response.statusCode,
    retryAfter: response.headers?.['retry-after'],
    simulatedSeconds: (Date.now() - sentAt) / 1000,
    clusterBefore,
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
    '| idle sleep | Data API calls a day (answered) | minutes touching the database | 03:00 job created at | wall time |',
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
  lines.push(
    '',
    `With auto-pause after ${AUTO_PAUSE_MINUTES[0]} minutes and ${RESUME_MS / 1000} s per resume (simulated), DatabaseResumingException until it ends:`,
    '',
    '| idle sleep | resumes | calls refused while resuming | failed invocations (goal 0) | ticks skipped while resuming | 03:00 job on time | API request to the paused cluster |',
    '|---|---:|---:|---:|---:|---|---|',
    ...results.map((r) => {
      const a = r.apiDuringPause;
      const answer = `${a.status}${a.retryAfter ? ` (Retry-After ${a.retryAfter})` : ''} after ${a.simulatedSeconds.toFixed(1)} s (cluster ${a.clusterBefore} when sent)`;
      return `| ${r.mode} | ${r.resumes} | ${r.refusedWhileResuming} | ${r.failedInvocations} of ${r.invocations.toLocaleString('en-US')} | ${r.resumingSkips} | ${r.launchedOnTime ? 'yes' : 'NO'} (${r.launchedAt ?? 'never'}) | ${answer} |`;
    }),
  );
  lines.push('', 'Aurora awake = every minute a tick touched the database, plus autoPauseMinutes after it (resume time not counted).');
  const fixed = alwaysOn();
  const months = results.map((r) =>
    idleMonth(
      { invocations: r.invocations, passes: r.passes, dataApiCalls: r.dataApiCalls, awakeMinutes: awakeMinutes(r.activeMinutes, AUTO_PAUSE_MINUTES[0] ?? 0), metricHours: r.metricHours, tickingFunctions: 5 },
      fixed,
    ),
  );
  lines.push(
    '',
    `An idle month at list prices (us-east-1, USD; autoPauseMinutes ${AUTO_PAUSE_MINUTES[0]}; the default deploy config's always-on resources, counted in its templates):`,
    '',
    `| item | ${results.map((r) => `idle sleep ${r.mode}`).join(' | ')} | arithmetic (idle sleep ${results[0]?.mode}) |`,
    `|---|${results.map(() => '---:|').join('')}---|`,
    ...(months[0] ?? []).map(([item, , how], i) => `| ${item} | ${months.map((m) => (m[i]?.[1] ?? 0).toFixed(2)).join(' | ')} | ${how} |`),
    `| **total** | ${months.map((m) => `**${m.reduce((sum, [, usd]) => sum + usd, 0).toFixed(2)}**`).join(' | ')} | |`,
  );
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
