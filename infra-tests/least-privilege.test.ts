import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { DATA_API_ACTIONS } from '../cdk/constructs/database-binding';
import { iamStatements, overBroad, type FoundStatement } from './helpers/iam-statements';
import { TEST_CONSOLE, TEST_EMAIL, logicalId, synthKuroko } from './helpers/synth-app';

// With the console on: it adds the most grants (two more secrets for the api).
const built = synthKuroko({ alertEmail: TEST_EMAIL, console: TEST_CONSOLE });
const all: { stack: string; statements: FoundStatement[] }[] = [
  { stack: 'data', statements: iamStatements(built.templates.data) },
  { stack: 'engine', statements: iamStatements(built.templates.engine) },
  { stack: 'workers', statements: iamStatements(built.templates.workers) },
];

describe('least privilege: the policy walker', () => {
  it('finds wildcard actions and unscoped resources in policies and inline role policies', () => {
    const bad = Template.fromJSON({
      Resources: {
        Wide: {
          Type: 'AWS::IAM::Policy',
          Properties: {
            Roles: [{ Ref: 'R' }],
            PolicyDocument: { Statement: [{ Effect: 'Allow', Action: 's3:*', Resource: 'arn:aws:s3:::b/*' }] },
          },
        },
        R: {
          Type: 'AWS::IAM::Role',
          Properties: {
            Policies: [{ PolicyName: 'p', PolicyDocument: { Statement: [{ Effect: 'Allow', Action: ['*'], Resource: '*' }, { Effect: 'Allow', Action: 'sqs:SendMessage', Resource: '*' }] } }],
          },
        },
      },
    });
    expect(overBroad(iamStatements(bad))).toEqual(['Wide: action s3:*', 'R: action *', 'R: * on Resource *', 'R: sqs:SendMessage on Resource *']);
  });
});

