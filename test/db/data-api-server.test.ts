import {
  BadRequestException,
  BatchExecuteStatementCommand,
  BeginTransactionCommand,
  CommitTransactionCommand,
  DatabaseErrorException,
  DatabaseResumingException,
  ExecuteStatementCommand,
  InternalServerErrorException,
  NotFoundException,
  RDSDataClient,
  RollbackTransactionCommand,
  ServiceUnavailableError,
  StatementTimeoutException,
} from '@aws-sdk/client-rds-data';
import type { ExecuteStatementCommandInput, SqlParameter } from '@aws-sdk/client-rds-data';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isDuplicateKeyError } from '../../db/db-errors';
import { hasMultipleStatements, startDataApiServer } from '../helpers/data-api-server';
import type { DataApiServer, DataApiServerOptions } from '../helpers/data-api-server';
import { createMysqlDatabase } from '../helpers/test-database';
import { waitFor } from '../helpers/wait-for';

/** The error a promise rejects with (undefined when it resolves). */
const failure = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

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

  // Serverless v2 and provisioned clusters answer SQL errors as DatabaseErrorException; BadRequestException "only
  // appears in calls from Aurora Serverless v1 databases":
  // https://docs.aws.amazon.com/rdsdataservice/latest/APIReference/API_ExecuteStatement.html (Errors)
  it('surfaces database errors as SDK exceptions that the driver error translation recognises', async () => {
    const err = await run("insert into things (id, name, flag) values (1, 'again', 0)").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DatabaseErrorException);
    expect((err as Error).message).toMatch(/^Database error code: 1062\. Message: Duplicate entry '1' for key/);
    expect(isDuplicateKeyError(err)).toBe(true);

    const syntax = await run('selec nothing').then(() => undefined, (e: unknown) => e);
    expect(syntax).toBeInstanceOf(DatabaseErrorException);
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

/** A server of its own per test (options differ), on one database, driven by the real client without SDK retries. */
describe('local Data API server: the service limits and failures, strict by default', () => {
  let database: Awaited<ReturnType<typeof createMysqlDatabase>>;
  const servers: DataApiServer[] = [];
  const clients: RDSDataClient[] = [];

  beforeAll(async () => {
    database = await createMysqlDatabase();
    const setup = await startDataApiServer({ mysqlUrl: database.url, limits: false });
    const client = new RDSDataClient({ endpoint: setup.endpoint, region: 'us-east-1', credentials: { accessKeyId: 't', secretAccessKey: 't' } });
    const sql = async (text: string) =>
      client.send(new ExecuteStatementCommand({ resourceArn: setup.resourceArn, secretArn: setup.secretArn, database: database.name, sql: text }));
    await sql('create table wide (id bigint primary key, body longtext not null) default charset = utf8mb4');
    // 20 rows of 60,000 bytes (about 1.2 MB together) and one of 70,000.
    for (let id = 1; id <= 20; id++) await sql(`insert into wide values (${id}, repeat('x', 60000))`);
    await sql("insert into wide values (100, repeat('y', 70000))");
    await sql('create table marks (id bigint primary key, note varchar(20))');
    client.destroy();
    await setup.close();
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) client.destroy();
    for (const server of servers.splice(0)) await server.close();
  });

  afterAll(async () => {
    await database?.drop();
  });

  async function serve(options: Partial<DataApiServerOptions> = {}) {
    const server = await startDataApiServer({ mysqlUrl: database.url, ...options });
    servers.push(server);
    // maxAttempts 1: the SDK would retry throttling and 5xx on its own; these tests look at single answers.
    const client = new RDSDataClient({
      endpoint: server.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 't', secretAccessKey: 't' },
      maxAttempts: 1,
    });
    clients.push(client);
    const arns = { resourceArn: server.resourceArn, secretArn: server.secretArn };
    const run = (sql: string, extra: Partial<ExecuteStatementCommandInput> = {}) =>
      client.send(new ExecuteStatementCommand({ ...arns, database: database.name, sql, ...extra }));
    const begin = async () => (await client.send(new BeginTransactionCommand({ ...arns, database: database.name }))).transactionId as string;
    const commit = (transactionId: string) => client.send(new CommitTransactionCommand({ ...arns, transactionId }));
    return { server, client, run, begin, commit };
  }

  // "The Data API size limit is 64 KB per row in the result set returned by the database" (Packet for query is too
  // large): https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/data-api.troubleshooting.html and
  // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/data-api.limitations.html
  it('refuses a result with a row over 64 KB, and serves one of 60,000 bytes', async () => {
    const { run } = await serve();
    const err = await failure(run('select id, body from wide where id = 100'));
    expect(err).toBeInstanceOf(DatabaseErrorException);
    expect((err as Error).message).toMatch(/^Packet for query is too large \(70003 > 65536\)/);
    const ok = await run('select id, body from wide where id = 1');
    expect(ok.records?.[0]?.[1]?.stringValue).toHaveLength(60_000);
  });

  // "If the binary response data from the database is more than 1 MB, the call is terminated":
  // https://docs.aws.amazon.com/rdsdataservice/latest/APIReference/API_ExecuteStatement.html; the message is the
  // "Database response exceeded size limit" of data-api.troubleshooting.html.
  it('refuses a result of more than 1 MiB, and serves the same rows paged', async () => {
    const { server, run } = await serve();
    const err = await failure(run('select id, body from wide where id <= 20'));
    expect(err).toBeInstanceOf(DatabaseErrorException);
    expect((err as Error).message).toMatch(/^Database response exceeded size limit \(\d+ > 1048576\)/);
    const page = await run('select id, body from wide where id <= 20 order by id limit 10');
    expect(page.records).toHaveLength(10);
    expect(server.largest().rowBytes).toBe(60_002); // the widest row served: id "10" and its body
  });

  // ExecuteStatement's `sql`: "Length Constraints: Maximum length of 65536":
  // https://docs.aws.amazon.com/rdsdataservice/latest/APIReference/API_ExecuteStatement.html
  it('refuses a statement text over 65,536 characters', async () => {
    const { run } = await serve();
    const padded = (length: number) => `select 1 /*${' '.repeat(length - 'select 1 /**/'.length)}*/`;
    expect(padded(65_536)).toHaveLength(65_536);
    await expect(run(padded(65_536))).resolves.toBeDefined();
    const err = await failure(run(padded(65_537)));
    expect(err).toBeInstanceOf(BadRequestException);
    expect((err as Error).message).toMatch(/Member must have length less than or equal to 65536/);
  });

  // "the maximum size of the HTTP request submitted through the Data API is 4 MiB ... the Data API returns an error and
  // doesn't process the request": https://docs.aws.amazon.com/rdsdataservice/latest/APIReference/API_BatchExecuteStatement.html
  it('refuses a request over 4 MiB, parameters included, and runs nothing of it', async () => {
    const { run } = await serve();
    await run('create table if not exists big_params (id int primary key, body longtext)');
    const insert = (id: number, chars: number) =>
      run('insert into big_params (id, body) values (:id, :body)', {
        parameters: [
          { name: 'id', value: { longValue: id } },
          { name: 'body', value: { stringValue: 'x'.repeat(chars) } },
        ],
      });
    await expect(insert(1, 4 * 1024 * 1024 - 4_096)).resolves.toBeDefined();
    const err = await failure(insert(2, 4 * 1024 * 1024));
    expect(err).toBeInstanceOf(BadRequestException);
    expect((err as Error).message).toMatch(/exceeds the limit of 4194304 bytes/);
    expect((await run('select id from big_params order by id')).records?.map((r) => r[0]?.longValue)).toEqual([1]);
  });

  // "Multi-statements aren't supported": https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/data-api.troubleshooting.html
  it('refuses multi-statements, but not a trailing semicolon or one in a literal', async () => {
    const { run } = await serve();
    const err = await failure(run('select 1; select 2'));
    expect(err).toBeInstanceOf(DatabaseErrorException);
    expect((err as Error).message).toBe("Multi-statements aren't supported.");
    await expect(run('select 1;')).resolves.toBeDefined();
    await expect(run("select ';', 'a;b' -- x; y")).resolves.toBeDefined();
    expect(hasMultipleStatements("insert into t values (';'); delete from t")).toBe(true);
    expect(hasMultipleStatements('select 1; -- done')).toBe(false);
  });

  // "DatabaseErrorException: Transaction is still running a query": "If your application sends a request with a
  // transaction ID and that transaction is currently processing another request, Data API immediately returns this
  // error": https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/data-api.troubleshooting.html
  it('runs one statement at a time per transaction', async () => {
    const { run, begin, commit } = await serve();
    const transactionId = await begin();
    const slow = run('select sleep(1)', { transactionId });
    // The slow call must have reached the server before the second one; poll until the second is refused.
    const err = await waitFor(async () => {
      const e = await failure(run('select 1', { transactionId }));
      return e instanceof DatabaseErrorException ? e : undefined;
    });
    expect(err.message).toBe('Transaction is still running a query');
    await slow;
    await expect(run('select 1', { transactionId })).resolves.toBeDefined();
    await commit(transactionId);
  });

  // "Make sure that each transactional call runs within three minutes of the previous one" (Transaction isn't found):
  // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/data-api.troubleshooting.html (here 300 ms)
  it('expires a transaction left without a call, rolling it back', async () => {
    const { server, run, begin } = await serve({ transactionIdleTimeoutMs: 300 });
    const transactionId = await begin();
    await run("insert into marks values (1, 'expired')", { transactionId });
    await waitFor(() => server.openTransactions() === 0, { description: 'the transaction to expire' });
    await expect(run('select 1', { transactionId })).rejects.toBeInstanceOf(NotFoundException);
    const rows = await run('select count(*) from marks where id = 1');
    expect(rows.records?.[0]?.[0]?.longValue).toBe(0);
  });

  // "By default, a call times out if it's not finished processing within 45 seconds. However, you can continue running
  // a SQL statement if the call times out by using the continueAfterTimeout parameter":
  // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/data-api.html (here 300 ms)
  it('times a statement out and stops it, unless continueAfterTimeout', async () => {
    const { run } = await serve({ statementTimeoutMs: 300 });
    const running = async (tag: string) => {
      const r = await run(`select count(*) from information_schema.processlist where info like '%${tag}%' and info not like '%processlist%'`);
      // (the tag is a bare word: the pattern sits in a literal)
      return r.records?.[0]?.[0]?.longValue ?? 0;
    };
    const stopped = await failure(run("insert into marks select 2, 'stopped' from dual where sleep(30) = 0"));
    expect(stopped).toBeInstanceOf(StatementTimeoutException);
    expect((stopped as StatementTimeoutException).dbConnectionId).toBeGreaterThan(0);
    // Killed: gone from the process list long before its 30 s, and it wrote nothing.
    await waitFor(async () => (await running('stopped')) === 0, { timeoutMs: 10_000, description: 'the statement to be stopped' });
    expect((await run('select count(*) from marks where id = 2')).records?.[0]?.[0]?.longValue).toBe(0);

    const continued = await failure(
      run("insert into marks select 3, 'continued' from dual where sleep(1) = 0", { continueAfterTimeout: true }),
    );
    expect(continued).toBeInstanceOf(StatementTimeoutException);
    await waitFor(async () => (await run('select count(*) from marks where id = 3')).records?.[0]?.[0]?.longValue === 1, {
      description: 'the statement to finish after the timeout',
    });
  });

  it('turns every limit off with limits: false', async () => {
    const { run } = await serve({ limits: false });
    const all = await run('select id, body from wide where id <= 20 or id = 100');
    expect(all.records).toHaveLength(21);
    await expect(run('select 1; select 2')).rejects.toBeInstanceOf(DatabaseErrorException); // MariaDB itself refuses
  });

  // DatabaseResumingException (HTTP 400): "A request was cancelled because the Aurora Serverless v2 DB instance was
  // paused. The Data API request automatically resumes the DB instance. Wait a few seconds and try again."
  // https://docs.aws.amazon.com/rdsdataservice/latest/APIReference/API_ExecuteStatement.html (Errors) and
  // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-serverless-v2-auto-pause.html
  it('answers DatabaseResumingException from the first call after a pause until the resume ends', async () => {
    const { server, run } = await serve();
    expect(server.clusterState()).toBe('available');
    server.pause(400);
    expect(server.clusterState()).toBe('paused');
    const first = await failure(run('select 1'));
    expect(first).toBeInstanceOf(DatabaseResumingException);
    expect((first as DatabaseResumingException).$metadata.httpStatusCode).toBe(400);
    expect((first as DatabaseResumingException).$fault).toBe('client');
    expect((first as Error).message).toMatch(/resuming/);
    expect(server.clusterState()).toBe('resuming');
    await expect(run('select 1')).rejects.toBeInstanceOf(DatabaseResumingException);
    await waitFor(async () => (await run('select 1')).records, { description: 'the resume to end' });
    expect(server.resumeCount()).toBe(1);
    expect(server.resumingAnswers()).toBeGreaterThanOrEqual(2);
  });

  it('pauses by itself after the idle period, never while a transaction is open', async () => {
    const { server, run, begin, commit } = await serve({ autoPause: { idleMs: 300, resumeMs: 300 } });
    const transactionId = await begin();
    await run('select 1', { transactionId });
    // Open transactions keep the cluster awake, however long they wait (within their own expiry).
    const openedAt = Date.now();
    await waitFor(() => Date.now() - openedAt > 600, { description: 'an idle period' });
    expect(server.clusterState()).toBe('available');
    await commit(transactionId);
    await waitFor(() => server.clusterState() === 'paused', { description: 'the auto-pause' });
    await expect(run('select 1')).rejects.toBeInstanceOf(DatabaseResumingException);
    await waitFor(async () => (await run('select 1')).records, { description: 'the resume to end' });
    expect(server.clusterState()).toBe('available');
  });

  // Throttling ("ThrottlingException ... Rate exceeded", as the RDS APIs answer it:
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-api-throttling.html) and the Data API's own server
  // errors, ServiceUnavailableError (503) and InternalServerErrorException (500):
  // https://docs.aws.amazon.com/rdsdataservice/latest/APIReference/API_ExecuteStatement.html (Errors)
  it('injects throttling and server errors at the given rate, before the statement runs', async () => {
    const { server, run } = await serve({ faults: { throttleRate: 1 } });
    const throttled = await failure(run("insert into marks values (4, 'throttled')"));
    expect((throttled as Error).name).toBe('ThrottlingException');
    expect((throttled as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode).toBe(400);

    const draws = [0.1, 0.2, 0.1, 0.7];
    server.setFaults({ serverErrorRate: 0.5, random: () => draws.shift() ?? 0.9 });
    expect(await failure(run("insert into marks values (5, 'failed')"))).toBeInstanceOf(ServiceUnavailableError);
    expect(await failure(run("insert into marks values (5, 'failed')"))).toBeInstanceOf(InternalServerErrorException);
    await run("insert into marks values (5, 'ran')");
    server.setFaults({});
    const rows = await run('select id, note from marks where id in (4, 5)');
    expect(rows.records?.map((r) => r[1]?.stringValue)).toEqual(['ran']);
  });
});
