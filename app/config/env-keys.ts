/**
 * Names shared by the CDK app (which sets them) and the config schemas in `config.ts` (which read them).
 * Changing a value here changes both sides at once; that is the point of the file.
 */

/** Environment variables of the Lambda functions and the worker agent. */
export const ENV_KEYS = {
  stage: 'KUROKO_STAGE',
  dbClusterArn: 'KUROKO_DB_CLUSTER_ARN',
  dbSecretArn: 'KUROKO_DB_SECRET_ARN',
  dbName: 'KUROKO_DB_NAME',
  /** The migrator only: secrets `{"username","password"}` of the agent and runtime MySQL users it creates (db/database-users.ts). */
  dbAgentSecretArn: 'KUROKO_DB_AGENT_SECRET_ARN',
  dbRuntimeSecretArn: 'KUROKO_DB_RUNTIME_SECRET_ARN',
  /** Overrides the Data API endpoint (tests against the local Data API server); never set in AWS. */
  dataApiEndpoint: 'KUROKO_DATA_API_ENDPOINT',
  alertTopicArn: 'KUROKO_ALERT_TOPIC_ARN',
  metricsNamespace: 'KUROKO_METRICS_NAMESPACE',
  /** Where notification links point: the HTTP API's URL, which also serves the console. */
  baseUrl: 'KUROKO_BASE_URL',
  /** The global Slack incoming webhook; without it there is no Slack channel. */
  slackWebhookUrl: 'KUROKO_SLACK_WEBHOOK_URL',
  /** HMAC key of the definition webhooks' X-Kuroko2-Signature. */
  webhookSecret: 'KUROKO_WEBHOOK_SECRET',
  /** On AWS: the operator's Secrets Manager secret holding the Slack webhook URL, read at cold start. */
  slackWebhookUrlSecretArn: 'KUROKO_SLACK_WEBHOOK_URL_SECRET_ARN',
  /**
   * On AWS: the SSM SecureString parameter holding the webhook key (the migrator creates it, the notifier reads it
   * at cold start). A parameter, not a Secrets Manager secret: standard parameters cost nothing (issue 17).
   */
  webhookSecretParameter: 'KUROKO_WEBHOOK_SECRET_PARAMETER',
  executionLogGroup: 'KUROKO_EXECUTION_LOG_GROUP',
  processorFunction: 'KUROKO_PROCESSOR_FUNCTION',
  notifierFunction: 'KUROKO_NOTIFIER_FUNCTION',
  /** The SQS doorbell queue the processor rings when a pass queued commands (issue 18). */
  doorbellQueueUrl: 'KUROKO_DOORBELL_QUEUE_URL',
  declaredQueues: 'KUROKO_DECLARED_QUEUES',
  workerQueues: 'KUROKO_WORKER_QUEUES',
  /** On AWS: the SSM SecureString parameter `{"name","secret"}` of the first admin API client (the migrator's). */
  apiClientsParameter: 'KUROKO_API_CLIENTS_PARAMETER',
  /** The console's cookie-signing key: a Secrets Manager secret the api reads at cold start. */
  consoleSecretArn: 'KUROKO_CONSOLE_SECRET_ARN',
  /** The console's cookie-signing key itself (the local mode and self-hosted servers). */
  consoleSecret: 'KUROKO_CONSOLE_SECRET',
  /** The console's OpenID Connect provider; the console is served only when it is set. */
  oidcIssuer: 'KUROKO_OIDC_ISSUER',
  oidcClientId: 'KUROKO_OIDC_CLIENT_ID',
  /** The OIDC client secret, read from Secrets Manager by ARN: never a plaintext variable. */
  oidcClientSecretArn: 'KUROKO_OIDC_CLIENT_SECRET_ARN',
  /** The OIDC client secret itself (self-hosted servers). */
  oidcClientSecret: 'KUROKO_OIDC_CLIENT_SECRET',
  oidcAllowedDomains: 'KUROKO_OIDC_ALLOWED_DOMAINS',
  /** `true` lets in people whose provider sends no `email_verified` claim at all (as viewers only); see docs/security.md. */
  oidcAllowUnverifiedEmail: 'KUROKO_OIDC_ALLOW_UNVERIFIED_EMAIL',
  /** `true` lets definition webhooks reach link-local and metadata addresses (adapters/channels/webhook-address-guard.ts). */
  webhookAllowLinkLocal: 'KUROKO_WEBHOOK_ALLOW_LINK_LOCAL',
  consoleAdmins: 'KUROKO_CONSOLE_ADMINS',
  agentConfigParameter: 'KUROKO_AGENT_CONFIG_PARAMETER',
  /** The SSM parameter holding the idle-sleep hint (adapters/aws/sleep-gate.ts); without it the engine never sleeps. */
  sleepParameter: 'KUROKO_SLEEP_PARAMETER',
  /**
   * How long one Data API call waits out a paused cluster's resume, in seconds (each function has its default, fit
   * to its timeout: app/lambda/lambda-resume.ts).
   */
  dbResumeWaitSeconds: 'KUROKO_DB_RESUME_WAIT_SECONDS',
  /** The scheduler's longest idle sleep, in minutes (60 when unset). */
  sleepMaxMinutes: 'KUROKO_SLEEP_MAX_MINUTES',
  /** The global retention policy in days (0 keeps forever); see core/services/retention-service.ts. */
  retentionDays: 'KUROKO_RETENTION_DAYS',
  /**
   * On the scheduler with idle sleep: the retention function it nudges when it puts the engine to sleep and a pass is
   * owed since the daily slot at KUROKO_RETENTION_HOUR_UTC (issue 17: the pass rides on a wake instead of its own).
   */
  retentionFunction: 'KUROKO_RETENTION_FUNCTION',
  retentionHourUtc: 'KUROKO_RETENTION_HOUR_UTC',
  /** The monitor's thresholds (core/services/monitor-settings.ts has the defaults). */
  assignmentDelaySeconds: 'KUROKO_ASSIGNMENT_DELAY_SECONDS',
  noPidSeconds: 'KUROKO_NO_PID_SECONDS',
  processAbsenceSeconds: 'KUROKO_PROCESS_ABSENCE_SECONDS',
  workerLostSeconds: 'KUROKO_WORKER_LOST_SECONDS',
  memoryFactor: 'KUROKO_MEMORY_FACTOR',
  memoryMinExcessMb: 'KUROKO_MEMORY_MIN_EXCESS_MB',
  /** The local mode and `kuroko server` (cli/dev-command.ts): how they listen, where they keep data, their loops. */
  port: 'PORT',
  host: 'KUROKO_HOST',
  dataDir: 'KUROKO_DATA_DIR',
  agents: 'KUROKO_AGENTS',
  databaseUrl: 'KUROKO_DATABASE_URL',
  logDir: 'KUROKO_LOG_DIR',
  apiClients: 'KUROKO_API_CLIENTS',
  /** `kuroko agent`: comma-separated queue names, command slots, and the user commands run as. */
  queues: 'KUROKO_QUEUES',
  slots: 'KUROKO_SLOTS',
  runAs: 'KUROKO_RUN_AS',
  monitorIntervalSeconds: 'KUROKO_MONITOR_INTERVAL_SECONDS',
  agentHeartbeatSeconds: 'KUROKO_AGENT_HEARTBEAT_SECONDS',
  powertoolsServiceName: 'POWERTOOLS_SERVICE_NAME',
  powertoolsLogLevel: 'POWERTOOLS_LOG_LEVEL',
  nodeOptions: 'NODE_OPTIONS',
} as const;
export type EnvKey = (typeof ENV_KEYS)[keyof typeof ENV_KEYS];

