/**
 * Invariant: every alarm action can reach on-call. A CloudWatch alarm publishes to its SNS topic as the service
 * principal cloudwatch.amazonaws.com, so the topic's policy must allow that principal sns:Publish (a topic policy,
 * such as the one enforceSSL writes, replaces SNS's default policy), and when the topic is encrypted with a customer
 * managed key, the key policy must let CloudWatch use the key (kms:Decrypt and kms:GenerateDataKey*).
 *
 * - https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services
 *   (event sources such as CloudWatch need kms:Decrypt and kms:GenerateDataKey* in the key policy)
 * - https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changes.html
 *   (alarms send to an SNS topic that allows them to publish)
 */
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { CLOUDWATCH_SERVICE } from '../cdk/stacks/engine-stack';
import { exportsOf, jsonOf } from './helpers/cross-stack';
import { TEST_EMAIL, synthKuroko } from './helpers/synth-app';

interface Statement {
  Effect: string;
  Principal?: { Service?: string | string[] };
  Action: string | string[];
  Resource?: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}
const asArray = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
/** IAM action matching, wildcards included, case-insensitive as IAM is. */
const covers = (granted: string, wanted: string): boolean =>
  new RegExp(`^${granted.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`, 'i').test(wanted);
const allowsService = (s: Statement, actions: readonly string[]): boolean =>
  s.Effect === 'Allow' &&
  asArray(s.Principal?.Service).includes(CLOUDWATCH_SERVICE) &&
  actions.every((wanted) => asArray(s.Action).some((granted) => covers(granted, wanted)));
const textOf = (v: unknown): string => {
  const join = (v as { 'Fn::Join'?: [string, unknown[]] } | undefined)?.['Fn::Join'];
  if (join) return join[1].map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join(join[0]);
  return typeof v === 'string' ? v : JSON.stringify(v);
};

/** The conditions, when present, must admit this account's alarms (and nobody else's). */
function admitsOwnAlarms(s: Statement): string | undefined {
  const account = s.Condition?.['StringEquals']?.['aws:SourceAccount'];
  if (account !== undefined && JSON.stringify(account) !== JSON.stringify({ Ref: 'AWS::AccountId' })) return `SourceAccount ${JSON.stringify(account)}`;
  const sourceArn = s.Condition?.['ArnLike']?.['aws:SourceArn'];
  if (sourceArn !== undefined && !/^arn:.*:cloudwatch:.*:alarm:\*$/.test(textOf(sourceArn))) return `SourceArn ${textOf(sourceArn)}`;
  if (account === undefined && sourceArn === undefined) return 'no aws:SourceAccount or aws:SourceArn condition (confused deputy)';
  return undefined;
}

interface Stacks {
  readonly [name: string]: Template;
}

/** The topic an alarm action names, followed across stacks through Fn::ImportValue. */
function topicOf(action: unknown, stackName: string, stacks: Stacks): { stack: string; topicId: string } {
  const ref = (action as { Ref?: string }).Ref;
  if (ref !== undefined) return { stack: stackName, topicId: ref };
  const imported = (action as { 'Fn::ImportValue'?: string })['Fn::ImportValue'];
  if (imported !== undefined) {
    for (const [name, template] of Object.entries(stacks)) {
      const value = exportsOf(template).get(imported);
      if (value !== undefined) return topicOf(value, name, stacks);
    }
    throw new Error(`no stack exports ${imported}`);
  }
  throw new Error(`an alarm action that is neither a topic of the stack nor an import: ${JSON.stringify(action)}`);
}

