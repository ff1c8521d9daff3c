/**
 * Instances: launching one from a definition's page, the instance page and its live view, and the operations on
 * a running instance (cancel, retry or skip a token, terminate a command).
 */
import { Hono } from 'hono';
import { parseScriptRecovering } from '../../core/dsl/script-parser';
import { subProcessTargets } from '../../core/dsl/token-budget';
import { ConflictError, NotFoundError, ScriptError, ValidationError } from '../../core/errors';
import { INSTANCE_STATUS, instanceStatus } from '../../core/model';
import { DEFAULT_HTTP_LIMITS } from '../api/http-schemas';
import type { ConsoleUser } from './console-access';
import { BadRequest, ID, idParam, STATUS, type ConsoleEnv, type ConsoleKit, type Ctx } from './console-context';
import { field, parseEnvLines } from './console-forms';
import type { Flash } from './console-session';
import { showDefinition } from './definition-routes';
import { executionsFragment, FRAGMENT_IDS, instancePage, logLine, summaryFragment, tokensFragment, type InstanceView } from './instance-page';

const INSTANCE = `/definitions/:id${ID}/instances/:iid${ID}`;

/** The launch, instance page and instance operation routes. */
export function instanceRoutes(kit: ConsoleKit): Hono<ConsoleEnv> {
  const { access, definitions, queries, services, page, action, render, flashRedirect } = kit;
  const app = new Hono<ConsoleEnv>();

  app.post(
    `/definitions/:id${ID}/instances`,
    action(async (c, user, body) => {
      const id = idParam(c, 'id');
      await access.requireDefinitionAdmin(user, id, 'launch this definition');
      const definition = await definitions.get(id);
      const script = field(body, 'script');
      const envText = field(body, 'env');
      const env = parseEnvLines(envText);
      const adHoc = script.replace(/\r\n/g, '\n');
      const parsed = kit.schemas.launch.safeParse({ env: env.env, ...(adHoc.trim() !== '' && adHoc !== definition.script ? { script: adHoc } : {}) });
      if (env.problems.length > 0 || !parsed.success) {
        const message = [...env.problems, ...(parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`))].join('; ');
        return showDefinition(kit, c, user, id, { script, env: envText, problems: [], error: message }, STATUS.unprocessable);
      }
      // An ad-hoc script may start other definitions as sub processes: only those the person administers.
      if (parsed.data.script !== undefined) {
        for (const target of subProcessTargets(parseScriptRecovering(parsed.data.script).root)) {
          if (target !== id && (await definitions.find(target))) await access.requireDefinitionAdmin(user, target, `start job definition ${target} as a sub process`);
        }
      }
      try {
        const result = await services.operations.launch({
          definitionId: id,
          launchedBy: `console (${user.email})`,
          ...(Object.keys(parsed.data.env ?? {}).length > 0 ? { env: parsed.data.env } : {}),
          ...(parsed.data.script !== undefined ? { script: parsed.data.script } : {}),
        });
        if (!result.blocked) kit.onLaunch();
        const flash: Flash = result.blocked
          ? { kind: 'error', text: 'Not launched: another instance is working or failed, and this definition does not allow overlap. The new instance was canceled.' }
          : { kind: 'notice', text: `Launched instance #${result.instance.id}.` };
        return flashRedirect(c, `/definitions/${id}/instances/${result.instance.id}`, flash);
      } catch (error) {
        if (error instanceof ScriptError) {
          return showDefinition(kit, c, user, id, { script, env: envText, problems: error.problems, error: 'The script has errors; nothing was launched.' }, STATUS.unprocessable);
        }
        if (error instanceof ValidationError) return showDefinition(kit, c, user, id, { script, env: envText, problems: [], error: error.message }, STATUS.unprocessable);
        throw error;
      }
    }),
  );

  const instanceView = async (c: Ctx, user: ConsoleUser): Promise<InstanceView> => {
    const id = idParam(c, 'id');
    const [{ definitionName, ...read }, canAdminister] = await Promise.all([kit.reads.instancePage(id, idParam(c, 'iid')), access.canAdminister(user, id)]);
    return { definition: { id, name: definitionName }, ...read, canAdminister, user, now: new Date(kit.now()) };
  };

  app.get(
    INSTANCE,
    page(async (c, user) => {
      const view = await instanceView(c, user);
      const logs = await queries.listLogs(view.detail.instance.id, { limit: DEFAULT_HTTP_LIMITS.maxPageSize, offset: 0 });
      return render(c, instancePage(kit.userCtx(c, user, true), view, logs));
    }),
  );

  app.get(
    `${INSTANCE}/live`,
    page(async (c, user) => {
      const view = await instanceView(c, user);
      const logsParam = c.req.query('logs');
      // `logs=1e400` is Infinity to Number(); only a plain count is a log offset.
      if (logsParam !== undefined && logsParam !== '' && !/^\d{1,9}$/.test(logsParam)) throw new BadRequest('logs must be a count of log lines already shown');
      const offset = logsParam ? Number(logsParam) : 0;
      const logs = await queries.listLogs(view.detail.instance.id, { limit: DEFAULT_HTTP_LIMITS.maxPageSize, offset });
      return c.json({
        status: instanceStatus(view.detail.instance),
        done: instanceStatus(view.detail.instance) !== INSTANCE_STATUS.working,
        fragments: {
          [FRAGMENT_IDS.summary]: summaryFragment(view).toString(),
          [FRAGMENT_IDS.tokens]: tokensFragment(view).toString(),
          [FRAGMENT_IDS.executions]: executionsFragment(view).toString(),
        },
        logs: logs.map((l) => logLine(l).toString()),
        logCount: offset + logs.length,
      });
    }),
  );

  /** Runs an instance operation; a state conflict comes back as a message on the instance page. */
  const operate = (what: string, run: (c: Ctx, user: ConsoleUser, instanceId: number) => Promise<unknown>, done: string) =>
    action(async (c, user) => {
      const id = idParam(c, 'id');
      const instanceId = idParam(c, 'iid');
      await access.requireDefinitionAdmin(user, id, what);
      const instance = await queries.findInstance(instanceId);
      if (!instance || instance.definitionId !== id) throw new NotFoundError('job instance', instanceId);
      const to = `/definitions/${id}/instances/${instanceId}`;
      try {
        await run(c, user, instanceId);
      } catch (error) {
        if (error instanceof ConflictError) return flashRedirect(c, to, { kind: 'error', text: error.message });
        throw error;
      }
      kit.onLaunch();
      return flashRedirect(c, to, { kind: 'notice', text: done });
    });

  const by = (user: ConsoleUser) => `${user.name} <${user.email}>`;
  const ops = services.operations;
  app.post(`${INSTANCE}/cancel`, operate('cancel this instance', (_c, user, iid) => ops.cancel(iid, by(user)), 'Canceled; its running commands are being killed.'));
  app.post(`${INSTANCE}/tokens/:tid${ID}/retry`, operate('retry this token', (c, user, iid) => ops.retryToken(iid, idParam(c, 'tid'), by(user)), 'Retrying.'));
  app.post(`${INSTANCE}/tokens/:tid${ID}/skip`, operate('skip this token', (c, user, iid) => ops.skipToken(iid, idParam(c, 'tid'), by(user)), 'Skipped.'));
  app.post(
    `${INSTANCE}/executions/:eid${ID}/terminate`,
    operate('terminate this command', (c, user, iid) => ops.terminateExecution(iid, idParam(c, 'eid'), by(user)), 'Terminating the command (TERM, then KILL).'),
  );

  return app;
}
