/** Operating the fleet: working instances, unfinished executions, workers (suspend and resume) and the timelines. */
import { Hono } from 'hono';
import { ID, idParam, LIST_LIMITS, type ConsoleEnv, type ConsoleKit } from './console-context';
import { field } from './console-forms';
import { executionsPage, timelinePage, TIMELINE_PERIODS, workersPage, workingPage, type TimelinePeriod } from './operations-pages';

/** The working, executions, workers and timeline routes. */
export function operationsRoutes(kit: ConsoleKit): Hono<ConsoleEnv> {
  const { page, action, render, reads, queries } = kit;
  const app = new Hono<ConsoleEnv>();

  app.get(
    '/instances/working',
    page(async (c, user) => render(c, workingPage(kit.userCtx(c, user), await reads.workingInstances(LIST_LIMITS.working), new Date(kit.now())))),
  );

  app.get(
    '/executions',
    page(async (c, user) => render(c, executionsPage(kit.userCtx(c, user), await queries.listUnfinishedExecutions(LIST_LIMITS.executions)))),
  );

  app.get(
    '/workers',
    page(async (c, user) => {
      const ctx = kit.userCtx(c, user, true);
      return render(c, workersPage(ctx, await queries.listWorkers()));
    }),
  );

  app.post(
    `/workers/:id${ID}/suspend`,
    action(async (c, user, body) => {
      kit.access.requireGlobalAdmin(user, 'suspend or resume workers');
      const suspended = field(body, 'suspended') === 'true';
      const worker = await queries.setWorkerSuspended(idParam(c, 'id'), suspended);
      return kit.flashRedirect(c, '/workers', { kind: 'notice', text: suspended ? `Suspended ${worker.hostname}: it claims nothing new.` : `Resumed ${worker.hostname}.` });
    }),
  );

  app.get(
    '/timeline',
    page(async (c, user) => {
      const view = c.req.query('view') === 'jobs' ? 'jobs' : 'workers';
      const requested = c.req.query('period') ?? '1h';
      const period: TimelinePeriod = requested in TIMELINE_PERIODS ? (requested as TimelinePeriod) : '1h';
      const to = new Date(kit.now());
      const from = new Date(to.getTime() - TIMELINE_PERIODS[period]);
      const host = c.req.query('host') || undefined;
      const bars = view === 'workers' ? await reads.executionTimeline(from, to, LIST_LIMITS.timeline, host) : await reads.instanceTimeline(from, to, LIST_LIMITS.timeline);
      return render(c, timelinePage(kit.userCtx(c, user), { view, period, from, to, bars, host }));
    }),
  );

  return app;
}
