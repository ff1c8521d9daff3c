import { describe, expect, it } from 'vitest';
import { dataApiUrl } from '../../app/config/data-api-url';
import { parseDatabaseUrl } from '../../db/connection';

const CLUSTER = 'arn:aws:rds:ap-northeast-1:123456789012:cluster:kuroko';
const SECRET = 'arn:aws:secretsmanager:ap-northeast-1:123456789012:secret:kuroko-db-AbCdEf';

describe('dataApiUrl', () => {
  it('names the cluster, secret and database, with the region taken from the cluster ARN', () => {
    expect(parseDatabaseUrl(dataApiUrl({ clusterArn: CLUSTER, secretArn: SECRET, databaseName: 'kuroko' }))).toEqual({
      dialect: 'data-api',
      resourceArn: CLUSTER,
      secretArn: SECRET,
      database: 'kuroko',
      region: 'ap-northeast-1',
    });
  });

  it('carries an endpoint and a region when given', () => {
    const url = dataApiUrl({ clusterArn: CLUSTER, secretArn: SECRET, databaseName: 'kuroko', endpoint: 'http://127.0.0.1:8080' }, 'us-east-1');
    expect(parseDatabaseUrl(url)).toMatchObject({ endpoint: 'http://127.0.0.1:8080', region: 'us-east-1' });
  });
});
