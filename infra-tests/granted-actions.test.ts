/**
 * Invariant: no granted action is unused. For each role this project defines for its own code (every Lambda
 * function's and every worker's), each action it is granted must be explained by:
 * - a call: the SDK command that makes it is in the code the role runs, found in the bundle esbuild makes of it
 *   with the options the CDK app ships (tree-shaken, so a command only imported by another function does not count);
 * - a call AWS makes on the caller's behalf with the caller's permissions, when the action that triggers it is
 *   itself granted and used (the table cites the page);
 * - the Lambda runtime writing the function's own log, for a Lambda role;
 * - a command of the worker's user data (the AWS CLI).
 * An action with no entry in the table fails the test: whoever grants it adds the line that says why.
 */
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { AGENT_BUNDLE_FILE } from '../cdk/constructs/agent-asset';
import { LAMBDA_EXTERNAL_MODULES } from '../cdk/constructs/engine-function';
import { agentEntry, lambdaEntry, TSCONFIG } from '../cdk/paths';
import { ec2AgentBuildOptions, ec2FleetBuildOptions, EC2_FLEET_FILE } from '../scripts/agent-bundle';
import type { LambdaName } from '../app/config/env-keys';
import { iamStatements } from './helpers/iam-statements';
import { joinedText, logicalId, synthKuroko, TEST_CONSOLE, TEST_EMAIL } from './helpers/synth-app';
import { jsonOf } from './helpers/cross-stack';

type Evidence =
  | { readonly call: string }
  | { readonly impliedBy: string; readonly doc: string }
  | { readonly lambdaRuntime: true; readonly doc: string }
  | { readonly userData: RegExp };

const LAMBDA_LOGS = 'https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs.html';
const SNS_SSE = 'https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html';
const DATA_API_ACCESS = 'https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/data-api.access.html';
const EC2_TAG_ON_CREATE = 'https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html';
const PASS_ROLE_EC2 = 'https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_switch-role-ec2.html';

