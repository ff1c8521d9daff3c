import {
  BadRequestException,
  BatchExecuteStatementCommand,
  BeginTransactionCommand,
  CommitTransactionCommand,
  ExecuteStatementCommand,
  NotFoundException,
  RDSDataClient,
  RollbackTransactionCommand,
} from '@aws-sdk/client-rds-data';
import type { ExecuteStatementCommandInput, SqlParameter } from '@aws-sdk/client-rds-data';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDuplicateKeyError } from '../../db/db-errors';
import { startDataApiServer } from '../helpers/data-api-server';
import type { DataApiServer } from '../helpers/data-api-server';
import { createMysqlDatabase } from '../helpers/test-database';

describe('local Data API server, driven by the real RDSDataClient', () => {
  let server: DataApiServer;
  let client: RDSDataClient;
  let database: Awaited<ReturnType<typeof createMysqlDatabase>>;

  const run = (sql: string, extra: Partial<ExecuteStatementCommandInput> = {}) =>
    client.send(
      new ExecuteStatementCommand({
        resourceArn: server.resourceArn,
        secretArn: server.secretArn,
        database: database.name,
        sql,
        ...extra,
      }),
    );
  const arns = () => ({ resourceArn: server.resourceArn, secretArn: server.secretArn });
  const countRows = async (id: number) => {
    const r = await run('select count(*) as n from things where id = :id', {
      parameters: [{ name: 'id', value: { longValue: id } }],
    });
    return r.records?.[0]?.[0]?.longValue;
  };

  beforeAll(async () => {
    database = await createMysqlDatabase();
    server = await startDataApiServer({ mysqlUrl: database.url });
    client = new RDSDataClient({
      endpoint: server.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    await run(`create table things (
      id bigint primary key,
      name varchar(100) not null,
      flag tinyint(1) not null,
      amount decimal(10, 2),
      ratio double,
      at datetime(3),
      note text,
      data varbinary(16)
    ) default charset = utf8mb4`);
    await run('create table counters (id bigint auto_increment primary key, label varchar(20))');
  });

  afterAll(async () => {
    client?.destroy();
    await server?.close();
    await database?.drop();
  });

  it('executes a statement with typed parameters and returns typed fields and metadata', async () => {
    const parameters: SqlParameter[] = [
      { name: 'id', value: { longValue: 1 } },
      { name: 'name', value: { stringValue: 'すし 🍣' } },
      { name: 'flag', value: { booleanValue: true } },
      { name: 'amount', value: { stringValue: '12.50' }, typeHint: 'DECIMAL' },
      { name: 'ratio', value: { doubleValue: 0.25 } },
      { name: 'at', value: { stringValue: '2026-03-08 06:59:59.999' }, typeHint: 'TIMESTAMP' },
      { name: 'note', value: { isNull: true } },
      { name: 'data', value: { blobValue: new Uint8Array([1, 2, 255]) } },
    ];
    const insert = await run(
      'insert into things (id, name, flag, amount, ratio, at, note, data) values (:id, :name, :flag, :amount, :ratio, :at, :note, :data)',
      { parameters },
    );
    expect(insert.numberOfRecordsUpdated).toBe(1);
    expect(insert.records).toBeUndefined();
    expect(insert.columnMetadata).toBeUndefined();

    const select = await run("select id, name, flag, amount, ratio, at, note, data, ':not_a_param' as literal from things where id = :id", {
      parameters: [{ name: 'id', value: { longValue: 1 } }],
      includeResultMetadata: true,
    });
    expect(select.records).toHaveLength(1);
    const [record] = select.records ?? [];
    expect(record?.slice(0, 8)).toEqual([
      { longValue: 1 },
      { stringValue: 'すし 🍣' },
      { booleanValue: true },
      { stringValue: '12.50' },
      { doubleValue: 0.25 },
      { stringValue: '2026-03-08 06:59:59.999' },
      { isNull: true },
      { blobValue: new Uint8Array([1, 2, 255]) },
    ]);
    expect(record?.[8]).toEqual({ stringValue: ':not_a_param' });
    expect(select.columnMetadata?.map((c) => [c.label, c.typeName])).toEqual([
      ['id', 'BIGINT'],
      ['name', 'VARCHAR'],
      ['flag', 'BIT'],
      ['amount', 'DECIMAL'],
      ['ratio', 'DOUBLE'],
      ['at', 'DATETIME'],
      ['note', 'VARCHAR'],
      ['data', 'BLOB'],
      ['literal', 'VARCHAR'],
    ]);

    const plain = await run('select id from things where id = :id', { parameters: [{ name: 'id', value: { longValue: 1 } }] });
    expect(plain.columnMetadata).toBeUndefined();
  });

  it('reports generated keys and counts statements', async () => {
    server.resetCounts();
    const first = await run("insert into counters (label) values ('a')");
    const second = await run("insert into counters (label) values ('b')");
    expect(first.generatedFields).toEqual([{ longValue: 1 }]);
    expect(second.generatedFields).toEqual([{ longValue: 2 }]);
    expect(server.statementCount()).toBe(2);
    expect(server.callCount()).toBe(2);
  });

  it('runs a batch with parameter sets', async () => {
    const result = await client.send(
      new BatchExecuteStatementCommand({
        ...arns(),
        database: database.name,
        sql: 'insert into counters (label) values (:label)',
        parameterSets: [[{ name: 'label', value: { stringValue: 'x' } }], [{ name: 'label', value: { stringValue: 'y' } }]],
      }),
    );
    expect(result.updateResults).toHaveLength(2);
    const labels = await run("select label from counters where label in ('x', 'y') order by label");
    expect(labels.records?.map((r) => r[0]?.stringValue)).toEqual(['x', 'y']);
  });

  it('commits a transaction, and keeps its writes invisible to others until then', async () => {
    const { transactionId } = await client.send(new BeginTransactionCommand({ ...arns(), database: database.name }));
    expect(transactionId).toBeTruthy();
    await run("insert into things (id, name, flag) values (10, 'in tx', 0)", { transactionId });
    expect(await countRows(10)).toBe(0);
    const inside = await run('select count(*) from things where id = 10', { transactionId });
    expect(inside.records?.[0]?.[0]?.longValue).toBe(1);
    const commit = await client.send(new CommitTransactionCommand({ ...arns(), transactionId }));
    expect(commit.transactionStatus).toBe('Transaction Committed');
    expect(await countRows(10)).toBe(1);
    expect(server.openTransactions()).toBe(0);
  });

  it('rolls a transaction back', async () => {
    const { transactionId } = await client.send(new BeginTransactionCommand({ ...arns(), database: database.name }));
    await run("insert into things (id, name, flag) values (11, 'rolled back', 1)", { transactionId });
    const rollback = await client.send(new RollbackTransactionCommand({ ...arns(), transactionId }));
    expect(rollback.transactionStatus).toBe('Rollback Complete');
    expect(await countRows(11)).toBe(0);
    await expect(run('select 1', { transactionId })).rejects.toBeInstanceOf(NotFoundException);
  });

  it('surfaces database errors as SDK exceptions that the driver error translation recognises', async () => {
    const err = await run("insert into things (id, name, flag) values (1, 'again', 0)").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BadRequestException);
    expect((err as Error).message).toMatch(/^Database error code: 1062\. Message: Duplicate entry '1' for key/);
    expect(isDuplicateKeyError(err)).toBe(true);

    const syntax = await run('selec nothing').then(() => undefined, (e: unknown) => e);
    expect(syntax).toBeInstanceOf(BadRequestException);
    expect((syntax as Error).message).toMatch(/error code: 1064/);
    expect(isDuplicateKeyError(syntax)).toBe(false);

    const missing = await run('select :nope').then(() => undefined, (e: unknown) => e);
    expect(missing).toBeInstanceOf(BadRequestException);

    const wrongSecret = await client
      .send(new ExecuteStatementCommand({ resourceArn: server.resourceArn, secretArn: 'arn:aws:secretsmanager:x', sql: 'select 1' }))
      .then(() => undefined, (e: unknown) => e);
    expect(wrongSecret).toBeInstanceOf(BadRequestException);
  });
});
