/**
 * A Kuroko2 database in MariaDB for the importer's tests: Kuroko2's real schema (fixtures/kuroko2-schema-v34.sql,
 * written out from its schema.rb) in a throwaway database, filled with rows as a running Kuroko2 has them:
 * multi-byte names and descriptions, many schedules per definition, broken scripts, a custom task, users without
 * an email and users without admin rows, script revisions, memory expectancies, and history.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createConnection } from 'mysql2/promise';
import type { Connection } from 'mysql2/promise';
import { createMysqlDatabase } from '../helpers/test-database';

const SCHEMA_FILE = fileURLToPath(new URL('./fixtures/kuroko2-schema-v34.sql', import.meta.url));
const DAY_MS = 24 * 60 * 60 * 1000;

export const CUSTOM_TASKS_JSON = JSON.stringify({ my_project_runner: 'cd /home/alice/my_project && bundle exec ./bin/rails runner -e production {{option}}' });

export const NIGHTLY = {
  id: 10,
  name: 'nightly-report 日次レポート',
  description: '## 日次集計 🍣\n\n毎晩 3 時に売上を集計します。失敗したら #ops へ。\n\n- naïve 𠮷野家\n',
  script: 'env: RAILS_ENV=production\nexecute: bin/report --date today\n',
  oldScript: 'execute: bin/report\n',
  crons: ['0 3 * * *', '30 4 * * 1-5', '*/15 * * * *', '0 0 1 * *', '0  12 * * 0'],
  suspendCrons: ['* 3 * * 6'],
  memoryKb: 204_800,
} as const;

/** Rails' DATETIME text of an instant (UTC, seconds). */
export function railsTime(date: Date): string {
  return date.toISOString().slice(0, 19).replace('T', ' ');
}

export interface Kuroko2Fixture {
  /** mysql:// URL of the Kuroko2 database. */
  url: string;
  prefix: string;
  /** When the rows' times were computed from. */
  now: Date;
  query(statement: string, values?: unknown[]): Promise<unknown>;
  drop(): Promise<void>;
}

