import { describe, expect, it } from 'vitest';
import { ConflictError } from '../../../core/errors';
import { INSTANCE_STATUS, PREVENT_MULTI, TOKEN_STATUS, instanceStatus, type Token } from '../../../core/model';
import { EngineHarness } from '../../helpers/in-memory-store';

const MINUTE = 60_000;

function rootToken(h: EngineHarness, instanceId: number): Token {
  const token = h.tokensOf(instanceId).find((t) => t.parentId === null);
  if (!token) throw new Error(`instance ${instanceId} has no root token`);
  return token;
}

describe('engine step', () => {
  it('advances at most one node per step and finishes the instance after the last node', async () => {
    const h = new EngineHarness();
    h.define(1, 'noop:\nnoop:\n');
    const instance = await h.launch(1);
    const { uuid } = rootToken(h, instance.id);
    await h.pass();
    expect(rootToken(h, instance.id).path).toBe('/0-noop');
    await h.pass();
    expect(rootToken(h, instance.id).path).toBe('/1-noop');
    await h.pass();
    expect(h.tokensOf(instance.id)).toEqual([]);
    expect(instanceStatus(h.store.instances.get(instance.id)!)).toBe(INSTANCE_STATUS.success);
    expect(h.eventTypes(instance.id)).toEqual(['launch', 'finished']);
    expect(h.logMessages(instance.id)[0]).toBe('Launched by test');
    expect(h.logMessages(instance.id)).toContain(`(token ${uuid}) Current node is '/1-noop'.`);
    expect(h.logMessages(instance.id)).toContain(`(token ${uuid}) Marked as 'finished'.`);
  });

  it('descends into the children of any node before its next sibling', async () => {
    const h = new EngineHarness();
    h.define(1, 'noop:\n  echo: inner\necho: outer\n');
    const instance = await h.launch(1);
    await h.runUntilIdle();
    const echoes = h.logMessages(instance.id).filter((m) => m.endsWith('inner') || m.endsWith('outer'));
    expect(echoes.map((m) => m.split(') ')[1])).toEqual(['inner', 'outer']);
  });

  it('creates one execution, waits for it without writing, and moves on when it exits 0', async () => {
    const h = new EngineHarness();
    h.define(1, 'execute: echo hello\n');
    const instance = await h.launch(1);
    await h.pass(); // root -> /0-execute
    await h.pass(); // creates the execution
    const [execution] = [...h.store.executions.values()];
    expect(execution).toMatchObject({ shell: 'echo hello', queue: '@default', instanceId: instance.id });
    expect(execution!.env).toMatchObject({
      KUROKO2_JOB_DEFINITION_ID: '1',
      KUROKO2_JOB_DEFINITION_NAME: 'job 1',
      KUROKO2_JOB_INSTANCE_ID: String(instance.id),
    });
    expect(await h.engine.step(rootToken(h, instance.id))).toBeNull();
    h.finishExecutions(() => 0, 'hello\n');
    await h.runUntilIdle();
    expect(h.store.executions.size).toBe(0);
    expect(h.store.histories).toHaveLength(1);
    expect(h.logMessages(instance.id).some((m) => m.includes('[SUCCESS] `echo hello` returns 0.') && m.includes('hello'))).toBe(true);
    expect(instanceStatus(h.store.instances.get(instance.id)!)).toBe(INSTANCE_STATUS.success);
  });

  it('treats a non-zero exit or a signal as failure, puts the instance in error and announces failure', async () => {
    for (const result of [3, { signal: 'SIGKILL' }] as const) {
      const h = new EngineHarness();
      h.define(1, 'execute: false\nnoop:\n');
      const instance = await h.launch(1);
      await h.runUntilIdle(() => result);
      const token = rootToken(h, instance.id);
      expect(token.status).toBe(TOKEN_STATUS.failure);
      expect(token.path).toBe('/0-execute');
      expect(instanceStatus(h.store.instances.get(instance.id)!)).toBe(INSTANCE_STATUS.error);
      expect(h.eventTypes(instance.id)).toEqual(['launch', 'failure']);
      const failureEvent = h.store.events.find((e) => e.type === 'failure')!;
      expect(failureEvent.message).toContain('[FAILURE] `false`');
    }
  });

  it('ends a manually retried failure in back_to_normal, not finished', async () => {
    const h = new EngineHarness();
    h.define(1, 'execute: flaky\n');
    const instance = await h.launch(1);
    await h.runUntilIdle(() => 1);
    const failed = rootToken(h, instance.id);
    const retry = await h.engine.retry(failed, 'alice');
    expect(await h.store.commit(retry)).toBe(true);
    expect(h.store.instances.get(instance.id)).toMatchObject({ retrying: true, errorAt: null });
    expect(rootToken(h, instance.id)).toMatchObject({ status: 'working', path: '/0-execute' });
    await h.runUntilIdle(() => 0);
    expect(h.eventTypes(instance.id)).toEqual(['launch', 'failure', 'retrying', 'back_to_normal']);
    expect(h.logMessages(instance.id)).toContain('Retry by alice.');
  });

  it('allows four runs with retry: count=3, sleeping sleep_time between them, without announcing', async () => {
    const h = new EngineHarness();
    h.define(1, 'retry: count=3 sleep_time=30\n  execute: always-fails\n');
    const instance = await h.launch(1);
    let runs = 0;
    for (let i = 0; i < 100 && rootToken(h, instance.id).status === 'working'; i++) {
      await h.pass();
      runs += h.finishExecutions(() => 1).length;
      h.clock.advance(31_000);
    }
    expect(runs).toBe(4);
    expect(rootToken(h, instance.id).status).toBe(TOKEN_STATUS.failure);
    expect(h.eventTypes(instance.id)).toEqual(['launch', 'failure']);
    expect(h.logMessages(instance.id).filter((m) => m.includes('The number of retries'))).toHaveLength(3);
  });

  it('does not run the node after a sleep until the sleep is over', async () => {
    const h = new EngineHarness();
    h.define(1, 'sleep: 60\necho: after\n');
    const instance = await h.launch(1);
    await h.pass(); // -> /0-sleep
    await h.pass(); // sleep sets SLEEP, -> /1-echo
    await h.pass();
    await h.pass();
    expect(rootToken(h, instance.id).path).toBe('/1-echo');
    expect(h.logMessages(instance.id).some((m) => m.endsWith(') after'))).toBe(false);
    h.clock.advance(61_000);
    await h.runUntilIdle();
    expect(h.logMessages(instance.id).some((m) => m.endsWith(') after'))).toBe(true);
  });

  it('announces failure then skipping and finishes the job with auto_skip_error', async () => {
    const h = new EngineHarness();
    h.define(1, 'auto_skip_error: true\nexecute: false\necho: reached\n');
    const instance = await h.launch(1);
    await h.runUntilIdle(() => 1);
    expect(h.eventTypes(instance.id)).toEqual(['launch', 'failure', 'skipping', 'finished']);
    expect(h.logMessages(instance.id).some((m) => m.endsWith(') reached'))).toBe(true);
    expect(instanceStatus(h.store.instances.get(instance.id)!)).toBe(INSTANCE_STATUS.success);
  });

  it('finishes the job when the last node is skipped', async () => {
    const h = new EngineHarness();
    h.define(1, 'noop:\nexecute: false\n');
    const instance = await h.launch(1);
    await h.runUntilIdle(() => 1);
    const outcome = await h.engine.skip(rootToken(h, instance.id));
    expect(await h.store.commit(outcome)).toBe(true);
    expect(h.tokensOf(instance.id)).toEqual([]);
    expect(instanceStatus(h.store.instances.get(instance.id)!)).toBe(INSTANCE_STATUS.success);
    expect(h.eventTypes(instance.id)).toEqual(['launch', 'failure', 'finished', 'skipping']);
  });

  it('refuses to retry a working token and to skip a finished one', async () => {
    const h = new EngineHarness();
    h.define(1, 'execute: x\n');
    const instance = await h.launch(1);
    await expect(h.engine.retry(rootToken(h, instance.id))).rejects.toBeInstanceOf(ConflictError);
    await expect(h.engine.skip(rootToken(h, instance.id))).rejects.toBeInstanceOf(ConflictError);
  });

  it('turns an engine error into a critical token, a canceled instance and no tokens', async () => {
    const h = new EngineHarness();
    h.define(1, 'sub_process: 999\n');
    const instance = await h.launch(1);
    const { uuid } = rootToken(h, instance.id);
    await h.runUntilIdle();
    expect(h.tokensOf(instance.id)).toEqual([]);
    expect(instanceStatus(h.store.instances.get(instance.id)!)).toBe(INSTANCE_STATUS.canceled);
    expect(h.store.instances.get(instance.id)!.errorAt).toBeNull();
    expect(h.eventTypes(instance.id)).toEqual(['launch', 'critical']);
    expect(h.logMessages(instance.id)).toContain(`(token ${uuid}) This job is canceled.`);
    expect(h.logMessages(instance.id)).toContain(`(token ${uuid}) Job definition is not found for 999.`);
  });

  it('kills the running commands of an instance that goes critical', async () => {
    const h = new EngineHarness();
    h.define(1, 'fork:\n  execute: sleep 100\n  sequence:\n    noop:\n    noop:\n    sub_process: 999\n');
    const instance = await h.launch(1);
    for (let i = 0; i < 4; i++) await h.pass();
    const running = [...h.store.executions.values()][0]!;
    running.claimedAt = h.clock.now();
    await h.runUntilIdle();
    expect(instanceStatus(h.store.instances.get(instance.id)!)).toBe(INSTANCE_STATUS.canceled);
    expect(h.store.executions.get(running.id)?.killRequestedAt).not.toBeNull();
  });

  it('treats a token whose script no longer parses as critical', async () => {
    const h = new EngineHarness();
    h.define(1, 'noop:\n');
    const instance = await h.launch(1, { script: 'unknown_task: x\n' });
    await h.pass();
    expect(h.eventTypes(instance.id)).toEqual(['launch', 'critical']);
  });
});