/** IAM action -> what can explain it. */
export const EVIDENCE: Readonly<Record<string, readonly Evidence[]>> = {
  'rds-data:ExecuteStatement': [{ call: 'ExecuteStatementCommand' }],
  'rds-data:BatchExecuteStatement': [{ call: 'BatchExecuteStatementCommand' }],
  'rds-data:BeginTransaction': [{ call: 'BeginTransactionCommand' }],
  'rds-data:CommitTransaction': [{ call: 'CommitTransactionCommand' }],
  'rds-data:RollbackTransaction': [{ call: 'RollbackTransactionCommand' }],
  // The Data API reads the database secret with the caller's permissions.
  'secretsmanager:GetSecretValue': [{ call: 'GetSecretValueCommand' }, { impliedBy: 'rds-data:ExecuteStatement', doc: DATA_API_ACCESS }],
  'sns:Publish': [{ call: 'PublishCommand' }],
  // Publishing to a topic encrypted with a customer managed key needs these on the key.
  'kms:Decrypt': [{ impliedBy: 'sns:Publish', doc: SNS_SSE }],
  'kms:GenerateDataKey*': [{ impliedBy: 'sns:Publish', doc: SNS_SSE }],
  'lambda:InvokeFunction': [{ call: 'InvokeCommand' }],
  // The doorbell (adapters/aws/sqs-doorbell.ts): batch actions are authorised by the single action's name.
  'sqs:SendMessage': [{ call: 'SendMessageBatchCommand' }],
  'sqs:ReceiveMessage': [{ call: 'ReceiveMessageCommand' }],
  'sqs:DeleteMessage': [{ call: 'DeleteMessageBatchCommand' }],
  'logs:CreateLogStream': [{ call: 'CreateLogStreamCommand' }, { lambdaRuntime: true, doc: LAMBDA_LOGS }, { userData: /\baws logs [^\n]*\bcreate-log-stream\b/ }],
  'logs:PutLogEvents': [{ call: 'PutLogEventsCommand' }, { lambdaRuntime: true, doc: LAMBDA_LOGS }, { userData: /\baws logs [^\n]*\bput-log-events\b/ }],
  'logs:GetLogEvents': [{ call: 'GetLogEventsCommand' }],
  'logs:FilterLogEvents': [{ call: 'FilterLogEventsCommand' }],
  'ssm:GetParameter': [{ call: 'GetParameterCommand' }],
  'ssm:PutParameter': [{ call: 'PutParameterCommand' }],
  'ec2:RunInstances': [{ call: 'RunInstancesCommand' }],
  'ec2:DescribeInstances': [{ call: 'DescribeInstancesCommand' }],
  'ec2:TerminateInstances': [{ call: 'TerminateInstancesCommand' }],
  // Tags given in RunInstances' TagSpecifications need ec2:CreateTags on the new resources.
  'ec2:CreateTags': [{ call: 'CreateTagsCommand' }, { impliedBy: 'ec2:RunInstances', doc: EC2_TAG_ON_CREATE }],
  // Launching with an instance profile passes its role.
  'iam:PassRole': [{ impliedBy: 'ec2:RunInstances', doc: PASS_ROLE_EC2 }],
  's3:GetObject': [{ userData: /\baws s3 cp 's3:\/\// }],
  'cloudwatch:PutMetricData': [{ call: 'PutMetricDataCommand' }],
};

interface CheckedRole {
  readonly name: string;
  readonly actions: ReadonlySet<string>;
  readonly code: string;
  readonly lambda: boolean;
  readonly userData: string;
}

/** Why `action` is granted to `role`, or undefined when nothing explains it. */
export function explain(action: string, role: CheckedRole, seen: ReadonlySet<string> = new Set()): string | undefined {
  for (const evidence of EVIDENCE[action] ?? []) {
    if ('call' in evidence && new RegExp(`\\b${evidence.call}\\b`).test(role.code)) return `calls ${evidence.call}`;
    if ('lambdaRuntime' in evidence && role.lambda) return 'the Lambda runtime writes the function log';
    if ('userData' in evidence && evidence.userData.test(role.userData)) return 'the user data runs it';
    if ('impliedBy' in evidence && role.actions.has(evidence.impliedBy) && !seen.has(evidence.impliedBy)) {
      const because = explain(evidence.impliedBy, role, new Set([...seen, action]));
      if (because !== undefined) return `needed by ${evidence.impliedBy} (${because})`;
    }
  }
  return undefined;
}

/** The bundle of `entry` as the CDK app builds a Lambda (cdk/constructs/engine-function.ts). */
async function lambdaBundle(name: LambdaName): Promise<string> {
  const result = await build({
    entryPoints: [lambdaEntry(name)],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    mainFields: ['module', 'main'],
    minify: true,
    keepNames: true,
    external: LAMBDA_EXTERNAL_MODULES,
    tsconfig: TSCONFIG,
    write: false,
    logLevel: 'error',
  });
  return result.outputFiles.map((f) => f.text).join('\n');
}

/** The worker's two files, as the agent asset builds them (cdk/constructs/agent-asset.ts). */
async function agentBundles(): Promise<string> {
  const texts = await Promise.all([
    build({ ...ec2AgentBuildOptions(agentEntry(), `/tmp/kuroko-unused/${AGENT_BUNDLE_FILE}`), write: false, logLevel: 'error' }),
    build({ ...ec2FleetBuildOptions(`/tmp/kuroko-unused/${EC2_FLEET_FILE}`), write: false, logLevel: 'error' }),
  ]);
  return texts.flatMap((r) => r.outputFiles.map((f) => f.text)).join('\n');
}

const BUNDLE_TIMEOUT_MS = 300_000;

describe('invariant: no granted action is unused', () => {
  // Every optional grant on: the console's secrets, Slack, idle sleep.
  const built = synthKuroko({ alertEmail: TEST_EMAIL, console: TEST_CONSOLE, notifications: { slackWebhookUrlSecret: 'kuroko/dev/slack' } });
  const statements = { engine: iamStatements(built.templates.engine), workers: iamStatements(built.templates.workers) };
  const actionsOf = (stack: 'engine' | 'workers', roleId: string): Set<string> =>
    new Set(statements[stack].filter((s) => s.effect === 'Allow' && s.roles.includes(roleId)).flatMap((s) => s.actions));

  it('has a table entry for every action granted to a function or worker role', () => {
    const roleIds = [
      ...Object.values(built.engine.functions).map((fn) => ['engine', logicalId(built.engine, fn.executionRole)] as const),
      ['workers', logicalId(built.workers, built.workers.provisioner.executionRole)] as const,
      ...built.workers.queues.map((q) => ['workers', logicalId(built.workers, q.role)] as const),
    ];
    const granted = new Set(roleIds.flatMap(([stack, id]) => [...actionsOf(stack, id)]));
    expect(granted.size).toBeGreaterThan(10);
    expect([...granted].filter((a) => EVIDENCE[a] === undefined)).toEqual([]);
  });

  it(
    'explains every action of every function role and worker role by the code it runs',
    async () => {
      const roles: CheckedRole[] = [];
      for (const fn of [...Object.values(built.engine.functions), built.workers.provisioner]) {
        const stack = fn.kurokoName === 'provisioner' ? 'workers' : 'engine';
        const owner = stack === 'workers' ? built.workers : built.engine;
        roles.push({ name: fn.kurokoName, actions: actionsOf(stack, logicalId(owner, fn.executionRole)), code: await lambdaBundle(fn.kurokoName), lambda: true, userData: '' });
      }
      const agent = await agentBundles();
      const resources = jsonOf(built.templates.workers).Resources ?? {};
      for (const queue of built.workers.queues) {
        const data = resources[logicalId(built.workers, queue.launchTemplate)]?.Properties?.['LaunchTemplateData'] as { UserData: unknown };
        roles.push({ name: `worker ${queue.binding.name}`, actions: actionsOf('workers', logicalId(built.workers, queue.role)), code: agent, lambda: false, userData: joinedText(data.UserData) });
      }
      expect(roles.every((r) => r.actions.size > 0)).toBe(true);
      const unused = roles.flatMap((role) => [...role.actions].filter((action) => explain(action, role) === undefined).map((action) => `${role.name}: ${action}`));
      expect(unused).toEqual([]);
    },
    BUNDLE_TIMEOUT_MS,
  );

  it('finds an action whose call is not in the code, and one implied by an action that is not granted', () => {
    const role: CheckedRole = { name: 'r', actions: new Set(['cloudwatch:PutMetricData', 'kms:Decrypt']), code: 'new PublishCommand({})', lambda: true, userData: '' };
    expect(explain('cloudwatch:PutMetricData', role)).toBeUndefined();
    expect(explain('kms:Decrypt', role)).toBeUndefined();
    expect(explain('kms:Decrypt', { ...role, actions: new Set(['kms:Decrypt', 'sns:Publish']) })).toBe('needed by sns:Publish (calls PublishCommand)');
  });
});
