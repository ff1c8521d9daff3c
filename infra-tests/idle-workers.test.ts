/**
 * Invariant: the agent configuration ends idle instances, consistently with the queue's minInstances. An agent that
 * stops idle shuts its instance down (shutdownWhenIdle), which terminates it because the launch template sets the
 * instance-initiated shutdown behaviour to terminate
 * (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_ChangingInstanceInitiatedShutdownBehavior.html); and the
 * agent knows the same minInstances as the provisioner, so an idle worker the queue's minimum needs does not leave
 * only to be relaunched (agent/idle-exit.ts).
 */
import { describe, expect, it } from 'vitest';
import { parseAgentParameter } from '../app/config/config-schemas';
import { ENV_KEYS } from '../app/config/env-keys';
import { jsonOf } from './helpers/cross-stack';
import { joinedText, logicalId, synthKuroko } from './helpers/synth-app';

describe('invariant: idle workers end, except those the queue minimum keeps', () => {
  const built = synthKuroko({
    workerQueues: [{ name: '@default' }, { name: 'build', instanceType: 'c7i.large', architecture: 'x86_64', minInstances: 1, maxInstances: 3 }],
  });
  const resources = jsonOf(built.templates.workers).Resources ?? {};
  const provisionerEnv = (resources[logicalId(built.workers, built.workers.provisioner)]?.Properties?.['Environment'] as { Variables: Record<string, unknown> }).Variables;
  // What the provisioner is told, tokens (template ids, subnets) left as <token>.
  const bindings = JSON.parse(joinedText(provisionerEnv[ENV_KEYS.workerQueues])) as { name: string; minInstances: number }[];

  it.each(built.workers.queues.map((q, i) => [q.binding.name, i] as const))('holds for queue %s', (name, i) => {
    const queue = built.workers.queues[i]!;
    const value = resources[logicalId(built.workers, queue.parameter)]?.Properties?.['Value'];
    // The parameter holds tokens (region, ARNs, names); the agent reads what is left with stand-ins for them.
    const json = JSON.parse(joinedText(value)) as Record<string, unknown>;
    const parameter = parseAgentParameter(
      JSON.stringify({
        ...json,
        region: 'us-east-1',
        database: { clusterArn: 'arn:aws:rds:us-east-1:123456789012:cluster:x', secretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:x', databaseName: 'kuroko' },
      }),
    );
    expect(parameter.shutdownWhenIdle).toBe(true);
    expect(parameter.queue).toBe(name);
    expect(parameter.minInstances).toBe(bindings.find((b) => b.name === name)?.minInstances);
    const template = resources[logicalId(built.workers, queue.launchTemplate)]?.Properties?.['LaunchTemplateData'] as Record<string, unknown>;
    expect(template['InstanceInitiatedShutdownBehavior']).toBe('terminate');
  });

  it('gives each queue its own minimum', () => {
    expect(built.workers.queues.map((q) => q.binding.minInstances)).toEqual([0, 1]);
  });
});
