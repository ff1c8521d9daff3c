/**
 * The idle month's bill for `npm run bench:idle`: the always-on resources counted in the synthesized templates
 * (alarms, secrets, KMS keys) and the usage lines from the simulated day, at us-east-1 list prices (cdk/README.md).
 */
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { parseDeployConfig } from '../cdk/deploy-config';
import { buildKurokoApp } from '../cdk/kuroko-app';

const MONTH_DAYS = 730 / 24;
const USD = {
  acuHour: 0.12,
  gbMonthStorage: 0.1,
  millionIo: 0.2,
  millionDataApi: 0.35,
  millionLambda: 0.2,
  gbSecond: 0.0000133334,
  gbLogs: 0.5,
  gbLogsStored: 0.03,
  alarm: 0.1,
  customMetricMonth: 0.3,
  secret: 0.4,
  kmsKeyFirstYear: 1,
} as const;
const MIN_ACU = 0.5;
const LAMBDA_GB = 0.5;
/** Assumptions (no local measure exists): stated in the printed table. */
const ASSUMED = {
  storageGb: 1,
  /** Most statements of an idle day read a few rows from the buffer pool; a write costs a few page writes. */
  ioPerDataApiCall: 10,
  /** Seconds of a tick that only reads the sleep parameter, and of one that runs its pass. */
  skipSeconds: 0.05,
  passSeconds: 0.3,
  /** Bytes of log a tick writes: Lambda's START/END/REPORT lines, and a pass's own lines on top. */
  logBytesPerInvocation: 400,
  logBytesPerPass: 2_000,
} as const;

export interface IdleDay {
  /** Ticks and passes a day, by whether they touched the database. */
  invocations: number;
  passes: number;
  dataApiCalls: number;
  awakeMinutes: number;
  /** Hours of the day in which the notifier ran a pass (and so wrote its EMF metric line). */
  metricHours: number;
  /** Ticking functions on AWS (the bench runs all but the provisioner, which skips like the others). */
  tickingFunctions: number;
}

/** Always-on billed resources of the default deploy config (one queue, alert email set), from its templates. */
export function alwaysOn(): { alarms: number; secrets: number; kmsKeys: number } {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stacks = buildKurokoApp(app, parseDeployConfig({ alertEmail: 'ops@example.com' }), { nag: false, migrationTrigger: 'bench' });
  const count = (type: string) => Object.values(stacks).reduce((n, s) => n + Object.keys(Template.fromStack(s).findResources(type)).length, 0);
  return { alarms: count('AWS::CloudWatch::Alarm'), secrets: count('AWS::SecretsManager::Secret'), kmsKeys: count('AWS::KMS::Key') };
}

/** The month's lines, `[item, USD, arithmetic]`. */
export function idleMonth(day: IdleDay, fixed = alwaysOn()): [string, number, string][] {
  const m = MONTH_DAYS;
  const invocations = (day.invocations * day.tickingFunctions) / 4 * m;
  const passes = day.passes * m;
  const skips = invocations - passes;
  const gbSeconds = (skips * ASSUMED.skipSeconds + passes * ASSUMED.passSeconds) * LAMBDA_GB;
  const logGb = (invocations * ASSUMED.logBytesPerInvocation + passes * ASSUMED.logBytesPerPass) / 1e9;
  const calls = day.dataApiCalls * m;
  const io = calls * ASSUMED.ioPerDataApiCall;
  const f = (n: number) => Math.round(n).toLocaleString('en-US');
  return [
    ['Aurora compute', (day.awakeMinutes / 60) * m * MIN_ACU * USD.acuHour, `${MIN_ACU} ACU x ${day.awakeMinutes} min/day awake (measured) x ${m.toFixed(2)} days x ${USD.acuHour}`],
    ['Aurora storage', ASSUMED.storageGb * USD.gbMonthStorage, `${ASSUMED.storageGb} GB (assumed) x ${USD.gbMonthStorage}`],
    ['Aurora I/O', (io / 1e6) * USD.millionIo, `${f(io)} I/Os (${ASSUMED.ioPerDataApiCall} per Data API call, assumed) x ${USD.millionIo} / M`],
    ['Data API', (calls / 1e6) * USD.millionDataApi, `${f(calls)} calls (measured) x ${USD.millionDataApi} / M`],
    ['Lambda requests', (invocations / 1e6) * USD.millionLambda, `${f(invocations)} invocations (${day.tickingFunctions} ticking functions) x ${USD.millionLambda} / M`],
    ['Lambda compute', gbSeconds * USD.gbSecond, `(${f(skips)} skips x ${ASSUMED.skipSeconds} s + ${f(passes)} passes x ${ASSUMED.passSeconds} s) x ${LAMBDA_GB} GB = ${f(gbSeconds)} GB-s`],
    ['CloudWatch Logs', logGb * (USD.gbLogs + USD.gbLogsStored), `${logGb.toFixed(3)} GB (${ASSUMED.logBytesPerInvocation} B an invocation, ${ASSUMED.logBytesPerPass} B more a pass) x (${USD.gbLogs} + ${USD.gbLogsStored})`],
    ['Outbox metric', (day.metricHours / 24) * USD.customMetricMonth, `${USD.customMetricMonth} a month, billed for the ${day.metricHours} hours a day the notifier runs a pass`],
    ['CloudWatch alarms', fixed.alarms * USD.alarm, `${fixed.alarms} alarms (synthesized) x ${USD.alarm}`],
    ['Secrets Manager', fixed.secrets * USD.secret, `${fixed.secrets} secrets (synthesized) x ${USD.secret}`],
    ['KMS keys', fixed.kmsKeys * USD.kmsKeyFirstYear, `${fixed.kmsKeys} customer managed keys (synthesized) x ${USD.kmsKeyFirstYear} (first year)`],
    // The admin client's and the webhook key's SecureString parameters are created by the migrator, not the templates.
    ['SSM parameters, EventBridge schedules', 0, 'standard tier (the sleep hint; the two generated keys, SecureString with aws/ssm) and scheduled rules: no charge'],
  ];
}
