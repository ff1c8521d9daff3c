/**
 * Kuroko inside another CDK app: the `Kuroko` construct (cdk/kuroko.ts) puts the contents of the Data, Engine and
 * Workers stacks into a stack the team already has, next to its own resources, and the standalone stacks keep the
 * logical ids they always had (their contents sit under the id `Default`), so a deployed cluster is never replaced.
 */
import { App, Stack, aws_sns as sns } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../core/errors';
import { Kuroko } from '../cdk/kuroko';
import { jsonOf } from './helpers/cross-stack';
import { cdkJsonContext, synthKuroko, TEST_EMAIL } from './helpers/synth-app';

function teamApp() {
  const app = new App({ context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'TeamPlatform');
  new sns.Topic(stack, 'TeamTopic');
  return { app, stack };
}

describe('the Kuroko construct inside another app', () => {
  const { stack } = teamApp();
  const kuroko = new Kuroko(stack, 'Kuroko', { config: { stageName: 'emb', alertEmail: TEST_EMAIL, workerQueues: [{ name: '@default' }, { name: 'build' }] } });
  const template = Template.fromStack(stack);
  const resources = jsonOf(template).Resources ?? {};
  const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);

  it('synthesizes the whole deployment into the team\'s stack, beside the team\'s own resources', () => {
    expect(ofType('AWS::SNS::Topic').map(([id]) => id).sort()).toEqual([expect.stringMatching(/^KurokoEngineAlertTopic/), expect.stringMatching(/^TeamTopic/)]);
    template.resourceCountIs('AWS::RDS::DBCluster', 1);
    // processor, scheduler, monitor, notifier, api, migrator, retention, provisioner (CDK's own helper functions aside).
    const stageOf = (r: { Properties?: Record<string, unknown> }) => (r.Properties?.['Environment'] as { Variables?: Record<string, unknown> } | undefined)?.Variables?.['KUROKO_STAGE'];
    expect(ofType('AWS::Lambda::Function').filter(([, r]) => stageOf(r) === 'emb')).toHaveLength(8);
    // Four ticks, the provisioner's, the daily retention pass.
    template.resourceCountIs('AWS::Events::Rule', 6);
    template.resourceCountIs('AWS::EC2::LaunchTemplate', 2);
    // One stack: nothing is exported or imported.
    expect(JSON.stringify(template.toJSON())).not.toContain('Fn::ImportValue');
    expect(kuroko.config.stageName).toBe('emb');
    expect(kuroko.node.path).toBe('TeamPlatform/Kuroko');
  });

  it('starts the provisioner\'s tick only after the migrations, as the stack order did', () => {
    const tickId = stack.getLogicalId(kuroko.workers.provisionerTick.node.defaultChild as never);
    const migrationsId = stack.getLogicalId(kuroko.engine.migrations.node.defaultChild as never);
    expect(resources[tickId]?.DependsOn).toContain(migrationsId);
  });

  it('validates its props as the deploy configuration, listing every problem', () => {
    const { stack: other } = teamApp();
    expect(() => new Kuroko(other, 'Kuroko', { config: { stageName: 'Bad Stage', logRetentionDays: 2 } })).toThrow(ConfigError);
    try {
      new Kuroko(teamApp().stack, 'Kuroko', { config: { stageName: 'Bad Stage', logRetentionDays: 2 } });
    } catch (error) {
      expect((error as ConfigError).message).toMatch(/stageName[\s\S]*logRetentionDays/);
    }
  });
});

describe('the standalone stacks built from the same constructs', () => {
  it('keep the logical ids of their stateful resources', () => {
    const built = synthKuroko({ alertEmail: TEST_EMAIL });
    const ids = (t: Template) => Object.keys(jsonOf(t).Resources ?? {});
    expect(ids(built.templates.data)).toEqual(
      expect.arrayContaining(['ClusterEB0386A7', 'DatabaseSecret86DBB7B3', 'RuntimeDatabaseSecretE7205402', 'AgentDatabaseSecret9E99916E', 'Vpc8378EB38']),
    );
    expect(ids(built.templates.engine)).toEqual(
      expect.arrayContaining(['ExecutionLogs6FEE23C8', 'AlertTopic2720D535', 'Migrations', 'Processor60228016']),
    );
    expect(ids(built.templates.workers)).toEqual(expect.arrayContaining(['Provisioner21C549B7', 'WorkerBootLogs034FB4E5', 'QueueatdefaultLaunchTemplate9D41F57E']));
  });
});