describe('fork and parallel_fork', () => {
  it('runs both of two fork blocks in one script', async () => {
    const h = new EngineHarness();
    h.define(1, 'fork:\n  echo: a\n  echo: b\nfork:\n  echo: c\n  echo: d\necho: end\n');
    const instance = await h.launch(1);
    await h.runUntilIdle();
    const echoed = h.logMessages(instance.id).flatMap((m) => /\) ([a-d]|end)$/.exec(m)?.[1] ?? []);
    expect(echoed.slice(0, 2).sort()).toEqual(['a', 'b']);
    expect(echoed.slice(2, 4).sort()).toEqual(['c', 'd']);
    expect(echoed[4]).toBe('end');
    expect(instanceStatus(h.store.instances.get(instance.id)!)).toBe(INSTANCE_STATUS.success);
  });

  it('gives each fork child its subtree as script, rooted at /', async () => {
    const h = new EngineHarness();
    h.define(1, 'fork:\n  sequence:\n    noop:\n  execute: x\n');
    const instance = await h.launch(1);
    await h.pass();
    await h.pass();
    const children = h.tokensOf(instance.id).filter((t) => t.parentId !== null);
    expect(children.map((c) => c.script)).toEqual(['sequence:\n  noop:\n', 'execute: x\n']);
    expect(children.every((c) => c.path === '/')).toBe(true);
  });

  it('gives parallel_fork children their index and size, and never the parent', async () => {
    const h = new EngineHarness();
    h.define(1, 'env: A=1\nparallel_fork: 3\n  execute: work\nexecute: after\n');
    const instance = await h.launch(1);
    for (let i = 0; i < 10; i++) await h.pass();
    const executions = [...h.store.executions.values()];
    expect(executions.map((e) => e.env.KUROKO2_PARALLEL_FORK_INDEX).sort()).toEqual(['0', '1', '2']);
    expect(executions.every((e) => e.env.KUROKO2_PARALLEL_FORK_SIZE === '3' && e.env.A === '1')).toBe(true);
    h.finishExecutions(() => 0);
    for (let i = 0; i < 10; i++) await h.pass();
    const after = [...h.store.executions.values()].find((e) => e.shell === 'after');
    expect(after?.env.KUROKO2_PARALLEL_FORK_INDEX).toBeUndefined();
    expect(after?.env.KUROKO2_PARALLEL_FORK_SIZE).toBeUndefined();
    expect(after?.env.A).toBe('1');
    await h.runUntilIdle(() => 0);
    expect(h.store.histories.map((x) => x.shell)).toEqual(['work', 'work', 'work', 'after']);
    expect(instanceStatus(h.store.instances.get(instance.id)!)).toBe(INSTANCE_STATUS.success);
  });

  it('keeps the parent waiting while a failed child is retried, then goes on', async () => {
    const h = new EngineHarness();
    h.define(1, 'fork:\n  execute: ok\n  execute: bad\necho: joined\n');
    const instance = await h.launch(1);
    await h.runUntilIdle((e) => (e.shell === 'bad' ? 1 : 0));
    expect(instanceStatus(h.store.instances.get(instance.id)!)).toBe(INSTANCE_STATUS.error);
    const failed = h.tokensOf(instance.id).find((t) => t.status === TOKEN_STATUS.failure)!;
    expect(rootToken(h, instance.id).status).toBe(TOKEN_STATUS.working);
    await h.store.commit(await h.engine.retry(failed));
    await h.runUntilIdle(() => 0);
    expect(h.logMessages(instance.id).some((m) => m.endsWith(') joined'))).toBe(true);
    expect(h.eventTypes(instance.id)).toEqual(['launch', 'failure', 'retrying', 'back_to_normal']);
  });

  it('keeps the instance in error while another child is still failed', async () => {
    const h = new EngineHarness();
    h.define(1, 'fork:\n  execute: bad1\n  execute: bad2\n');
    const instance = await h.launch(1);
    await h.runUntilIdle(() => 1);
    const failed = h.tokensOf(instance.id).filter((t) => t.status === TOKEN_STATUS.failure);
    expect(failed).toHaveLength(2);
    await h.store.commit(await h.engine.skip(failed[0]!));
    expect(instanceStatus(h.store.instances.get(instance.id)!)).toBe(INSTANCE_STATUS.error);
    await h.store.commit(await h.engine.skip(h.store.tokens.get(failed[1]!.id)!));
    expect(instanceStatus(h.store.instances.get(instance.id)!)).toBe(INSTANCE_STATUS.working);
  });
});

