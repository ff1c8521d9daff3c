import { describe, expect, it } from 'vitest';
import { EVENT_TYPE, type Definition, type EventRecord, type EventType, type Instance, type LogEntry } from '../../../core/model';
import {
  buildMailMessage,
  buildNotification,
  buildSlackPayload,
  buildWebhookBody,
  formatConsoleLine,
  MAX_SUBJECT_LENGTH,
  nextSteps,
  notificationText,
  type NotificationInput,
} from '../../../core/notify/notification-message';
import { MONITOR_EVENT_TYPES } from '../../../core/notify/notification-rules';

const links = { baseUrl: 'https://kuroko.example.com/' };
const at = new Date('2026-03-01T10:00:00.000Z');

const definition: Definition = {
  id: 12,
  name: 'Nightly ETL',
  description: 'Loads the warehouse',
  script: 'execute: etl\n',
  timeZone: 'UTC',
  suspended: false,
  preventMulti: 1,
  notifyCancellation: true,
  notifyAll: false,
  apiAllowed: false,
  slackChannel: '#etl',
  webhookUrl: 'https://hooks.example.com/etl',
  catchUpWindowMinutes: 0,
  createdAt: at,
  updatedAt: at,
};

const instance: Instance = {
  id: 345,
  definitionId: 12,
  script: 'execute: etl\n',
  launchedBy: 'alice',
  retrying: false,
  createdAt: new Date('2026-03-01T09:00:00.000Z'),
  finishedAt: null,
  canceledAt: null,
  errorAt: at,
};

const logs: LogEntry[] = [
  { instanceId: 345, level: 'INFO', message: 'Launched by alice', createdAt: new Date('2026-03-01T09:00:00.000Z') },
  { instanceId: 345, level: 'ERROR', message: '[FAILURE] `etl` returns 2.', createdAt: at },
];

function input(type: EventType, overrides: Partial<NotificationInput> = {}, eventOverrides: Partial<EventRecord> = {}): NotificationInput {
  return {
    event: { id: 900, type, instanceId: 345, definitionId: 12, tokenId: 5, message: '[FAILURE] `etl` returns 2.', createdAt: at, ...eventOverrides },
    definition,
    instance,
    recentLogs: logs,
    ...overrides,
  };
}

const KUROKO2_TEXTS: Partial<Record<EventType, string>> = {
  failure: "Failed to execute 'Nightly ETL'",
  critical: "Failed to execute 'Nightly ETL'",
  cancellation: "Failed to execute 'Nightly ETL'",
  finished: "Finished executing 'Nightly ETL'",
  launch: "Launched 'Nightly ETL'",
  back_to_normal: "'Nightly ETL' is back to normal",
  retrying: "Retrying the current task in 'Nightly ETL'",
  skipping: "Skipping the current task in 'Nightly ETL'",
  long_elapsed_time: "The running time of 'Nightly ETL' is longer than expected.",
};

describe('notification texts', () => {
  for (const [type, text] of Object.entries(KUROKO2_TEXTS)) {
    it(`uses Kuroko2's text for ${type}`, () => {
      expect(notificationText(type as EventType, 'Nightly ETL')).toBe(text);
    });
  }

  it('names the job in every monitor alert and says what to do next', () => {
    for (const type of MONITOR_EVENT_TYPES) {
      if (type !== EVENT_TYPE.workerLost) expect(notificationText(type, 'Nightly ETL')).toContain("'Nightly ETL'");
      expect(nextSteps(type)).toMatch(/\w/);
    }
    expect(notificationText(EVENT_TYPE.workerLost, 'x', false)).toBe('A worker stopped heart-beating');
  });

  it('falls back to the definition number when the definition is gone, and to kuroko without one', () => {
    expect(buildNotification(input('failure', { definition: undefined }), links).text).toBe("Failed to execute 'job definition #12'");
    const orphan = input('worker_lost', { definition: undefined, instance: undefined }, { instanceId: null, definitionId: null });
    expect(buildNotification(orphan, links)).toMatchObject({ text: 'A worker stopped heart-beating', url: 'https://kuroko.example.com/' });
  });
});

describe('Slack payload (Kuroko2 attachment)', () => {
  const colors: Record<EventType, string> = {
    launch: '#439FE0',
    retrying: '#439FE0',
    skipping: '#439FE0',
    finished: 'good',
    back_to_normal: 'good',
    cancellation: 'warning',
    long_elapsed_time: 'warning',
    failure: 'danger',
    critical: 'danger',
    not_assigned: 'danger',
    process_absence: 'danger',
    worker_lost: 'danger',
    missed_slot: 'warning',
    remind_failure: 'warning',
    memory_exceeded: 'warning',
  };
  for (const type of Object.values(EVENT_TYPE)) {
    it(`${type}: channel, title "[LEVEL] text", link, body and colour`, () => {
      const payload = buildSlackPayload(input(type), links);
      const n = buildNotification(input(type), links);
      expect(payload).toEqual({
        channel: '#etl',
        link_names: 1,
        attachments: [
          {
            title: `[${n.level}] ${n.text}`,
            title_link: 'https://kuroko.example.com/definitions/12/instances/345',
            text: '[FAILURE] `etl` returns 2.',
            fallback: `[${n.level}] ${n.text} https://kuroko.example.com/definitions/12/instances/345`,
            color: colors[type],
          },
        ],
      });
    });
  }
});

