/**
 * A throwaway `mariadbd`'s datadir and command line, shared by the test suite's fallback server
 * (test/helpers/global-setup.ts) and the chaos harness's own server (bench/chaos/mariadb.ts).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const MARIADBD = '/usr/sbin/mariadbd';
const INSTALL_DB_CANDIDATES = ['/usr/bin/mariadb-install-db', '/usr/bin/mysql_install_db'];

/** Creates `<dir>/data` with mariadb-install-db (root without a password) and returns its path. */
export function installDataDir(dir: string): string {
  const installDb = INSTALL_DB_CANDIDATES.find((p) => existsSync(p));
  if (!installDb) throw new Error(`found ${MARIADBD} but no mariadb-install-db next to it: apt-get install mariadb-server`);
  const dataDir = join(dir, 'data');
  const install = spawnSync(
    installDb,
    ['--no-defaults', `--datadir=${dataDir}`, '--auth-root-authentication-method=normal', '--skip-test-db', '--user=root'],
    { encoding: 'utf8' },
  );
  if (install.status !== 0) throw new Error(`mariadb-install-db failed: ${install.stderr || install.stdout}`);
  return dataDir;
}

/** The arguments of a `mariadbd` on 127.0.0.1:`port` over `dataDir`, its socket and pid file in `dir`. */
export function mariadbdArgs(dir: string, dataDir: string, port: number, extra: readonly string[] = []): string[] {
  return [
    '--no-defaults',
    `--datadir=${dataDir}`,
    `--port=${port}`,
    '--bind-address=127.0.0.1',
    `--socket=${join(dir, 'mysqld.sock')}`,
    `--pid-file=${join(dir, 'mysqld.pid')}`,
    '--user=root',
    '--skip-name-resolve',
    '--character-set-server=utf8mb4',
    '--collation-server=utf8mb4_bin',
    '--innodb-buffer-pool-size=64M',
    '--innodb-flush-log-at-trx-commit=2',
    ...extra,
  ];
}