describe('context tasks', () => {
  it('merges env: options, later values winning, quotes unescaped', async () => {
    const h = new EngineHarness();
    h.define(1, `env: A=1 B="two words" C='it\\'s'\nenv: A=3\nexecute: run\n`);
    await h.launch(1, { env: { FROM_API: 'yes' } });
    for (let i = 0; i < 6; i++) await h.pass();
    const [execution] = [...h.store.executions.values()];
    expect(execution!.env).toMatchObject({ A: '3', B: 'two words', C: "it's", FROM_API: 'yes' });
  });

  it('sends the command to the queue set by queue:', async () => {
    const h = new EngineHarness();
    h.define(1, 'queue: batch\nexecute: run\n');
    await h.launch(1);
    for (let i = 0; i < 4; i++) await h.pass();
    expect([...h.store.executions.values()][0]!.queue).toBe('batch');
  });

  it('requests one kill when a command runs longer than its timeout, counted from its start', async () => {
    const h = new EngineHarness();
    h.define(1, 'timeout: 2\nexecute: slow\n');
    const instance = await h.launch(1);
    for (let i = 0; i < 4; i++) await h.pass();
    const execution = [...h.store.executions.values()][0]!;
    h.clock.advance(10 * MINUTE); // queued for 10 minutes: does not count (D6)
    Object.assign(execution, { claimedAt: h.clock.now(), startedAt: h.clock.now(), pid: 10, attempt: 1 });
    await h.pass();
    expect(execution.killRequestedAt).toBeNull();
    h.clock.advance(2 * MINUTE + 1000);
    await h.pass();
    expect(execution.killRequestedAt).not.toBeNull();
    const timeouts = () => h.logMessages(instance.id).filter((m) => m.includes('Timeout occurred after 2 minutes.'));
    expect(timeouts()).toHaveLength(1);
    await h.pass();
    expect(timeouts()).toHaveLength(1);
  });
});