async function insert(c: Connection, prefix: string, table: string, row: Record<string, unknown>): Promise<number> {
  const columns = Object.keys(row);
  const [result] = await c.query(
    `INSERT INTO \`${prefix}${table}\` (${columns.map((k) => `\`${k}\``).join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`,
    Object.values(row),
  );
  return (result as { insertId: number }).insertId;
}

/** Creates Kuroko2's schema with `prefix` in a new MariaDB database and fills it. */
export async function createKuroko2Fixture(prefix = 'kuroko2_', serverUrl?: string): Promise<Kuroko2Fixture> {
  const mysql = await createMysqlDatabase(serverUrl);
  const c = await createConnection({ uri: mysql.url, timezone: 'Z', charset: 'utf8mb4' });
  const now = new Date();
  const t = (daysAgo: number, hour = 3) => railsTime(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), hour) - daysAgo * DAY_MS));
  try {
    const ddl = readFileSync(SCHEMA_FILE, 'utf8')
      .split('\n')
      .filter((line) => !line.startsWith('--'))
      .join('\n')
      .replaceAll('`kuroko2_', `\`${prefix}`);
    for (const statement of ddl.split(';').map((s) => s.trim()).filter((s) => s !== '')) await c.query(statement);

    const user = (id: number, uid: string, name: string, email: string, suspendedAt: string | null = null) =>
      insert(c, prefix, 'users', { id, uid, name, email, first_name: name.split(' ')[0], last_name: '', suspended_at: suspendedAt, created_at: t(400), updated_at: t(10) });
    await user(1, '1001', 'Alice 山田', 'Alice@Example.com');
    await user(2, '1002', 'Bob', 'bob@example.com');
    await user(3, '1003', 'Carol (no email)', '');
    await user(4, '1004', 'Dave without admin rows', 'dave@example.com');
    await user(5, '1005', 'Eve (left)', 'eve@example.com', t(30));

    const tag = async (name: string) => insert(c, prefix, 'tags', { name, created_at: t(300), updated_at: t(300) });
    const daily = await tag('daily');
    const batch = await tag('バッチ');
    await tag('unused');

    const definition = (row: Record<string, unknown>) =>
      insert(c, prefix, 'job_definitions', { version: 3, created_at: t(365), updated_at: t(20), ...row });
    const schedules = async (id: number, crons: readonly string[], table = 'job_schedules') => {
      for (const cron of crons) await insert(c, prefix, table, { job_definition_id: id, cron, created_at: t(100), updated_at: t(100) });
    };
    const link = (table: string, row: Record<string, unknown>) => insert(c, prefix, table, { created_at: t(50), updated_at: t(50), ...row });

    // A healthy definition with every field set, many schedules, two revisions, admins, stars and history.
    await definition({
      id: NIGHTLY.id,
      name: NIGHTLY.name,
      description: NIGHTLY.description,
      script: NIGHTLY.script,
      suspended: 0,
      prevent_multi: 2,
      notify_cancellation: 0,
      hipchat_room: 'ops-room',
      hipchat_notify_finished: 0,
      hipchat_additional_text: '@here 失敗しました',
      slack_channel: '#ops',
      api_allowed: 1,
      webhook_url: 'https://hooks.example.com/kuroko2',
    });
    await schedules(NIGHTLY.id, NIGHTLY.crons);
    await schedules(NIGHTLY.id, NIGHTLY.suspendCrons, 'job_suspend_schedules');
    await link('job_definition_tags', { job_definition_id: NIGHTLY.id, tag_id: daily });
    await link('job_definition_tags', { job_definition_id: NIGHTLY.id, tag_id: batch });
    await link('admin_assignments', { user_id: 1, job_definition_id: NIGHTLY.id });
    await link('admin_assignments', { user_id: 5, job_definition_id: NIGHTLY.id });
    await link('stars', { user_id: 1, job_definition_id: NIGHTLY.id });
    await link('stars', { user_id: 2, job_definition_id: NIGHTLY.id });
    await insert(c, prefix, 'memory_expectancies', { job_definition_id: NIGHTLY.id, expected_value: NIGHTLY.memoryKb, created_at: t(365), updated_at: t(2) });
    await insert(c, prefix, 'script_revisions', { job_definition_id: NIGHTLY.id, script: NIGHTLY.oldScript, user_id: 1, changed_at: t(365), created_at: t(365), updated_at: t(365) });
    await insert(c, prefix, 'script_revisions', { job_definition_id: NIGHTLY.id, script: NIGHTLY.script, user_id: 2, changed_at: t(20), created_at: t(20), updated_at: t(20) });

    // kuroko_runner: refused here; administered only by a user without an email; no revision rows (an old definition).
    await definition({ id: 42, name: 'remind failures', description: '', script: 'kuroko_runner: remind_failure\n' });
    await schedules(42, ['0 * * * *']);
    await link('admin_assignments', { user_id: 3, job_definition_id: 42 });

    // A custom task of the site (Kuroko2's user guide's my_project_runner).
    await definition({ id: 43, name: 'custom task job', description: 'カスタムタスク', script: 'env: VAL1=A\nenv: VAL2=B\nmy_project_runner: MyProject::Batch1.run\n' });
    await schedules(43, ['0 5 * * *']);
    await link('admin_assignments', { user_id: 2, job_definition_id: 43 });
    await link('stars', { user_id: 3, job_definition_id: 43 });

    // Syntax Kuroko2 tolerated (parallel_fork: 0) and a cron it stored that we cannot parse.
    await definition({ id: 44, name: 'tolerated by kuroko2', description: 'x', script: 'noop:\nparallel_fork: 0\n  execute: echo never\n' });
    await schedules(44, ['0 9 * * *', '61 * * * *']);
    await link('admin_assignments', { user_id: 2, job_definition_id: 44 });

    // Suspended in Kuroko2, with a suspend schedule and no launch schedule, on a queue of Kuroko2's workers.
    await definition({ id: 45, name: 'suspended weekly', description: 'weekly', script: 'queue: heavy\nexecute: bin/weekly\n', suspended: 1 });
    await schedules(45, ['0 0 * * *'], 'job_suspend_schedules');
    await link('admin_assignments', { user_id: 1, job_definition_id: 45 });
    await insert(c, prefix, 'workers', { hostname: 'worker-1', worker_id: 1, queue: 'heavy', working: 1, created_at: t(5), updated_at: t(0) });

    // Waits on and calls other imported definitions.
    await definition({ id: 46, name: 'downstream', description: '', script: 'wait: 10/daily\nsub_process: 43\n' });
    await link('admin_assignments', { user_id: 1, job_definition_id: 46 });

    // History of the nightly report: finished 1 and 2 days ago, canceled 3 days ago, finished 30 days ago, working now.
    const instance = async (daysAgo: number, end: 'finished' | 'canceled' | 'working', memory: number | null) => {
      const created = t(daysAgo);
      const ended = t(daysAgo, 4);
      const id = await insert(c, prefix, 'job_instances', {
        job_definition_id: NIGHTLY.id,
        job_definition_version: 3,
        script: NIGHTLY.script,
        finished_at: end === 'finished' ? ended : null,
        canceled_at: end === 'canceled' ? ended : null,
        error_at: end === 'canceled' ? t(daysAgo, 3) : null,
        created_at: created,
        updated_at: ended,
        retrying: 0,
      });
      await insert(c, prefix, 'logs', { job_instance_id: id, level: 'INFO', message: `(token abc) Current node is '/0-env'. 日本語`, created_at: created, updated_at: created });
      await insert(c, prefix, 'logs', { job_instance_id: id, level: end === 'canceled' ? 'ERROR' : 'INFO', message: 'bin/report returns 0.\n```\nok 🍣\n```', created_at: ended, updated_at: ended });
      await insert(c, prefix, 'execution_histories', {
        hostname: 'worker-1', worker_id: 1, queue: '@default', job_definition_id: NIGHTLY.id, job_instance_id: id, shell: 'bin/report --date today', started_at: created, finished_at: ended,
      });
      if (memory !== null) await insert(c, prefix, 'memory_consumption_logs', { job_instance_id: id, value: memory, created_at: ended, updated_at: ended });
      return id;
    };
    await instance(1, 'finished', 150_000);
    await instance(2, 'finished', 180_000);
    await instance(3, 'canceled', null);
    await instance(30, 'finished', 170_000);
    await instance(0, 'working', 1_000);
  } finally {
    await c.end();
  }
  const query = async (statement: string, values: unknown[] = []) => {
    const conn = await createConnection({ uri: mysql.url, timezone: 'Z', charset: 'utf8mb4' });
    try {
      const [rows] = await conn.query(statement, values);
      return rows;
    } finally {
      await conn.end();
    }
  };
  return { url: mysql.url, prefix, now, query, drop: mysql.drop };
}
