/**
 * The harness's own MariaDB: a throwaway `mariadbd` on a free port and a temporary datadir (as
 * test/helpers/global-setup.ts starts one), so it can be stopped and restarted without touching the machine's
 * shared server. Its datadir is removed at the end.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection } from 'mysql2/promise';
import { installDataDir, MARIADBD, mariadbdArgs } from '../../test/helpers/mariadbd';
import { freePort } from '../../test/helpers/free-port';
import { poll, spawnTracked, type Tracked } from './processes';

const START_TIMEOUT_MS = 60_000;

export interface Mariadb {
  /** `mysql://root@127.0.0.1:<port>/` */
  serverUrl: string;
  port: number;
  databaseUrl(name: string): string;
  createDatabase(name: string): Promise<string>;
  /** SIGTERM (a clean shutdown) or SIGKILL (a crash), waiting for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  start(): Promise<void>;
  /** KILL of every client connection but the one asking; answers how many. */
  killClients(): Promise<number>;
  close(): Promise<void>;
}

async function answers(url: string): Promise<boolean> {
  const connection = await createConnection({ uri: url, connectTimeout: 1_000 });
  await connection.end();
  return true;
}

export async function startMariadb(): Promise<Mariadb> {
  if (!existsSync(MARIADBD)) throw new Error('chaos needs mariadbd: apt-get install mariadb-server');
  const dir = mkdtempSync(join(tmpdir(), 'kuroko-chaos-mariadb-'));
  const dataDir = installDataDir(dir);
  const port = await freePort();
  const serverUrl = `mysql://root@127.0.0.1:${port}/`;
  let server: Tracked | undefined;
  const admin = async <T>(fn: (c: Awaited<ReturnType<typeof createConnection>>) => Promise<T>): Promise<T> => {
    const connection = await createConnection({ uri: serverUrl });
    try {
      return await fn(connection);
    } finally {
      await connection.end();
    }
  };
  const mariadb: Mariadb = {
    serverUrl,
    port,
    databaseUrl: (name) => `mysql://root@127.0.0.1:${port}/${name}`,
    async createDatabase(name) {
      await admin((c) => c.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`));
      return mariadb.databaseUrl(name);
    },
    async start() {
      server = spawnTracked('mariadbd', MARIADBD, mariadbdArgs(dir, dataDir, port, ['--max-connections=500']), {}, { persistent: true });
      const up = await poll(() => answers(serverUrl), START_TIMEOUT_MS);
      if (!up) throw new Error(`the chaos mariadbd did not start on port ${port}: ${server.output().slice(-500)}`);
    },
    async stop(signal = 'SIGTERM') {
      await server?.stop(signal);
      server = undefined;
    },
    async killClients() {
      return admin(async (c) => {
        const [rows] = await c.query('SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND COMMAND <> \'Daemon\' AND USER <> \'system user\'');
        let killed = 0;
        for (const row of rows as { ID: number }[]) {
          await c.query(`KILL ${Number(row.ID)}`).then(() => killed++, () => undefined);
        }
        return killed;
      });
    },
    async close() {
      await mariadb.stop('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await mariadb.start();
  return mariadb;
}
