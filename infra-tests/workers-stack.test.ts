import { Match, Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { ENV_KEYS, WORKER_TAGS } from '../app/config/env-keys';
import { DATA_API_ACTIONS } from '../cdk/constructs/database-binding';
import { iamStatements } from './helpers/iam-statements';
import { TEST_EMAIL, joinedText, logicalId, synthKuroko } from './helpers/synth-app';

const built = synthKuroko({
  alertEmail: TEST_EMAIL,
  workerQueues: [
    { name: '@default', slotsPerWorker: 3, idleMinutes: 15 },
    { name: 'build', instanceType: 'c7i.large', architecture: 'x86_64', maxInstances: 4 },
  ],
});
const { workers: stack, templates } = built;
const workers = templates.workers;
const resources = (workers.toJSON() as { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> }).Resources;

type LaunchTemplateData = {
  MetadataOptions: Record<string, unknown>;
  BlockDeviceMappings: { Ebs: Record<string, unknown> }[];
  InstanceInitiatedShutdownBehavior: string;
  ImageId: { Ref: string };
  UserData: unknown;
  TagSpecifications: { ResourceType: string; Tags: { Key: string; Value: string }[] }[];
  InstanceType: string;
};
const templateData = (queueIndex: number): LaunchTemplateData => {
  const queue = stack.queues[queueIndex];
  if (!queue) throw new Error(`no queue ${queueIndex}`);
  const id = logicalId(stack, queue.launchTemplate);
  return (resources[id]?.Properties['LaunchTemplateData'] as LaunchTemplateData | undefined) ?? (() => {
    throw new Error(`no launch template ${id}`);
  })();
};

describe('WorkersStack: launch templates', () => {
  it('creates one launch template per queue', () => {
    workers.resourceCountIs('AWS::EC2::LaunchTemplate', 2);
    expect(templateData(0).InstanceType).toBe('t4g.small');
    expect(templateData(1).InstanceType).toBe('c7i.large');
  });

  it('requires IMDSv2', () => {
    for (const i of [0, 1]) expect(templateData(i).MetadataOptions).toMatchObject({ HttpTokens: 'required', HttpPutResponseHopLimit: 1 });
  });

  it('encrypts the root volume and deletes it with the instance', () => {
    for (const i of [0, 1]) {
      expect(templateData(i).BlockDeviceMappings).toEqual([
        expect.objectContaining({ Ebs: expect.objectContaining({ Encrypted: true, VolumeType: 'gp3', DeleteOnTermination: true }) }),
      ]);
    }
  });

  it('terminates instances that shut themselves down', () => {
    for (const i of [0, 1]) expect(templateData(i).InstanceInitiatedShutdownBehavior).toBe('terminate');
  });

  it('boots the current Amazon Linux 2023 of the queue architecture from the public SSM parameter', () => {
    const parameters = (workers.toJSON() as { Parameters: Record<string, { Type: string; Default: string }> }).Parameters;
    const amiOf = (i: number) => parameters[templateData(i).ImageId.Ref];
    expect(amiOf(0)).toEqual({
      Type: 'AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>',
      Default: '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64',
    });
    expect(amiOf(1)?.Default).toBe('/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64');
  });

  it('tags instances and volumes as managed workers of their queue and stage', () => {
    for (const [i, queue] of [[0, '@default'], [1, 'build']] as const) {
      for (const type of ['instance', 'volume']) {
        const spec = templateData(i).TagSpecifications.find((t) => t.ResourceType === type);
        expect(spec?.Tags).toEqual(
          expect.arrayContaining([
            { Key: WORKER_TAGS.managed, Value: 'true' },
            { Key: WORKER_TAGS.queue, Value: queue },
            { Key: WORKER_TAGS.stage, Value: 'dev' },
          ]),
        );
      }
    }
  });
});

describe('WorkersStack: user data', () => {
  const script = joinedText(templateData(0).UserData);

  it('installs Node.js 22 (and nftables) from the AL2023 repositories and creates the unprivileged job user', () => {
    // The exit trap (shipping cloud-init's output) comes first, then the script proper.
    expect(script).toMatch(/^#!\/bin\/bash\nfunction exitTrap\(\)\{\n[^]*\ntrap exitTrap EXIT\nset -euo pipefail\n/);
    expect(script).toContain('dnf install -y nodejs22 nftables\n');
    // The job user and its isolation: infra-tests/worker-isolation.test.ts.
    expect(script).toContain('useradd --create-home --user-group --shell /bin/bash kuroko-job');
  });

  it('downloads the bundled agent from the asset bucket', () => {
    // The key ends in .mjs when bundled; tests skip bundling, which stages a placeholder .zip instead.
    expect(script).toMatch(/aws s3 cp 's3:\/\/<token>\/[0-9a-f]{64}\.(mjs|zip)' '\/opt\/kuroko\/agent\.mjs'/);
    // Next to it, the EC2 client it imports to terminate its instance.
    expect(script).toMatch(/aws s3 cp 's3:\/\/<token>\/[0-9a-f]{64}\.(mjs|zip)' '\/opt\/kuroko\/agent-ec2\.mjs'/);
    expect(script).toContain('chmod 0600 /opt/kuroko/agent.mjs /opt/kuroko/agent-ec2.mjs');
  });

  it('writes and starts a systemd unit that runs the agent with its SSM config parameter', () => {
    const unit = script.slice(script.indexOf("<<'UNIT'\n") + 9, script.indexOf('\nUNIT\n'));
    expect(unit).toContain('[Service]');
    expect(unit).toContain('User=root');
    expect(unit).toContain('EnvironmentFile=/etc/kuroko/agent.env');
    const env = script.slice(script.indexOf("<<'ENV'\n") + 8, script.indexOf('\nENV\n'));
    expect(env).toContain(`${ENV_KEYS.agentConfigParameter}=<token>`);
    expect(env).toMatch(/^MALLOC_ARENA_MAX=1$/m);
    expect(unit).toContain('ExecStart=/usr/bin/node-22 --max-semi-space-size=1 --no-sparkplug /opt/kuroko/agent.mjs --run-as kuroko-job');
    expect(unit).toContain('KillMode=mixed');
    expect(unit).toContain('WantedBy=multi-user.target');
    expect(script.trimEnd().endsWith('systemctl enable --now kuroko-agent.service')).toBe(true);
  });
});

describe('WorkersStack: agent configuration', () => {
  it('stores database ARNs, queue, slots and idle minutes in one SSM parameter per queue', () => {
    workers.hasResourceProperties('AWS::SSM::Parameter', {
      Type: 'String',
      Name: '/kuroko/dev/workers/at.default/agent-config',
    });
    const value = joinedText(resources[logicalId(stack, stack.queues[0]!.parameter)]?.Properties['Value']);
    for (const part of ['"queue":"@default"', '"slots":3', '"idleMinutes":15', '"clusterArn":"arn:<token>:rds:', '"secretArn":"<token>"', '"databaseName":"kuroko"']) {
      expect(value).toContain(part);
    }
    workers.hasResourceProperties('AWS::SSM::Parameter', { Name: '/kuroko/dev/workers/build/agent-config' });
  });
});

describe('WorkersStack: the worker role', () => {
  const role = stack.queues[0]!.role;
  const statements = iamStatements(workers).filter((s) => s.roles.includes(logicalId(stack, role)));
  const db = built.data.database;

  it('is assumed by EC2 through an instance profile of the launch template', () => {
    workers.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Principal: { Service: 'ec2.amazonaws.com' } })] },
    });
    workers.hasResourceProperties('AWS::IAM::InstanceProfile', { Roles: [{ Ref: logicalId(stack, role) }] });
  });

  it('allows only what the agent needs', () => {
    expect(statements.flatMap((s) => s.actions).sort()).toEqual(
      [
        ...DATA_API_ACTIONS,
        'secretsmanager:GetSecretValue',
        'logs:CreateLogStream',
        'logs:PutLogEvents',
        // The boot log, a statement of its own.
        'logs:CreateLogStream',
        'logs:PutLogEvents',
        'ssm:GetParameter',
        'lambda:InvokeFunction',
        's3:GetObject',
        'ec2:TerminateInstances',
        // The doorbell the processor rings (issue 18): receive and delete only.
        'sqs:ReceiveMessage',
        'sqs:DeleteMessage',
      ].sort(),
    );
  });

  it('long-polls the engine\'s doorbell queue, which only the processor may ring (issue 18)', () => {
    const listen = statements.find((s) => s.actions.includes('sqs:ReceiveMessage'));
    expect([...(listen?.actions ?? [])].sort()).toEqual(['sqs:DeleteMessage', 'sqs:ReceiveMessage']);
    expect(listen?.resources).toHaveLength(1);
    expect(JSON.stringify(listen?.resources)).toContain('Doorbell');
    const engine = Template.fromStack(built.engine);
    engine.hasResourceProperties('AWS::SQS::Queue', { MessageRetentionPeriod: 60, ReceiveMessageWaitTimeSeconds: 20, SqsManagedSseEnabled: true });
  });

  it('scopes the Data API to the cluster and the secret to the agent user\'s, never the master\'s', () => {
    expect(statements.find((s) => s.actions.includes('rds-data:ExecuteStatement'))?.resources).toEqual([stack.resolve(db.clusterArn)]);
    const reads = statements.filter((s) => s.actions.includes('secretsmanager:GetSecretValue')).flatMap((s) => s.resources);
    expect(reads).toEqual([stack.resolve(built.data.agentDatabase.secretArn)]);
    expect(reads).not.toContainEqual(stack.resolve(built.data.database.secretArn));
  });

  it('scopes logs to the execution log group and SSM to its own parameter', () => {
    const logs = statements.find((s) => s.actions.includes('logs:PutLogEvents'));
    expect(logs?.resources).toEqual([stack.resolve(built.engine.executionLogGroup.logGroupArn)]);
    const ssm = statements.find((s) => s.actions.includes('ssm:GetParameter'));
    expect(JSON.stringify(ssm?.resources)).toContain(logicalId(stack, stack.queues[0]!.parameter));
  });

  it('may terminate only managed workers of its own stage and queue', () => {
    const terminate = statements.find((s) => s.actions.includes('ec2:TerminateInstances'));
    expect(terminate?.condition).toEqual({
      StringEquals: {
        [`aws:ResourceTag/${WORKER_TAGS.managed}`]: 'true',
        [`aws:ResourceTag/${WORKER_TAGS.stage}`]: 'dev',
        [`aws:ResourceTag/${WORKER_TAGS.queue}`]: '@default',
      },
    });
  });

  it("reads only the agent's two objects from the asset bucket", () => {
    const s3 = statements.find((s) => s.actions.includes('s3:GetObject'));
    expect(s3?.resources).toHaveLength(2);
    for (const resource of s3?.resources ?? []) expect(JSON.stringify(resource)).toMatch(/\/[0-9a-f]{64}\.(mjs|zip)"\]\]\}$/);
  });
});

