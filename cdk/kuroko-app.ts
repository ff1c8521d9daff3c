/** Builds the three stacks of a stage into an app; used by `cdk/bin/app.ts` and by the infra tests. */
import { Tags, type App, type Environment, type aws_logs as logs } from 'aws-cdk-lib';
import type { DeployConfig } from './deploy-config';
import { migrationsFingerprint } from './migration-trigger';
import { applyNag } from './nag';
import { DataStack } from './stacks/data-stack';
import { EngineStack, sleepParameterName } from './stacks/engine-stack';
import { WorkersStack } from './stacks/workers-stack';

export interface KurokoStacks {
  readonly data: DataStack;
  readonly engine: EngineStack;
  readonly workers: WorkersStack;
}

export interface BuildOptions {
  /** See EngineStackProps.migrationTrigger; the fingerprint of db/migrations by default. */
  readonly migrationTrigger?: string;
  /** Leave undefined for environment-agnostic stacks (no lookups, the CLI's account and region at deploy). */
  readonly env?: Environment;
  /** Run the cdk-nag AWS Solutions pack at synthesis (on by default). */
  readonly nag?: boolean;
}

/** Adds the Data, Engine and Workers stacks of `config.stageName` to `app`. */
export function buildKurokoApp(app: App, config: DeployConfig, options: BuildOptions = {}): KurokoStacks {
  const stage = config.stageName;
  const logRetention = config.logRetentionDays as logs.RetentionDays;
  const common = { env: options.env, config, logRetention };

  const data = new DataStack(app, `Kuroko-${stage}-Data`, {
    ...common,
    description: `Kuroko Serverless (${stage}): network and Aurora MySQL Serverless v2`,
    terminationProtection: config.aurora.deletionProtection,
  });
  const engine = new EngineStack(app, `Kuroko-${stage}-Engine`, {
    ...common,
    description: `Kuroko Serverless (${stage}): Lambda engine, HTTP API, alerts`,
    database: data.database,
    runtimeDatabase: data.runtimeDatabase,
    agentDatabase: data.agentDatabase,
    migrationTrigger: options.migrationTrigger ?? migrationsFingerprint(),
  });
  const workers = new WorkersStack(app, `Kuroko-${stage}-Workers`, {
    ...common,
    description: `Kuroko Serverless (${stage}): on-demand EC2 workers and their provisioner`,
    database: data.runtimeDatabase,
    agentDatabase: data.agentDatabase,
    vpc: data.vpc,
    workerSubnets: data.workerSubnets,
    workerSubnetsArePublic: data.workerSubnetsArePublic,
    executionLogGroup: engine.executionLogGroup,
    processor: engine.functions.processor,
    doorbell: engine.doorbell,
    alertTopic: engine.alertTopic,
    ...(config.idleSleep.enabled ? { sleepParameterName: sleepParameterName(stage) } : {}),
  });

  Tags.of(app).add('project', 'kuroko-serverless');
  Tags.of(app).add('kuroko:stage', stage);
  if (options.nag !== false) applyNag(app);
  return { data, engine, workers };
}
