/**
 * The long-running composition root of `kuroko dev` and `kuroko server`: the HTTP app, the processor,
 * scheduler, notifier and monitor loops, and (in the local mode) in-process agents, over one database.
 * Nothing here holds state a restart cannot rebuild from the rows.
 */
import type { Logger } from '../../core/ports';
import { trimBaseUrl } from '../../core/urls';
import { mkdir } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { describeError } from '../../core/errors';
import { serve, type ServerType } from '@hono/node-server';
import { createAgent, type Agent, type AgentLogger } from '../../agent/agent';
import { startSpawner, type Spawner } from '../../agent/spawner';
import { FileLogSink } from '../../adapters/logs/file-log-sink';
import { createDatabase, type DatabaseHandle } from '../../db/connection';
import { migrateToLatest } from '../../db/migrator';
import { createEngineServices, type EngineServices } from '../../app/engine-services';
import { createHttpApp } from '../../http/http-app';
import type { ConsoleConfig } from '../../http/console/console-config';
import { LocalSignIn } from '../../http/console/local-sign-in';
import { createConsoleChannel, createHttpChannels, type NotificationSettings } from '../../adapters/channels/notification-channels';
import type { MonitorSettings } from '../../core/services/monitor-service';
import { createBackgroundLoop, type BackgroundLoop } from '../../app/background-loop';
import { DEFAULT_RETENTION_DAYS } from '../../core/services/retention-service';
import { monitorPass, notifierPass, processorPass, retentionPass, schedulerPass } from '../../app/passes';
import { NUDGE_TARGET, type NudgeTarget, type Pass } from '../../app/run-while-busy';
import type { CustomTasks } from '../../core/dsl/custom-tasks';

/**
 * How long the notifier gathers nudges before it runs: a busy processor commits hundreds of steps a second and
 * nudges it after each, while one run delivers everything announced so far (its poll is notifierMs anyway).
 */
const NOTIFIER_NUDGE_DELAY_MS = 100;
/** The retention pass runs once a day (and once at start). */
const RETENTION_INTERVAL_MS = 86_400_000;
import { createFinishWatch } from '../../app/finish-watch';
import { DEFAULT_HOT_POLL_MS } from '../../core/poll-pace';

export type RuntimeLogger = Logger;

export interface RuntimeIntervals {
  processorMs: number;
  schedulerMs: number;
  notifierMs: number;
  monitorMs: number;
  /** How often in-process agents look for work when not nudged. */
  agentPollMs: number;
  /** How often in-process agents heart-beat (the monitor's worker-lost threshold must exceed it). */
  agentHeartbeatMs: number;
  /** How often the retention pass runs (daily unless set). */
  retentionMs?: number;
  /**
   * How often the server looks for finishes of separate agents while commands are in flight: default 2 ms without
   * in-process agents, off with them (their finishes nudge the processor, and on SQLite the look shares the thread
   * that serves HTTP); 0 turns it off.
   */
  finishWatchMs?: number;
}

export const DEFAULT_INTERVALS: RuntimeIntervals = {
  processorMs: 1_000,
  schedulerMs: 5_000,
  notifierMs: 2_000,
  monitorMs: 10_000,
  agentPollMs: 1_000,
  agentHeartbeatMs: 5_000,
};

export interface RuntimeOptions {
  databaseUrl: string;
  host: string;
  port: number;
  /** In-process agents (the local mode); 0 runs none. */
  agents: number;
  agentSlots: number;
  /** Where command output files go. */
  logDir: string;
  intervals: RuntimeIntervals;
  declaredQueues: readonly string[];
  /** Notification channels' settings; links default to this runtime's own URL. */
  notification: Omit<NotificationSettings, 'links'> & { baseUrl: string | undefined };
  monitor: Partial<MonitorSettings>;
  /** Print every event on the console (the local mode's channel). */
  consoleNotifications: boolean;
  logger: RuntimeLogger;
  /** Extra work run once the database is ready and before the loops start (seeding, API clients). */
  prepare?: (services: EngineServices) => Promise<void>;
  /** Serve the web console next to the API. */
  console?: ConsoleConfig;
  /** Custom task types (the command reads KUROKO_CUSTOM_TASKS or KUROKO_CUSTOM_TASKS_FILE); default: none. */
  customTasks?: CustomTasks;
  /** The global retention policy in days (KUROKO_RETENTION_DAYS): 0 keeps forever; default 90. */
  retentionDays?: number;
}