describe('WorkersStack: provisioner', () => {
  const provisionerId = logicalId(stack, stack.provisioner);
  const statements = iamStatements(workers).filter((s) => s.roles.includes(logicalId(stack, stack.provisioner.executionRole)));
  const bySid = (sid: string) => {
    const json = workers.toJSON() as { Resources: Record<string, { Properties: { PolicyDocument?: { Statement: { Sid?: string }[] } } }> };
    return Object.values(json.Resources)
      .flatMap((r) => r.Properties?.PolicyDocument?.Statement ?? [])
      .find((s) => s.Sid === sid) as Record<string, unknown> | undefined;
  };
  const templateRefs = stack.queues.map((q) => logicalId(stack, q.launchTemplate));

  it('runs every minute', () => {
    workers.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [provisionerId, 'Arn'] } })],
    });
  });

  it('is given the sleep parameter of the engine stack by name (no import), to read and never to write', () => {
    const env = (resources[provisionerId]?.Properties['Environment'] as { Variables: Record<string, unknown> }).Variables;
    expect(env[ENV_KEYS.sleepParameter]).toBe('/kuroko/dev/sleep');
    const ssmStatements = statements.filter((s) => s.actions.some((a) => a.startsWith('ssm:')));
    expect(ssmStatements.flatMap((s) => s.actions)).toContain('ssm:GetParameter');
    expect(ssmStatements.flatMap((s) => s.actions)).not.toContain('ssm:PutParameter');
    expect(JSON.stringify(ssmStatements.flatMap((s) => s.resources))).toContain(':parameter/kuroko/dev/sleep"');
  });

  it('knows each queue, its launch template and subnets', () => {
    const env = (resources[provisionerId]?.Properties['Environment'] as { Variables: Record<string, unknown> }).Variables;
    const json = joinedText(env[ENV_KEYS.workerQueues]);
    expect(json).toContain('"name":"@default","launchTemplateId":"<token>","subnetIds":["<token>","<token>"],"slotsPerWorker":3');
    expect(json).toContain('"name":"build"');
  });

  it('launches only from the worker launch templates', () => {
    const launch = bySid('LaunchFromWorkerTemplates');
    expect(JSON.stringify(launch?.['Resource'])).toContain(templateRefs[0]);
    expect(JSON.stringify(launch?.['Resource'])).toContain(templateRefs[1]);
    const resourcesOfTemplates = bySid('LaunchResourcesOfWorkerTemplates');
    expect(Object.keys((resourcesOfTemplates?.['Condition'] as Record<string, unknown>) ?? {})).toEqual(['ArnEquals', 'Bool']);
  });

  it('launches instances only with the managed and stage tags in the request', () => {
    const instances = bySid('LaunchManagedInstances');
    expect((instances?.['Condition'] as Record<string, unknown>)['StringEquals']).toEqual({
      [`aws:RequestTag/${WORKER_TAGS.managed}`]: 'true',
      [`aws:RequestTag/${WORKER_TAGS.stage}`]: 'dev',
    });
    expect((instances?.['Condition'] as Record<string, unknown>)['ArnEquals']).toBeDefined();
  });

  it('terminates and tags only managed instances of its stage, and tags new ones only at launch', () => {
    expect(bySid('ManageManagedInstances')?.['Condition']).toEqual({
      StringEquals: { [`aws:ResourceTag/${WORKER_TAGS.managed}`]: 'true', [`aws:ResourceTag/${WORKER_TAGS.stage}`]: 'dev' },
    });
    expect(bySid('TagAtLaunch')?.['Condition']).toEqual({ StringEquals: { 'ec2:CreateAction': 'RunInstances' } });
  });

  it('describes instances on resource * (the action has no resource-level permission)', () => {
    expect(bySid('ReadInstances')).toMatchObject({ Action: 'ec2:DescribeInstances', Resource: '*' });
  });

  it('passes only the worker roles, only to EC2', () => {
    const pass = statements.find((s) => s.actions.includes('iam:PassRole'));
    expect(pass?.resources).toEqual(stack.queues.map((q) => ({ 'Fn::GetAtt': [logicalId(stack, q.role), 'Arn'] })));
    expect(pass?.condition).toEqual({ StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } });
  });

  it('alarms on its errors to the engine alert topic', () => {
    workers.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: provisionerId } }],
      AlarmActions: [Match.objectLike({ 'Fn::ImportValue': Match.anyValue() })],
    });
  });
});
