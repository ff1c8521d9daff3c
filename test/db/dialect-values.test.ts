import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, ConflictError, KurokoError } from '../../core/errors';
import { fromDbBool, fromDbInt, fromDbTime, parseJsonColumn, toDbTimeString } from '../../db/column-codec';
import { parseDatabaseUrl } from '../../db/connection';
import { isDuplicateKeyError, isRetryableLockError, translateDuplicateKey } from '../../db/db-errors';

const CLUSTER = 'arn:aws:rds:eu-west-1:123456789012:cluster:kuroko';
const SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:kuroko-AbC';

describe('parseDatabaseUrl', () => {
  it('reads the three kinds of URL', () => {
    expect(parseDatabaseUrl('sqlite:/var/lib/kuroko.db')).toEqual({ dialect: 'sqlite', filename: '/var/lib/kuroko.db' });
    expect(parseDatabaseUrl('sqlite:///var/lib/kuroko.db')).toEqual({ dialect: 'sqlite', filename: '/var/lib/kuroko.db' });
    expect(parseDatabaseUrl('sqlite::memory:')).toEqual({ dialect: 'sqlite', filename: ':memory:' });
    expect(parseDatabaseUrl('mysql://u:p@db.local:3307/kuroko')).toMatchObject({ dialect: 'mysql', database: 'kuroko' });
    expect(parseDatabaseUrl('mariadb://u@db.local/kuroko')).toMatchObject({ dialect: 'mysql', database: 'kuroko' });
    expect(
      parseDatabaseUrl(`data-api://${CLUSTER}?secret=${encodeURIComponent(SECRET)}&database=kuroko`),
    ).toEqual({ dialect: 'data-api', resourceArn: CLUSTER, secretArn: SECRET, database: 'kuroko', region: 'eu-west-1' });
    expect(
      parseDatabaseUrl(`data-api://${CLUSTER}?secret=${SECRET}&database=k&endpoint=http://127.0.0.1:4000&region=us-east-1`),
    ).toEqual({
      dialect: 'data-api', resourceArn: CLUSTER, secretArn: SECRET, database: 'k', region: 'us-east-1',
      endpoint: 'http://127.0.0.1:4000',
    });
  });

  it('rejects bad URLs with a ConfigError that says what is missing, without the password', () => {
    const problem = (url: string) => {
      try {
        parseDatabaseUrl(url);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
      throw new Error(`accepted ${url}`);
    };
    expect(problem('postgres://x/y')).toMatch(/unknown scheme/);
    expect(problem('sqlite:')).toMatch(/names no file/);
    expect(problem('mysql://root:hunter2@127.0.0.1:3306')).toMatch(/names no database/);
    expect(problem('mysql://root:hunter2@127.0.0.1:3306')).not.toMatch(/hunter2/);
    const dataApi = problem('data-api://not-an-arn?database=x&endpoint=::bad');
    expect(dataApi).toMatch(/cluster ARN/);
    expect(dataApi).toMatch(/secret=/);
    expect(dataApi).toMatch(/endpoint/);
  });
});

describe('column values', () => {
  it('reads every driver shape of a time as the same instant', () => {
    const instant = new Date('2026-03-08T06:59:59.999Z');
    expect(toDbTimeString(instant)).toBe('2026-03-08 06:59:59.999');
    expect(fromDbTime('2026-03-08 06:59:59.999')).toEqual(instant);
    expect(fromDbTime('2026-03-08 06:59:59.999000')).toEqual(instant);
    expect(fromDbTime('2026-03-08 06:59:59.9')).toEqual(new Date('2026-03-08T06:59:59.900Z'));
    expect(fromDbTime('2026-03-08 06:59:59')).toEqual(new Date('2026-03-08T06:59:59.000Z'));
    expect(fromDbTime('2026-03-08T06:59:59.999Z')).toEqual(instant);
    expect(fromDbTime(instant)).toEqual(instant);
    expect(fromDbTime(instant)).not.toBe(instant);
    expect(() => fromDbTime('yesterday')).toThrow(KurokoError);
    expect(() => toDbTimeString(new Date(Number.NaN))).toThrow(TypeError);
  });

  it('reads flags, integers and JSON', () => {
    expect([fromDbBool(1), fromDbBool(0), fromDbBool(true), fromDbBool(false), fromDbBool('1')]).toEqual([
      true, false, true, false, true,
    ]);
    expect(fromDbInt('9007199254740991')).toBe(Number.MAX_SAFE_INTEGER);
    expect(() => fromDbInt('9007199254740993')).toThrow(KurokoError);
    expect(parseJsonColumn(z.object({ a: z.number() }), '{"a":1}')).toEqual({ a: 1 });
    expect(() => parseJsonColumn(z.object({ a: z.number() }), '{"a":"x"}', 'tokens.context')).toThrow(/tokens.context/);
    expect(() => parseJsonColumn(z.unknown(), '{', 'env')).toThrow(/invalid JSON/);
  });
});

describe('driver error recognition', () => {
  it('knows duplicate keys and lock errors of each driver, also as a cause', () => {
    const mysql2 = Object.assign(new Error("Duplicate entry '1' for key 'PRIMARY'"), { code: 'ER_DUP_ENTRY', errno: 1062 });
    const sqlite = Object.assign(new Error('UNIQUE constraint failed: alerts.kind'), { code: 'SQLITE_CONSTRAINT_UNIQUE' });
    const dataApi = Object.assign(new Error("Database error code: 1062. Message: Duplicate entry 'a' for key 'x'"), {
      name: 'DatabaseErrorException',
    });
    for (const err of [mysql2, sqlite, dataApi, new Error('wrapped', { cause: dataApi })]) {
      expect(isDuplicateKeyError(err)).toBe(true);
      expect(isRetryableLockError(err)).toBe(false);
    }
    const deadlock = Object.assign(new Error('Database error code: 1213. Message: Deadlock found'), {
      name: 'BadRequestException',
    });
    const busy = Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
    for (const err of [deadlock, busy]) {
      expect(isRetryableLockError(err)).toBe(true);
      expect(isDuplicateKeyError(err)).toBe(false);
    }
    expect(isDuplicateKeyError(new Error('Duplicate entry, but from elsewhere'))).toBe(false);
    expect(isDuplicateKeyError(undefined)).toBe(false);
  });

  it('translates a duplicate key into a ConflictError and rethrows anything else', () => {
    const dup = Object.assign(new Error('dup'), { code: 'ER_DUP_ENTRY' });
    expect(() => translateDuplicateKey(dup, 'already there')).toThrow(ConflictError);
    const other = new Error('boom');
    expect(() => translateDuplicateKey(other, 'already there')).toThrow(other);
  });
});