describe('sub_process', () => {
  it('launches the sub definition, waits for it and goes on when it finishes', async () => {
    const h = new EngineHarness();
    h.define(1, 'sub_process: 2\necho: after\n');
    h.define(2, 'noop:\n');
    const parent = await h.launch(1);
    await h.runUntilIdle();
    const sub = [...h.store.instances.values()].find((i) => i.definitionId === 2)!;
    expect(sub.launchedBy).toBe(`'#1 job 1' instance#1/${parent.id}`);
    expect(instanceStatus(h.store.instances.get(parent.id)!)).toBe(INSTANCE_STATUS.success);
    expect(h.logMessages(parent.id).some((m) => m.includes(`'#2 job 2' instance#2/${sub.id} is finished.`))).toBe(true);
  });

  it('fails when the sub instance is canceled, and a retry launches a new one (D11)', async () => {
    const h = new EngineHarness();
    h.define(1, 'sub_process: 2\n');
    h.define(2, 'execute: long\n');
    const parent = await h.launch(1);
    for (let i = 0; i < 3; i++) await h.pass();
    const first = [...h.store.instances.values()].find((i) => i.definitionId === 2)!;
    await h.store.cancel(await h.engine.cancel(first, 'bob'));
    await h.runUntilIdle();
    expect(rootToken(h, parent.id).status).toBe(TOKEN_STATUS.failure);
    await h.store.commit(await h.engine.retry(rootToken(h, parent.id)));
    await h.runUntilIdle(() => 0);
    const subs = [...h.store.instances.values()].filter((i) => i.definitionId === 2);
    expect(subs).toHaveLength(2);
    expect(instanceStatus(h.store.instances.get(parent.id)!)).toBe(INSTANCE_STATUS.success);
  });

  it('fails when prevent_multi of the sub definition blocks the sub instance', async () => {
    const h = new EngineHarness();
    h.define(1, 'sub_process: 2\n');
    h.define(2, 'execute: long\n', { preventMulti: PREVENT_MULTI.workingOrError });
    await h.launch(2);
    const parent = await h.launch(1);
    await h.runUntilIdle();
    expect(rootToken(h, parent.id).status).toBe(TOKEN_STATUS.failure);
  });
});