describe('least privilege: every stack', () => {
  it('finds statements to check in each stack that has roles', () => {
    expect(all.find((s) => s.stack === 'engine')?.statements.length).toBeGreaterThan(10);
    expect(all.find((s) => s.stack === 'workers')?.statements.length).toBeGreaterThan(10);
  });

  it.each(all)('has no wildcard action and no needless Resource * in the $stack stack', ({ statements }) => {
    expect(overBroad(statements)).toEqual([]);
  });

  it('scopes Data API calls to the cluster ARN, everywhere', () => {
    for (const { stack, statements } of all) {
      const owner = stack === 'engine' ? built.engine : stack === 'workers' ? built.workers : built.data;
      const cluster = owner.resolve(built.data.database.clusterArn);
      for (const s of statements.filter((st) => st.actions.some((a) => a.startsWith('rds-data:')))) {
        expect(s.actions).toEqual([...DATA_API_ACTIONS]);
        expect(s.resources).toEqual([cluster]);
      }
    }
  });

  it('scopes secret reads: the master database secret to the migrator alone, the agent user\'s to the workers, the runtime user\'s to the other functions', () => {
    const engine = built.engine;
    const signingKey = JSON.stringify(engine.resolve(engine.consoleSigningKey?.secretArn));
    const roleOf = (fn: { executionRole: unknown }) => logicalId(engine, fn.executionRole as Parameters<typeof logicalId>[1]);
    const workerRoles = built.workers.queues.map((q) => logicalId(built.workers, q.role));
    const secretOf = (owner: typeof engine | typeof built.workers, binding: { secretArn: string }) => JSON.stringify(owner.resolve(binding.secretArn));
    const allowedFor = (roles: readonly string[], resource: string, owner: typeof engine | typeof built.workers): boolean => {
      const master = secretOf(owner, built.data.database);
      const runtime = secretOf(owner, built.data.runtimeDatabase);
      const agent = secretOf(owner, built.data.agentDatabase);
      // Issue 13: a worker (so a job command that reached its credentials) can never read the master or runtime secret.
      if (roles.some((r) => workerRoles.includes(r))) return resource === agent;
      if (roles.includes(roleOf(engine.functions.migrator))) return [master, runtime, agent].includes(resource);
      if (resource === runtime) return true;
      if (roles.includes(roleOf(engine.functions.api))) return resource === signingKey || /secret:kuroko\/dev\/oidc-client-\?{6}"/.test(resource);
      return false;
    };
    let checked = 0;
    const masterReaders = new Set<string>();
    for (const { stack, statements } of all) {
      const owner = stack === 'engine' ? built.engine : built.workers;
      for (const s of statements.filter((st) => st.actions.some((a) => a.startsWith('secretsmanager:')))) {
        expect(s.actions).toEqual(['secretsmanager:GetSecretValue']);
        for (const resource of s.resources.map((r) => JSON.stringify(r))) {
          checked += 1;
          expect(allowedFor(s.roles, resource, owner), `${s.holder}: ${resource}`).toBe(true);
          if (resource === secretOf(owner, built.data.database)) s.roles.forEach((r) => masterReaders.add(r));
        }
      }
    }
    expect(checked).toBeGreaterThanOrEqual(8);
    expect([...masterReaders]).toEqual([roleOf(engine.functions.migrator)]);
  });

  it('scopes the generated SecureString parameters: the admin client\'s to the migrator, the webhook key to the notifier (issue 17)', () => {
    // The AWS-managed aws/ssm key lets every principal of the account decrypt
    // (https://docs.aws.amazon.com/systems-manager/latest/userguide/ps-restrict-decryption.html), so these grants are
    // the whole access control: no role may reach the parameters by a wider ARN, a worker role least of all.
    const engine = built.engine;
    const roleOf = (fn: { executionRole: unknown }) => logicalId(engine, fn.executionRole as Parameters<typeof logicalId>[1]);
    const found: string[] = [];
    for (const { statements } of all) {
      for (const s of statements.filter((st) => st.actions.some((a) => a.startsWith('ssm:')))) {
        for (const resource of s.resources.map((r) => JSON.stringify(r))) {
          expect(resource, s.holder).not.toMatch(/parameter\/kuroko\/dev\/\*|parameter\/\*|"\*"/);
          const key = /parameter\/kuroko\/dev\/(admin-api-client|webhook-signing-key)"/.exec(resource)?.[1];
          if (key === undefined) continue;
          const who = s.roles.map((r) => (r === roleOf(engine.functions.migrator) ? 'migrator' : r === roleOf(engine.functions.notifier) ? 'notifier' : r));
          found.push(`${key}: ${who.join(',')} ${s.actions.join(',')}`);
        }
      }
    }
    expect(found.sort()).toEqual([
      'admin-api-client: migrator ssm:PutParameter,ssm:GetParameter',
      'webhook-signing-key: migrator ssm:PutParameter',
      'webhook-signing-key: notifier ssm:GetParameter',
    ]);
    // Nothing grants kms:Decrypt on the AWS-managed key or any other: none is needed.
    expect(all.flatMap(({ statements }) => statements).filter((s) => s.actions.includes('kms:Decrypt'))).toEqual([]);
  });

  it('bounds every mutating EC2 action on a wildcard ARN (instance/*, volume/*...) by a condition', () => {
    let checked = 0;
    for (const { statements } of all) {
      for (const s of statements.filter((st) => st.actions.some((a) => a.startsWith('ec2:') && !a.startsWith('ec2:Describe')))) {
        const wildcard = s.resources.some((r) => /\/\*"?\]*\}*$/.test(JSON.stringify(r)) || r === '*');
        if (wildcard) {
          checked += 1;
          expect(s.condition, `${s.holder}: ${s.actions.join(',')}`).toBeDefined();
        }
      }
    }
    expect(checked).toBeGreaterThanOrEqual(5);
  });

  it('passes roles only to EC2', () => {
    for (const { statements } of all) {
      for (const s of statements.filter((st) => st.actions.includes('iam:PassRole'))) {
        expect(s.condition).toEqual({ StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } });
      }
    }
  });

  it('uses no AWS managed policies on the roles it defines', () => {
    for (const template of [built.templates.engine, built.templates.workers]) {
      const roles = template.findResources('AWS::IAM::Role');
      const withManaged = Object.entries(roles).filter(([id, r]) => {
        const managed = (r as { Properties: { ManagedPolicyArns?: unknown[] } }).Properties.ManagedPolicyArns;
        // The custom-resource Provider's framework function is aws-cdk-lib's own (acknowledged in nag).
        return managed !== undefined && !id.includes('MigrationProviderframeworkonEvent');
      });
      expect(withManaged.map(([id]) => id)).toEqual([]);
    }
  });
});
