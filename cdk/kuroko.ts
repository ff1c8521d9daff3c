/**
 * Kuroko as one construct, for a team that adds it to its own CDK app: the contents of the Data, Engine and Workers
 * stacks (cdk/stacks) in whatever stack it is given. The props are the deploy configuration (cdk/deploy-config.ts),
 * validated the same way, so a mistake fails the synthesis with every problem listed.
 *
 *   const stack = new Stack(app, 'Platform');
 *   new Kuroko(stack, 'Kuroko', { config: { stageName: 'prod', alertEmail: 'ops@example.com' } });
 *
 * cdk/kuroko-app.ts builds the standalone app from the same constructs, one stack each.
 */
import { Tags, type aws_logs as logs } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import type { z } from 'zod';
import { parseDeployConfig, type DeployConfig, type deployConfigSchema } from './deploy-config';
import { migrationsFingerprint } from './migration-trigger';
import { KurokoData } from './stacks/data-stack';
import { KurokoEngine, sleepParameterName } from './stacks/engine-stack';
import { KurokoWorkers } from './stacks/workers-stack';

export interface KurokoProps {
  /** The deploy configuration, as in a `-c config=<file>` JSON file; every key is optional. */
  readonly config: z.input<typeof deployConfigSchema>;
  /** See KurokoEngineProps.migrationTrigger; the fingerprint of db/migrations by default. */
  readonly migrationTrigger?: string;
}

export class Kuroko extends Construct {
  readonly config: DeployConfig;
  readonly data: KurokoData;
  readonly engine: KurokoEngine;
  readonly workers: KurokoWorkers;

  constructor(scope: Construct, id: string, props: KurokoProps) {
    super(scope, id);
    const config = (this.config = parseDeployConfig(props.config, `${this.node.path} config`));
    const logRetention = config.logRetentionDays as logs.RetentionDays;
    this.data = new KurokoData(this, 'Data', { config, logRetention });
    this.engine = new KurokoEngine(this, 'Engine', {
      config,
      logRetention,
      database: this.data.database,
      runtimeDatabase: this.data.runtimeDatabase,
      agentDatabase: this.data.agentDatabase,
      migrationTrigger: props.migrationTrigger ?? migrationsFingerprint(),
    });
    this.workers = new KurokoWorkers(this, 'Workers', {
      config,
      logRetention,
      database: this.data.runtimeDatabase,
      agentDatabase: this.data.agentDatabase,
      vpc: this.data.vpc,
      workerSubnets: this.data.workerSubnets,
      workerSubnetsArePublic: this.data.workerSubnetsArePublic,
      executionLogGroup: this.engine.executionLogGroup,
      processor: this.engine.functions.processor,
      doorbell: this.engine.doorbell,
      alertTopic: this.engine.alertTopic,
      ...(config.idleSleep.enabled ? { sleepParameterName: sleepParameterName(config.stageName) } : {}),
    });
    // In its own stack the provisioner deploys after the engine's migrations; in one stack it must wait for them too.
    this.workers.provisionerTick.node.addDependency(this.engine.migrations);
    Tags.of(this).add('project', 'kuroko-serverless');
    Tags.of(this).add('kuroko:stage', config.stageName);
  }
}
