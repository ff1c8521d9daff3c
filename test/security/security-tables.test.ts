/**
 * The two tables of migration 0005 on every dialect (SQLite, MariaDB, the Data API): sessions end when revoked or
 * expired, and failed logins block a key until its window ends, then count afresh.
 */
import { afterEach, beforeEach, expect, it } from 'vitest';
import { LoginLimitRepository } from '../../db/repositories/login-limit-repository';
import { SessionRepository } from '../../db/repositories/session-repository';
import { FakeClock } from '../helpers/in-memory-store';
import { createTestDatabase, describeEachDialect, type TestDatabase } from '../helpers/test-database';

const MINUTE = 60_000;

describeEachDialect('security tables', (dialect) => {
  let tdb: TestDatabase;
  let clock: FakeClock;
  beforeEach(async () => {
    tdb = await createTestDatabase(dialect, { reuse: true });
    clock = new FakeClock(new Date('2026-03-01T12:00:00.000Z'));
  });
  afterEach(async () => {
    await tdb.close();
  });

  it('keeps a session until it is revoked or expires, and only for its own email', async () => {
    const sessions = new SessionRepository(tdb.db, clock);
    await sessions.create('sid-1', 'Alice@Example.com', new Date(clock.now().getTime() + 10 * MINUTE));
    await sessions.create('sid-2', 'bob@example.com', new Date(clock.now().getTime() + 10 * MINUTE));
    expect(await sessions.isActive('sid-1', 'alice@example.com')).toBe(true);
    expect(await sessions.isActive('sid-1', 'bob@example.com')).toBe(false);
    await sessions.revoke('sid-1');
    expect(await sessions.isActive('sid-1', 'alice@example.com')).toBe(false);
    expect(await sessions.isActive('sid-2', 'bob@example.com')).toBe(true);
    clock.advance(11 * MINUTE);
    expect(await sessions.isActive('sid-2', 'bob@example.com')).toBe(false);
    const stored = await tdb.db.selectFrom('console_sessions' as never).selectAll().execute();
    expect(JSON.stringify(stored)).not.toContain('sid-2');
  });

  it('blocks a key after the maximum failures until its window ends, then counts from one again', async () => {
    const limits = new LoginLimitRepository(tdb.db, clock);
    const rule = { maxFailures: 3, windowMs: 15 * MINUTE };
    for (let i = 0; i < 2; i++) await limits.recordFailure('client:ci', rule);
    expect(await limits.blockedUntil(['client:ci', 'address:10.0.0.1'])).toBeUndefined();
    await limits.recordFailure('client:ci', rule);
    expect(await limits.blockedUntil(['client:ci', 'address:10.0.0.1'])).toEqual(new Date('2026-03-01T12:15:00.000Z'));
    expect(await limits.blockedUntil(['client:other'])).toBeUndefined();
    clock.advance(15 * MINUTE);
    expect(await limits.blockedUntil(['client:ci'])).toBeUndefined();
    await limits.recordFailure('client:ci', rule);
    expect(await limits.blockedUntil(['client:ci'])).toBeUndefined();
  });
});
