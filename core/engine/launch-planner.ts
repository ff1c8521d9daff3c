import {
  EVENT_TYPE,
  LOG_LEVEL,
  TOKEN_STATUS,
  type Definition,
  type EventRecord,
  type Instance,
  type LogEntry,
  type Token,
  type TokenStatus,
} from '../model';
import type { IdGenerator, LaunchRequest } from '../ports';
import { PREVENT_MULTI_CANCEL_MESSAGE, isLaunchBlocked } from '../schedule';

/** Everything a launch writes: the instance, its root token (none when prevent_multi blocked it), logs, events. */
export interface LaunchPlan {
  instance: Instance;
  token: Token | null;
  logs: LogEntry[];
  events: EventRecord[];
  blocked: boolean;
}

export interface LaunchInput {
  request: LaunchRequest;
  definition: Definition;
  /** Statuses of every token of every instance of the definition, read under the launch lock. */
  existingTokenStatuses: readonly TokenStatus[];
  now: Date;
  ids: IdGenerator;
}

/**
 * Plans one launch (Kuroko2's `create_instance`): the first log line says who launched it, a `launch` event
 * is always recorded, and a launch that prevent_multi blocks is created already canceled.
 */
export async function planLaunch(input: LaunchInput): Promise<LaunchPlan> {
  const { request, definition, now, ids } = input;
  const instanceId = request.instanceId;
  const script = request.script ?? definition.script;
  const instance: Instance = {
    id: instanceId,
    definitionId: definition.id,
    script,
    launchedBy: request.launchedBy,
    retrying: false,
    createdAt: now,
    finishedAt: null,
    canceledAt: null,
    errorAt: null,
  };
  const launchedMessage = `Launched by ${request.launchedBy}`;
  const logs: LogEntry[] = [{ instanceId, level: LOG_LEVEL.info, message: launchedMessage, createdAt: now }];
  const event = async (type: EventRecord['type'], message: string): Promise<EventRecord> => ({
    id: await ids.nextId(),
    type,
    instanceId,
    definitionId: definition.id,
    tokenId: null,
    message,
    createdAt: now,
  });
  const events: EventRecord[] = [await event(EVENT_TYPE.launch, launchedMessage)];

  if (isLaunchBlocked(definition.preventMulti, input.existingTokenStatuses)) {
    instance.canceledAt = now;
    logs.push({ instanceId, level: LOG_LEVEL.warn, message: PREVENT_MULTI_CANCEL_MESSAGE, createdAt: now });
    if (definition.notifyCancellation) events.push(await event(EVENT_TYPE.cancellation, PREVENT_MULTI_CANCEL_MESSAGE));
    return { instance, token: null, logs, events, blocked: true };
  }

  const token: Token = {
    id: await ids.nextId(),
    uuid: ids.uuid(),
    instanceId,
    definitionId: definition.id,
    parentId: null,
    script,
    path: '/',
    status: TOKEN_STATUS.working,
    message: '',
    context: {
      meta: {
        launched_time: now.toISOString(),
        job_definition_id: definition.id,
        job_definition_name: definition.name,
        job_instance_id: instanceId,
      },
      ...(request.env && Object.keys(request.env).length > 0 ? { ENV: { ...request.env } } : {}),
      ...(request.fanOut !== undefined && request.fanOut > 1 ? { FAN_OUT: request.fanOut } : {}),
      ...(request.subProcessDepth !== undefined && request.subProcessDepth > 0 ? { SUB_PROCESS_DEPTH: request.subProcessDepth } : {}),
    },
    version: 0,
    createdAt: now,
    updatedAt: now,
  };
  return { instance, token, logs, events, blocked: false };
}
