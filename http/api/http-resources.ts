/** Domain records -> the v1 API's JSON resources (Kuroko2's field names, ISO-8601 UTC times). */
import type { z } from '@hono/zod-openapi';
import { instanceStatus } from '../../core/model';
import type { Instance } from '../../core/model';
import type { DefinitionInput, DefinitionRecord } from '../../core/definitions/definition-rules';
import type { ExecutionView, InstanceDetail, LogView, WorkerView } from '../../db/repositories/query-repository';
import type { definitionSchema, executionSchema, instanceDetailSchema, instanceSchema, logSchema, workerSchema, HttpSchemas } from './http-schemas';

const iso = (date: Date | null): string | null => (date === null ? null : date.toISOString());

/** A definition as Kuroko2's JobDefinitionResource, plus the extensions. */
export function definitionResource(d: DefinitionRecord): z.input<typeof definitionSchema> {
  return {
    id: d.id,
    name: d.name,
    description: d.description,
    script: d.script,
    tags: d.tags,
    cron: d.crons,
    // Administrators (users) do not exist yet; the field stays for clients that read it.
    user_id: [],
    notify_cancellation: d.notifyCancellation,
    suspended: d.suspended,
    prevent_multi: d.preventMulti,
    slack_channel: d.slackChannel,
    api_allowed: d.apiAllowed,
    webhook_url: d.webhookUrl,
    hipchat_notify_finished: d.notifyAll,
    time_zone: d.timeZone,
    suspend_cron: d.suspendCrons,
    catch_up_window_minutes: d.catchUpWindowMinutes,
    retention_days: d.retentionDays ?? null,
    created_at: d.createdAt.toISOString(),
    updated_at: d.updatedAt.toISOString(),
  };
}

/** Kuroko2's `text_tags=`: split on `,` or `、`, blanks removed. */
export function splitTextTags(textTags: string): string[] {
  return textTags
    .split(/[,、]/)
    .map((t) => t.trim())
    .filter((t) => t !== '');
}

/** A validated request body -> repository input; absent fields stay absent. */
export function definitionInput(body: z.output<HttpSchemas['definitionWrite']>): DefinitionInput {
  const input: DefinitionInput = {};
  if (body.name !== undefined) input.name = body.name;
  if (body.description !== undefined) input.description = body.description;
  if (body.script !== undefined) input.script = body.script;
  if (body.time_zone !== undefined) input.timeZone = body.time_zone;
  if (body.suspended !== undefined) input.suspended = body.suspended;
  if (body.prevent_multi !== undefined) input.preventMulti = body.prevent_multi;
  if (body.notify_cancellation !== undefined) input.notifyCancellation = body.notify_cancellation;
  const notifyAll = body.hipchat_notify_finished ?? body.notify_all;
  if (notifyAll !== undefined) input.notifyAll = notifyAll;
  if (body.api_allowed !== undefined) input.apiAllowed = body.api_allowed;
  if (body.slack_channel !== undefined) input.slackChannel = body.slack_channel;
  if (body.webhook_url !== undefined) input.webhookUrl = body.webhook_url;
  if (body.catch_up_window_minutes !== undefined) input.catchUpWindowMinutes = body.catch_up_window_minutes;
  if (body.retention_days !== undefined) input.retentionDays = body.retention_days;
  const tags = body.tags ?? (body.text_tags !== undefined ? splitTextTags(body.text_tags) : undefined);
  if (tags !== undefined) input.tags = tags;
  if (body.cron !== undefined) input.crons = body.cron;
  if (body.suspend_cron !== undefined) input.suspendCrons = body.suspend_cron;
  return input;
}

/** An instance: Kuroko2's `{id, status}` plus the extensions. */
export function instanceResource(i: Instance): z.input<typeof instanceSchema> {
  return {
    id: i.id,
    status: instanceStatus(i),
    job_definition_id: i.definitionId,
    created_at: i.createdAt.toISOString(),
    finished_at: iso(i.finishedAt),
    canceled_at: iso(i.canceledAt),
    error_at: iso(i.errorAt),
    retrying: i.retrying,
    launched_by: i.launchedBy,
  };
}

/** A command of an instance, with Kuroko2's executions-page label (waiting, running) or finished. */
export function executionResource(e: ExecutionView): z.input<typeof executionSchema> {
  let status: 'waiting' | 'running' | 'finished' = 'waiting';
  if (e.finishedAt) status = 'finished';
  else if (e.claimedAt || e.startedAt) status = 'running';
  return {
    id: e.id,
    token_id: e.tokenId,
    job_instance_id: e.instanceId,
    job_definition_id: e.definitionId,
    queue: e.queue,
    shell: e.shell,
    status,
    pid: e.pid,
    hostname: e.hostname,
    worker_id: e.workerId,
    created_at: iso(e.createdAt),
    claimed_at: iso(e.claimedAt),
    started_at: iso(e.startedAt),
    finished_at: iso(e.finishedAt),
    exit_status: e.exitStatus,
    term_signal: e.termSignal,
  };
}

/** The single-instance GET: the instance with its tokens and commands. */
export function instanceDetailResource(detail: InstanceDetail): z.input<typeof instanceDetailSchema> {
  return {
    ...instanceResource(detail.instance),
    tokens: detail.tokens.map((t) => ({ id: t.id, parent_id: t.parentId, path: t.path, status: t.status, message: t.message })),
    executions: detail.executions.map(executionResource),
  };
}

export function logResource(l: LogView): z.input<typeof logSchema> {
  return { id: l.id, level: l.level, message: l.message, created_at: l.createdAt.toISOString() };
}

export function workerResource(w: WorkerView): z.input<typeof workerSchema> {
  return {
    id: w.id,
    hostname: w.hostname,
    queue: w.queues[0] ?? null,
    queues: w.queues,
    slots: w.slots,
    status: w.status,
    suspended: w.suspended,
    draining: w.draining,
    heartbeat_at: w.heartbeatAt.toISOString(),
    started_at: w.startedAt.toISOString(),
    execution_id: w.executionIds[0] ?? null,
    execution_ids: w.executionIds,
  };
}