describe('wait', () => {
  it('waits until an instance of each job created in the window has finished', async () => {
    const h = new EngineHarness();
    h.define(1, 'wait: 2/daily\necho: go\n');
    h.define(2, 'noop:\n');
    const waiting = await h.launch(1);
    const { uuid } = rootToken(h, waiting.id);
    await h.pass();
    await h.pass();
    expect(rootToken(h, waiting.id).status).toBe(TOKEN_STATUS.waiting);
    await h.pass();
    expect(rootToken(h, waiting.id).status).toBe(TOKEN_STATUS.waiting);
    await h.launch(2);
    await h.runUntilIdle();
    expect(instanceStatus(h.store.instances.get(waiting.id)!)).toBe(INSTANCE_STATUS.success);
    expect(h.logMessages(waiting.id)).toContain(`(token ${uuid}) All waiting jobs are finished.`);
  });

  it('does not count an upstream instance from another day', async () => {
    const h = new EngineHarness();
    h.define(1, 'wait: 2/daily timeout=2h\n');
    h.define(2, 'noop:\n');
    await h.launch(2);
    await h.runUntilIdle();
    h.clock.advance(24 * 60 * MINUTE);
    const waiting = await h.launch(1);
    await h.runUntilIdle();
    expect(rootToken(h, waiting.id).status).toBe(TOKEN_STATUS.waiting);
  });

  it('fails after its timeout, counted from when the wait began, and can be skipped', async () => {
    const h = new EngineHarness();
    h.define(1, 'noop:\nwait: 2/hourly timeout=30\necho: go\n');
    h.define(2, 'noop:\n');
    const waiting = await h.launch(1);
    await h.pass();
    h.clock.advance(20 * MINUTE);
    await h.runUntilIdle();
    h.clock.advance(25 * MINUTE);
    await h.pass();
    expect(rootToken(h, waiting.id).status).toBe(TOKEN_STATUS.waiting);
    h.clock.advance(6 * MINUTE);
    await h.pass();
    expect(rootToken(h, waiting.id).status).toBe(TOKEN_STATUS.failure);
    expect(h.logMessages(waiting.id).some((m) => m.includes('waiting jobs `2/hourly timeout=30` timeout.'))).toBe(true);
  });
});

