/**
 * Measures what the RDS Data API limits, on the real SDK client, whatever the server behind it enforces: the
 * characters of every statement's `sql`, the bytes of every row of every result set and of every response. Tests
 * and benches run the product's own reads and writes through `meter.client` (a `dataApiClient` for
 * createDatabase) and then assert `meter.violations()` is empty.
 *
 * The limits, from AWS's documentation:
 * - 64 KB per row of a result set ("Packet for query is too large") and 1 MiB per response:
 *   https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/data-api.limitations.html
 *   https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/data-api.troubleshooting.html
 * - ExecuteStatement's `sql` is at most 65,536 characters, and "if the binary response data from the database is
 *   more than 1 MB, the call is terminated":
 *   https://docs.aws.amazon.com/rdsdataservice/latest/APIReference/API_ExecuteStatement.html
 *
 * A row is counted as the bytes of its values (UTF-8 for text, 8 for numbers), what MySQL sends for it; a
 * response as the JSON the service answers with (values, their type wrappers, the metadata), which is larger than
 * its binary data, so a response passing here passes there.
 */
import { RDSData } from '@aws-sdk/client-rds-data';
import type { Field } from '@aws-sdk/client-rds-data';
import { DATA_API_MAX_RESPONSE_BYTES, DATA_API_MAX_ROW_BYTES, DATA_API_MAX_SQL_CHARS, utf8Bytes } from '../../core/row-limits';

/** What one statement cost, kept for the widest of each kind. */
export interface MeasuredStatement {
  sql: string;
  sqlChars: number;
  rows: number;
  maxRowBytes: number;
  responseBytes: number;
}

export interface LimitStats {
  statements: number;
  /** Rows returned by every statement, summed. */
  rowsReturned: number;
  maxSqlChars: number;
  maxRowBytes: number;
  maxResponseBytes: number;
  /** The statements that set each maximum (their SQL cut to 200 characters). */
  widestSql?: MeasuredStatement;
  widestRow?: MeasuredStatement;
  largestResponse?: MeasuredStatement;
}

export interface LimitMeter {
  /** An SDK client for the given endpoint that measures every ExecuteStatement and BatchExecuteStatement. */
  client: RDSData;
  stats(): LimitStats;
  /** One line per statement that broke a limit: which, by how much, and the statement's start. */
  violations(): string[];
  reset(): void;
}

const SQL_PREVIEW_CHARS = 200;
const NUMBER_BYTES = 8;
const MAX_VIOLATIONS_KEPT = 50;

/** Bytes of one field's value as the database sends it. */
function fieldBytes(field: Field): number {
  if (field.stringValue !== undefined) return utf8Bytes(field.stringValue);
  if (field.blobValue !== undefined) return field.blobValue.byteLength;
  if (field.longValue !== undefined || field.doubleValue !== undefined) return NUMBER_BYTES;
  if (field.booleanValue !== undefined) return 1;
  if (field.arrayValue !== undefined) return utf8Bytes(JSON.stringify(field.arrayValue));
  return 0;
}

/** The JSON size of a response body as the service sends it (blobs base64-encoded). */
function responseBytes(output: Record<string, unknown>): number {
  const { $metadata: _metadata, ...body } = output;
  return Buffer.byteLength(
    JSON.stringify(body, (_key, value: unknown) => (value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value)),
    'utf8',
  );
}

/** A metered client for a local Data API endpoint (test/helpers/data-api-server.ts) or any other. */
export function createLimitMeter(options: { endpoint: string; region?: string }): LimitMeter {
  const client = new RDSData({
    region: options.region ?? 'us-east-1',
    endpoint: options.endpoint,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  let stats: LimitStats = { statements: 0, rowsReturned: 0, maxSqlChars: 0, maxRowBytes: 0, maxResponseBytes: 0 };
  let violations: string[] = [];
  const flag = (line: string) => {
    if (violations.length < MAX_VIOLATIONS_KEPT) violations.push(line);
  };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = context.commandName;
      if (command !== 'ExecuteStatementCommand' && command !== 'BatchExecuteStatementCommand') return next(args);
      const sql = String((args.input as { sql?: string }).sql ?? '');
      const result = await next(args);
      const output = result.output as unknown as { records?: Field[][] } & Record<string, unknown>;
      let maxRow = 0;
      for (const record of output.records ?? []) {
        let bytes = 0;
        for (const field of record) bytes += fieldBytes(field);
        if (bytes > maxRow) maxRow = bytes;
      }
      const measured: MeasuredStatement = {
        sql: sql.slice(0, SQL_PREVIEW_CHARS),
        sqlChars: sql.length,
        rows: output.records?.length ?? 0,
        maxRowBytes: maxRow,
        responseBytes: responseBytes(output),
      };
      stats.statements++;
      stats.rowsReturned += measured.rows;
      if (measured.sqlChars > stats.maxSqlChars) Object.assign(stats, { maxSqlChars: measured.sqlChars, widestSql: measured });
      if (measured.maxRowBytes > stats.maxRowBytes) Object.assign(stats, { maxRowBytes: measured.maxRowBytes, widestRow: measured });
      if (measured.responseBytes > stats.maxResponseBytes) Object.assign(stats, { maxResponseBytes: measured.responseBytes, largestResponse: measured });
      const at = `: ${measured.sql}`;
      if (measured.sqlChars > DATA_API_MAX_SQL_CHARS) flag(`sql of ${measured.sqlChars} characters (limit ${DATA_API_MAX_SQL_CHARS})${at}`);
      if (measured.maxRowBytes >= DATA_API_MAX_ROW_BYTES) flag(`a row of ${measured.maxRowBytes} bytes (limit ${DATA_API_MAX_ROW_BYTES})${at}`);
      if (measured.responseBytes >= DATA_API_MAX_RESPONSE_BYTES) flag(`a response of ${measured.responseBytes} bytes (limit ${DATA_API_MAX_RESPONSE_BYTES})${at}`);
      return result;
    },
    { step: 'initialize', name: 'kurokoDataApiLimitMeter' },
  );
  return {
    client,
    stats: () => ({ ...stats }),
    violations: () => [...violations],
    reset() {
      stats = { statements: 0, rowsReturned: 0, maxSqlChars: 0, maxRowBytes: 0, maxResponseBytes: 0 };
      violations = [];
    },
  };
}
