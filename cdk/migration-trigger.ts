/**
 * The trigger of the deploy-time migration: a fingerprint of the migration files, so CloudFormation runs the
 * migrator when (and only when) migrations change. A trigger that changed on every synthesis would run it on
 * every deploy, and a migrator that fails (a paused cluster still resuming, say) rolls the whole stack back.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from './paths';

export const MIGRATIONS_DIR = join(PROJECT_ROOT, 'db', 'migrations');

/** SHA-256 over the names and contents of the migration folder's source files, in name order. */
export function migrationsFingerprint(dir: string = MIGRATIONS_DIR): string {
  const hash = createHash('sha256');
  const files = readdirSync(dir)
    .filter((name) => name.endsWith('.ts'))
    .sort();
  for (const name of files) {
    hash.update(name).update('\0').update(readFileSync(join(dir, name))).update('\0');
  }
  return `migrations-sha256:${hash.digest('hex')}`;
}