describe('long elapsed time', () => {
  it('announces a token running past its expected time once an hour', async () => {
    const h = new EngineHarness();
    h.define(1, 'expected_time: 10\nexecute: slow\n');
    const instance = await h.launch(1);
    for (let i = 0; i < 4; i++) await h.pass();
    h.clock.advance(11 * MINUTE);
    await h.pass();
    await h.pass();
    expect(h.eventTypes(instance.id).filter((t) => t === 'long_elapsed_time')).toHaveLength(1);
    h.clock.advance(61 * MINUTE);
    await h.pass();
    expect(h.eventTypes(instance.id).filter((t) => t === 'long_elapsed_time')).toHaveLength(2);
  });

  it('does not announce from fork children whose expected time equals the parent', async () => {
    const h = new EngineHarness();
    h.define(1, 'expected_time: 10\nfork:\n  execute: a\n  execute: b\n');
    const instance = await h.launch(1);
    for (let i = 0; i < 6; i++) await h.pass();
    h.clock.advance(11 * MINUTE);
    await h.pass();
    expect(h.eventTypes(instance.id).filter((t) => t === 'long_elapsed_time')).toHaveLength(1);
  });
});

describe('launch and cancel', () => {
  it('creates a blocked launch already canceled, with the Kuroko2 log line', async () => {
    const h = new EngineHarness();
    h.define(1, 'execute: x\n', { preventMulti: PREVENT_MULTI.workingOrError });
    await h.launch(1);
    const second = await h.launch(1);
    expect(instanceStatus(second)).toBe(INSTANCE_STATUS.canceled);
    expect(h.logMessages(second.id)).toEqual([
      'Launched by test',
      'This job was canceled because there is already a working or erred job instance.',
    ]);
    expect(h.eventTypes(second.id)).toEqual(['launch', 'cancellation']);
  });

  it('cancels an instance: tokens removed, running commands killed, unclaimed ones dropped; twice is a conflict', async () => {
    const h = new EngineHarness();
    h.define(1, 'fork:\n  execute: a\n  execute: b\n');
    const instance = await h.launch(1);
    for (let i = 0; i < 4; i++) await h.pass();
    const [claimed, unclaimed] = [...h.store.executions.values()];
    claimed!.claimedAt = h.clock.now();
    expect(await h.store.cancel(await h.engine.cancel(h.store.instances.get(instance.id)!, 'carol'))).toBe(true);
    expect(h.tokensOf(instance.id)).toEqual([]);
    expect(h.store.executions.get(claimed!.id)!.killRequestedAt).not.toBeNull();
    expect(h.store.executions.has(unclaimed!.id)).toBe(false);
    expect(h.eventTypes(instance.id)).toEqual(['launch', 'cancellation']);
    await expect(h.engine.cancel(h.store.instances.get(instance.id)!, 'carol')).rejects.toBeInstanceOf(ConflictError);
  });

  it('commits nothing from a step computed on a stale version', async () => {
    const h = new EngineHarness();
    h.define(1, 'noop:\nnoop:\n');
    const instance = await h.launch(1);
    const token = rootToken(h, instance.id);
    const first = await h.engine.step(token);
    const second = await h.engine.step(token);
    expect(await h.store.commit(first!)).toBe(true);
    expect(await h.store.commit(second!)).toBe(false);
    expect(rootToken(h, instance.id).path).toBe('/0-noop');
  });
});

