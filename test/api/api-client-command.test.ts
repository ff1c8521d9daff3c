import { describe, expect, it } from 'vitest';
import { runApiClient } from '../../cli/api-client-command';
import { main } from '../../cli/main';
import { ApiClientRepository } from '../../db/repositories/api-client-repository';
import { verifySecret } from '../../http/api/http-auth';
import { servicesFor } from '../helpers/engine-fixtures';
import { createTestDatabase } from '../helpers/test-database';

function collect() {
  const out = { stdout: '', stderr: '' };
  return { out, io: { stdout: (t: string) => void (out.stdout += t), stderr: (t: string) => void (out.stderr += t) } };
}

describe('kuroko api-client create', () => {
  it('creates a client, prints its secret once, and stores only a hash that verifies', async () => {
    const tdb = await createTestDatabase('sqlite');
    try {
      const { out, io } = collect();
      expect(await main(['api-client', 'create', 'deployer', '--scope', 'launch', '--database-url', tdb.url], io)).toBe(0);
      const secret = out.stdout.trim();
      expect(secret).toMatch(/^[\w-]{40,}$/);
      expect(out.stderr).toContain('deployer');
      expect(out.stderr).not.toContain(secret);
      const services = servicesFor(tdb);
      const client = await new ApiClientRepository(tdb.db, services.ids, services.clock).findByName('deployer');
      expect(client?.scope).toBe('launch');
      expect(client?.secretHash).not.toContain(secret);
      expect(await verifySecret(secret, client?.secretHash ?? '')).toBe(true);

      const again = collect();
      expect(await runApiClient(['create', 'deployer', '--database-url', tdb.url], again.io, {})).toBe(1);
      expect(again.out.stderr).toContain('already exists');
      expect(again.out.stdout).toBe('');
    } finally {
      await tdb.close();
    }
  });

  it('refuses bad arguments with usage', async () => {
    for (const args of [['create', 'x', '--scope', 'root', '--database-url', 'sqlite::memory:'], ['create', '--database-url', 'sqlite::memory:'], ['create', 'bad:name', '--database-url', 'sqlite::memory:'], ['create', 'x'], ['delete', 'x', '--database-url', 'sqlite::memory:']]) {
      const { out, io } = collect();
      expect(await runApiClient(args, io, {}), args.join(' ')).toBe(2);
      expect(out.stderr).toContain('usage: kuroko api-client create');
    }
  });
});