describe('webhook body (Kuroko2 shape)', () => {
  for (const type of Object.values(EVENT_TYPE)) {
    it(`${type}: action notify_${type}, level, subject, message, instance and definition`, () => {
      const body = buildWebhookBody(input(type), links);
      expect(body.action).toBe(`notify_${type}`);
      expect(body.level).toBe(buildNotification(input(type), links).level);
      expect(body.subject).toBe(buildNotification(input(type), links).text);
      expect(body.message.startsWith('[FAILURE] `etl` returns 2.')).toBe(true);
      if (MONITOR_EVENT_TYPES.has(type)) expect(body.message).toContain(nextSteps(type)!);
      else expect(body.message).toBe('[FAILURE] `etl` returns 2.');
      expect(body.job_instance).toEqual({
        url: 'https://kuroko.example.com/definitions/12/instances/345',
        id: 345,
        script: 'execute: etl\n',
        finished_at: null,
        canceled_at: null,
        error_at: '2026-03-01T10:00:00.000Z',
        created_at: '2026-03-01T09:00:00.000Z',
      });
      expect(body.job_definition).toEqual({
        url: 'https://kuroko.example.com/definitions/12',
        id: 12,
        name: 'Nightly ETL',
        description: 'Loads the warehouse',
      });
    });
  }
});

describe('mail-like message (SNS)', () => {
  const subjects: Partial<Record<EventType, string>> = {
    failure: "[CRITICAL] Failed to execute 'Nightly ETL' on kuroko",
    critical: "[CRITICAL] Failed to execute 'Nightly ETL' on kuroko",
    cancellation: "[CRITICAL] Failed to execute 'Nightly ETL' on kuroko",
    long_elapsed_time: "[WARN] The running time is longer than expected 'Nightly ETL' on kuroko",
    remind_failure: "[WARN] 'Nightly ETL' is still in ERROR state",
    process_absence: "[CRITICAL] Process is not running on kuroko: 'Nightly ETL'",
    not_assigned: "[CRITICAL] Process is not assigned to any job-executor: 'Nightly ETL'",
    worker_lost: "[CRITICAL] Worker stopped heart-beating on kuroko: 'Nightly ETL'",
    missed_slot: "[WARN] A scheduled launch of 'Nightly ETL' was missed on kuroko",
    memory_exceeded: "[WARN] 'Nightly ETL' uses far more memory than expected on kuroko",
  };
  for (const [type, subject] of Object.entries(subjects)) {
    it(`${type}: subject, job, link, event, body, next steps and the last log lines`, () => {
      const mail = buildMailMessage(input(type as EventType), links);
      expect(mail.subject).toBe(subject);
      expect(mail.body).toContain('Job: Nightly ETL (#12) https://kuroko.example.com/definitions/12');
      expect(mail.body).toContain('Instance: #345 (error) https://kuroko.example.com/definitions/12/instances/345');
      expect(mail.body).toContain(`Event: ${type} at 2026-03-01T10:00:00.000Z`);
      expect(mail.body).toContain('[FAILURE] `etl` returns 2.');
      expect(mail.body).toContain('Last log lines:\n2026-03-01T09:00:00.000Z [INFO] Launched by alice\n2026-03-01T10:00:00.000Z [ERROR]');
      expect(mail.body).toContain(`What to do next: ${nextSteps(type as EventType)}`);
    });
  }

  it('keeps the subject on one line and under 100 characters, cutting long names', () => {
    const long = { ...definition, name: `Very\nlong ${'名前'.repeat(80)}` };
    const mail = buildMailMessage(input('failure', { definition: long }), links);
    expect(Array.from(mail.subject).length).toBeLessThanOrEqual(MAX_SUBJECT_LENGTH);
    expect(mail.subject).not.toMatch(/[\r\n]/);
    expect(mail.subject.endsWith('…')).toBe(true);
  });

  it('describes a worker loss without an instance by the worker', () => {
    const mail = buildMailMessage(
      input('worker_lost', { definition: undefined, instance: undefined, recentLogs: [] }, { instanceId: null, definitionId: null, message: 'Worker host-1 (id 3) stopped heart-beating' }),
      links,
    );
    expect(mail.subject).toBe('[CRITICAL] Worker stopped heart-beating on kuroko');
    expect(mail.body).toContain('Worker host-1 (id 3) stopped heart-beating');
    expect(mail.body).not.toContain('Instance:');
  });

  it('bounds very long log lines', () => {
    const huge: LogEntry = { instanceId: 345, level: 'INFO', message: 'x'.repeat(50_000), createdAt: at };
    const mail = buildMailMessage(input('failure', { recentLogs: [huge] }), links);
    expect(mail.body.length).toBeLessThan(10_000);
  });
});

describe('console line', () => {
  it('shows level, text, link and the first line of the body', () => {
    const line = formatConsoleLine(input('failure', {}, { message: 'first\nsecond' }), links);
    expect(line).toBe("[kuroko] [FAILURE] Failed to execute 'Nightly ETL' https://kuroko.example.com/definitions/12/instances/345 - first");
  });
});