describe('compatibility details', () => {
  it('sets RAILS_ENV with rails_env: and accepts subprocess as an alias with its own path', async () => {
    const h = new EngineHarness();
    h.define(1, 'rails_env: staging\nsubprocess: 2\nexecute: run\n');
    h.define(2, 'noop:\n');
    const instance = await h.launch(1);
    await h.runUntilIdle();
    expect(h.logMessages(instance.id).some((m) => m.includes("Current node is '/1-subprocess'."))).toBe(true);
    const [execution] = [...h.store.executions.values()];
    expect(execution!.env.RAILS_ENV).toBe('staging');
  });

  it('treats kuroko_runner met at run time as critical, saying it is not supported', async () => {
    const h = new EngineHarness();
    h.define(1, 'noop:\n');
    const instance = await h.launch(1, { script: 'kuroko_runner: remind_failure\n' });
    await h.runUntilIdle();
    expect(h.eventTypes(instance.id)).toEqual(['launch', 'critical']);
    expect(h.logMessages(instance.id).some((m) => /kuroko_runner/.test(m))).toBe(true);
  });

  it('skips a waiting token to its next node and forgets the wait', async () => {
    const h = new EngineHarness();
    h.define(1, 'wait: 2/daily\necho: after\n');
    h.define(2, 'noop:\n');
    const instance = await h.launch(1);
    await h.runUntilIdle();
    const waiting = rootToken(h, instance.id);
    expect(waiting.status).toBe(TOKEN_STATUS.waiting);
    await h.store.commit(await h.engine.skip(waiting, 'dave'));
    expect(rootToken(h, instance.id).context.WAIT).toBeUndefined();
    await h.runUntilIdle();
    expect(h.logMessages(instance.id).some((m) => m.endsWith(') after'))).toBe(true);
    expect(instanceStatus(h.store.instances.get(instance.id)!)).toBe(INSTANCE_STATUS.success);
  });

  it('sets the execute queue back to @default with a blank queue:', async () => {
    const h = new EngineHarness();
    h.define(1, 'queue: batch\nqueue:\nexecute: run\n');
    await h.launch(1);
    for (let i = 0; i < 5; i++) await h.pass();
    expect([...h.store.executions.values()][0]!.queue).toBe('@default');
  });

  it('records a lost command (D10) as a failure that names the reason', async () => {
    const h = new EngineHarness();
    h.define(1, 'execute: long\n');
    const instance = await h.launch(1);
    await h.pass();
    await h.pass();
    const execution = [...h.store.executions.values()][0]!;
    Object.assign(execution, { claimedAt: h.clock.now(), startedAt: h.clock.now(), pid: 7, finishedAt: h.clock.now(), lostReason: 'worker host-a stopped heart-beating' });
    await h.pass();
    expect(rootToken(h, instance.id).status).toBe(TOKEN_STATUS.failure);
    expect(h.store.events.find((e) => e.type === 'failure')!.message).toContain('was lost: worker host-a stopped heart-beating');
  });
});