export interface Runtime {
  /** The base URL the HTTP app listens on. */
  url: string;
  /** A fresh one-time console sign-in link, when the console offers them. */
  consoleSignInLink?: () => string;
  services: EngineServices;
  loops: Record<'processor' | 'scheduler' | 'notifier' | 'monitor' | 'retention', BackgroundLoop>;
  agents: Agent[];
  /** Stops taking work, drains the agents, stops the loops and closes the server and the database. */
  stop(): Promise<void>;
}

/** Starts everything; resolves once the HTTP server listens. */
export async function startRuntime(options: RuntimeOptions): Promise<Runtime> {
  const { logger } = options;
  const handle: DatabaseHandle = createDatabase(options.databaseUrl);
  let spawner: Spawner | undefined;
  // A start that fails (database refused, port in use) closes the pool, so the command exits with its message
  // instead of hanging on open sockets.
  const closeOnFailure = async <T>(step: Promise<T>): Promise<T> => {
    try {
      return await step;
    } catch (error) {
      await spawner?.close();
      await handle.close().catch(() => undefined);
      throw error;
    }
  };
  await closeOnFailure(migrateToLatest(handle.db));

  const loops = {} as Runtime['loops'];
  const agents: Agent[] = [];
  const nudgeAgents = () => {
    for (const agent of agents) agent.nudge();
  };
  const services = createEngineServices(handle, {
    declaredQueues: options.declaredQueues,
    ...(options.customTasks ? { customTasks: options.customTasks } : {}),
    onChange: () => loops.processor?.nudge(),
  });
  await closeOnFailure(Promise.resolve(options.prepare?.(services)));

  const loopLogger = { error: (message: string, error: unknown) => logger.error(message, { error: describeError(error) }) };
  // Separate agents reach only the database: the finish watch nudges the processor when one of their commands
  // ends, and a committed step wakes it to watch closely again (app/finish-watch.ts, issue 18).
  let processing = false;
  const watchedRun = async <R>(run: () => Promise<R>): Promise<R> => {
    processing = true;
    try {
      return await run();
    } finally {
      processing = false;
    }
  };
  const finishWatch = createFinishWatch({
    probe: () => services.stores.finishProbe.probe(),
    onFinished: () => loops.processor?.nudge(),
    pace: { hotMs: options.intervals.finishWatchMs ?? (options.agents === 0 ? DEFAULT_HOT_POLL_MS : 0), idleMs: options.intervals.processorMs },
    onError: (error) => loopLogger.error('finish watch failed', error),
    paused: () => processing,
  });
  // What each pass wakes (app/passes.ts) reaches it here in process: another loop, or the in-process agents.
  const nudge = (target: NudgeTarget) => {
    if (target === NUDGE_TARGET.agents) nudgeAgents();
    else loops[target]?.nudge();
  };
  const loopOf = <R extends object>(pass: Pass<R>, intervalMs: number, more: { afterPass?: (result: R) => void; nudgeDelayMs?: number } = {}) =>
    createBackgroundLoop({ pass, intervalMs, nudge, logger: loopLogger, ...more });
  const processor = processorPass(services);
  loops.processor = loopOf({ ...processor, run: (budget) => watchedRun(() => processor.run(budget)) }, options.intervals.processorMs, {
    afterPass: (result) => {
      if (result.committed > 0) finishWatch.wake();
    },
  });
  loops.scheduler = loopOf(schedulerPass(services), options.intervals.schedulerMs);

  if (options.agents > 0) await closeOnFailure(mkdir(options.logDir, { recursive: true }));
  const logSink = new FileLogSink(options.logDir);
  const agentLogger: AgentLogger = { info: logger.info, warn: logger.warn, error: logger.error };
  // The agents spawn their commands through a small spawner process (agent/spawner.ts): spawn() blocks the thread
  // that calls it, here the one of the passes and the API.
  if (options.agents > 0) spawner = startSpawner({ logger: agentLogger });
  for (let i = 0; i < options.agents; i++) {
    agents.push(
      createAgent({
        database: handle,
        ids: services.ids,
        hostname: options.agents > 1 ? `${osHostname()}-agent-${i + 1}` : osHostname(),
        slots: options.agentSlots,
        pollIntervalMs: options.intervals.agentPollMs,
        heartbeatIntervalMs: options.intervals.agentHeartbeatMs,
        logSink,
        statusDir: options.logDir,
        ...(spawner !== undefined ? { startCommand: spawner.start } : {}),
        logger: agentLogger,
        onExecutionFinished: () => loops.processor.nudge(),
      }),
    );
  }

  const localSignIn = options.console?.localSignIn ? new LocalSignIn() : undefined;
  const app = createHttpApp({
    services,
    onLaunch: () => loops.processor.nudge(),
    declaredQueues: options.declaredQueues,
    outputs: logSink,
    ...(options.console ? { console: { config: options.console, ...(localSignIn ? { localSignIn } : {}) } } : {}),
  });
  const server = await closeOnFailure(listen(app.fetch, options.host, options.port));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const url = `http://${options.host === '0.0.0.0' ? '127.0.0.1' : options.host}:${port}`;

  const links = { baseUrl: trimBaseUrl(options.notification.baseUrl ?? url) };
  const channels = createHttpChannels({ ...options.notification, links });
  if (options.consoleNotifications) channels.push(createConsoleChannel({ links, write: (line) => logger.info(line) }));
  loops.notifier = loopOf(
    notifierPass(services, {
      channels: () => channels,
      onError: (error, context) => logger.warn('a notification failed; it will be retried', { ...context, error: describeError(error) }),
    }),
    options.intervals.notifierMs,
    { nudgeDelayMs: NOTIFIER_NUDGE_DELAY_MS },
  );
  loops.monitor = loopOf(monitorPass(services, options.monitor), options.intervals.monitorMs);

  // Daily: deletes finished and canceled instances past their retention, with their command log files.
  let shuttingDown = false;
  const retention = retentionPass(services, {
    globalDays: options.retentionDays ?? DEFAULT_RETENTION_DAYS,
    removeOutput: async (executionIds) => {
      for (const id of executionIds) await logSink.remove(id);
    },
    // A long backlog stops between batches at shutdown rather than holding it up.
    shouldContinue: () => !shuttingDown,
  });
  loops.retention = loopOf(retention, options.intervals.retentionMs ?? RETENTION_INTERVAL_MS, {
    afterPass: (result) => {
      if (result.deletedInstances > 0) logger.info('retention pass', { deletedInstances: result.deletedInstances, batches: result.batches });
    },
  });

  for (const agent of agents) await agent.start();
  for (const loop of Object.values(loops)) loop.start();
  finishWatch.start();

  let stopping: Promise<void> | undefined;
  const consoleBase = trimBaseUrl(options.console?.baseUrl ?? url);
  return {
    url,
    ...(localSignIn ? { consoleSignInLink: () => localSignIn.link(consoleBase) } : {}),
    services,
    loops,
    agents,
    stop() {
      shuttingDown = true;
      stopping ??= (async () => {
        await Promise.all(agents.map((agent) => agent.stop('shutting down')));
        await spawner?.close();
        await Promise.all([...Object.values(loops).map((loop) => loop.stop()), finishWatch.stop()]);
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await handle.close();
      })();
      return stopping;
    },
  };
}

function listen(fetch: (request: Request) => Response | Promise<Response>, hostname: string, port: number): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, hostname, port }, () => resolve(server));
    server.once('error', reject);
  });
}

/** Where the local mode keeps its SQLite file and command logs. */
export function dataDirPaths(dataDir: string): { databaseFile: string; logDir: string; credentialsFile: string } {
  return { databaseFile: join(dataDir, 'kuroko.db'), logDir: join(dataDir, 'logs'), credentialsFile: join(dataDir, 'credentials.json') };
}