/** Problems that stop the alarms of `stacks` from reaching their topics; empty when every action can publish. */
export function alarmDeliveryProblems(stacks: Stacks): string[] {
  const problems: string[] = [];
  let actions = 0;
  for (const [stackName, template] of Object.entries(stacks)) {
    for (const [alarmId, alarm] of Object.entries(jsonOf(template).Resources ?? {}).filter(([, r]) => r.Type === 'AWS::CloudWatch::Alarm')) {
      const props = alarm.Properties ?? {};
      for (const action of [...asArray(props['AlarmActions']), ...asArray(props['OKActions']), ...asArray(props['InsufficientDataActions'])]) {
        actions += 1;
        const where = `${stackName}/${alarmId}`;
        const { stack, topicId } = topicOf(action, stackName, stacks);
        const resources = jsonOf(stacks[stack]!).Resources ?? {};
        const topic = resources[topicId];
        if (topic?.Type !== 'AWS::SNS::Topic') {
          problems.push(`${where}: action ${JSON.stringify(action)} is not an SNS topic`);
          continue;
        }
        const topicStatements = Object.values(resources)
          .filter((r) => r.Type === 'AWS::SNS::TopicPolicy' && JSON.stringify(r.Properties?.['Topics']).includes(`{"Ref":"${topicId}"}`))
          .flatMap((r) => asArray((r.Properties?.['PolicyDocument'] as { Statement: Statement[] }).Statement));
        // Without any topic policy SNS's default policy applies, which lets the account's services publish.
        if (topicStatements.length > 0) {
          const publish = topicStatements.find((s) => allowsService(s, ['sns:Publish']));
          if (publish === undefined) problems.push(`${where}: the policy of topic ${topicId} does not allow ${CLOUDWATCH_SERVICE} sns:Publish`);
          else {
            const wrong = admitsOwnAlarms(publish);
            if (wrong !== undefined) problems.push(`${where}: topic ${topicId}: ${wrong}`);
            if (!asArray(publish.Resource).some((r) => JSON.stringify(r) === JSON.stringify({ Ref: topicId }))) {
              problems.push(`${where}: topic ${topicId}: the publish statement names another resource`);
            }
          }
        }
        const keyRef = topic.Properties?.['KmsMasterKeyId'];
        if (keyRef === undefined) continue;
        const keyId = (keyRef as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt']?.[0];
        const key = keyId === undefined ? undefined : resources[keyId];
        if (key?.Type !== 'AWS::KMS::Key') {
          problems.push(`${where}: topic ${topicId} is encrypted with a key whose policy this app does not control (${JSON.stringify(keyRef)})`);
          continue;
        }
        const keyStatements = asArray((key.Properties?.['KeyPolicy'] as { Statement: Statement[] }).Statement);
        const use = keyStatements.find((s) => allowsService(s, ['kms:Decrypt', 'kms:GenerateDataKey']));
        if (use === undefined) problems.push(`${where}: the policy of key ${keyId} does not let ${CLOUDWATCH_SERVICE} use it`);
        else {
          const wrong = admitsOwnAlarms(use);
          if (wrong !== undefined) problems.push(`${where}: key ${keyId}: ${wrong}`);
        }
      }
    }
  }
  if (actions === 0) problems.push('no alarm action found: nothing was checked');
  return problems;
}

describe('invariant: every alarm action can publish to its topic', () => {
  // Synthesised while the file is collected: under load a synthesis can take longer than a test's timeout.
  const { templates } = synthKuroko({ alertEmail: TEST_EMAIL, workerQueues: [{ name: '@default' }, { name: 'build' }] });

  it('holds for every alarm of every stack, the provisioner alarm across stacks included', () => {
    expect(alarmDeliveryProblems({ ...templates })).toEqual([]);
  });

  it('holds with the opt-in customer key on the topic too', () => {
    const keyed = synthKuroko({ alertEmail: TEST_EMAIL, alerts: { kmsKey: true } }).templates;
    expect(keyed.engine.findResources('AWS::KMS::Key')).not.toEqual({});
    expect(alarmDeliveryProblems({ ...keyed })).toEqual([]);
  });

  it('finds a topic policy that holds only the TLS deny, and a key CloudWatch may not use', () => {
    const keyed = synthKuroko({ alertEmail: TEST_EMAIL, alerts: { kmsKey: true } }).templates;
    const broken = JSON.parse(JSON.stringify(keyed.engine.toJSON())) as Required<ReturnType<typeof jsonOf>>;
    for (const resource of Object.values(broken.Resources)) {
      const document = (resource.Properties?.['PolicyDocument'] ?? resource.Properties?.['KeyPolicy']) as { Statement: Statement[] } | undefined;
      if (resource.Type === 'AWS::SNS::TopicPolicy' || resource.Type === 'AWS::KMS::Key') {
        document!.Statement = document!.Statement.filter((s) => !asArray(s.Principal?.Service).includes(CLOUDWATCH_SERVICE));
      }
    }
    const problems = alarmDeliveryProblems({ engine: Template.fromJSON(broken) });
    expect(problems.some((p) => p.includes('does not allow cloudwatch.amazonaws.com sns:Publish'))).toBe(true);
    expect(problems.some((p) => p.includes('does not let cloudwatch.amazonaws.com use it'))).toBe(true);
  });
});