/** The variables of the monitor's thresholds. */
export const MONITOR_ENV_KEYS = {
  assignmentDelaySeconds: ENV_KEYS.assignmentDelaySeconds,
  noPidSeconds: ENV_KEYS.noPidSeconds,
  processAbsenceSeconds: ENV_KEYS.processAbsenceSeconds,
  workerLostSeconds: ENV_KEYS.workerLostSeconds,
  memoryFactor: ENV_KEYS.memoryFactor,
  memoryMinExcessMb: ENV_KEYS.memoryMinExcessMb,
} as const;

/** The variables `kuroko agent` falls back to when an option is not given (cli/agent-command.ts). */
export const AGENT_ENV_KEYS = {
  databaseUrl: ENV_KEYS.databaseUrl,
  queues: ENV_KEYS.queues,
  slots: ENV_KEYS.slots,
  logDir: ENV_KEYS.logDir,
  runAs: ENV_KEYS.runAs,
} as const;

/** The Lambda functions of the AWS mode; each has `functions/<name>/handler.ts`. */
export const LAMBDA_NAMES = {
  processor: 'processor',
  scheduler: 'scheduler',
  monitor: 'monitor',
  notifier: 'notifier',
  provisioner: 'provisioner',
  api: 'api',
  migrator: 'migrator',
  retention: 'retention',
} as const;
export type LambdaName = (typeof LAMBDA_NAMES)[keyof typeof LAMBDA_NAMES];

/** Tags every worker instance carries; IAM conditions of the provisioner and the agent rely on them. */
export const WORKER_TAGS = {
  queue: 'kuroko:queue',
  managed: 'kuroko:managed',
  stage: 'kuroko:stage',
} as const;

/** The custom metric the notifier publishes and an alarm watches. */
export const OUTBOX_METRIC = {
  namespace: 'KurokoServerless',
  name: 'OutboxBacklog',
} as const;

/**
 * Bounds of a configured cap on the idle sleep (deploy config `idleSleep.maxMinutes`, KUROKO_SLEEP_MAX_MINUTES):
 * shorter than ten minutes saves little, since Aurora pauses only after five idle minutes. Unset, there is no cap:
 * the engine sleeps until just before the next due slot or reminder however far away, and with nothing due at all
 * for `max` (a year: the hint needs a date; any API write ends it sooner).
 */
export const SLEEP_MAX_MINUTES = { min: 10, max: 525_600 } as const;

/** Powertools log levels accepted by `POWERTOOLS_LOG_LEVEL`. */
export const LOG_LEVELS = ['DEBUG', 'INFO', 'WARN', 'ERROR'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The variables holding a deployment's custom task types (app/config/custom-tasks-config.ts reads them). */
export const CUSTOM_TASKS_ENV = { json: 'KUROKO_CUSTOM_TASKS', file: 'KUROKO_CUSTOM_TASKS_FILE' } as const;

/** Where an OpenID Connect provider sends the browser back (the console serves it; the CDK app prints it). */
export const OIDC_CALLBACK_PATH = '/auth/oidc/callback';
