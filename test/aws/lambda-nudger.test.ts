import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { MAX_FINISHED_HINTS, createLambdaNudger } from '../../adapters/aws/lambda-nudger';

const lambda = mockClient(LambdaClient);
const client = new LambdaClient({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });

/** An invoke that stays in flight until released. */
function gatedInvokes() {
  const releases: (() => void)[] = [];
  lambda.on(InvokeCommand).callsFake(() => new Promise((resolve) => releases.push(() => resolve({ StatusCode: 202 }))));
  return releases;
}

beforeEach(() => lambda.reset());

describe('Lambda nudger', () => {
  it('sends an asynchronous invoke with {"nudge": true}', async () => {
    lambda.on(InvokeCommand).resolves({ StatusCode: 202 });
    await createLambdaNudger({ client, functionName: 'kuroko-processor' }).nudge();
    const input = lambda.commandCalls(InvokeCommand)[0]!.args[0].input;
    expect(input.FunctionName).toBe('kuroko-processor');
    expect(input.InvocationType).toBe('Event');
    expect(JSON.parse(new TextDecoder().decode(input.Payload as Uint8Array))).toEqual({ nudge: true });
  });

  it('coalesces a burst into one invoke in flight plus one queued behind it', async () => {
    const releases = gatedInvokes();
    const nudger = createLambdaNudger({ client, functionName: 'f' });
    const first = nudger.nudge();
    const burst = Array.from({ length: 10 }, () => nudger.nudge());
    expect(nudger.sent).toBe(1);
    releases[0]!();
    await first;
    // The queued invoke starts only after the first returned.
    await new Promise((resolve) => setImmediate(resolve));
    expect(nudger.sent).toBe(2);
    releases[1]!();
    await Promise.all(burst);
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(2);
  });

  it('names the finished commands it was nudged for: each once, in the invoke sent after them, at most MAX_FINISHED_HINTS', async () => {
    const releases = gatedInvokes();
    const nudger = createLambdaNudger({ client, functionName: 'f' });
    const payloads = () => lambda.commandCalls(InvokeCommand).map((c) => JSON.parse(new TextDecoder().decode(c.args[0].input.Payload as Uint8Array)) as unknown);
    const first = nudger.nudge(7);
    // Named while the first invoke is in flight: they ride the queued one (those past the cap are dropped).
    const burst = [7, ...Array.from({ length: MAX_FINISHED_HINTS + 3 }, (_, i) => 100 + i)].map((id) => nudger.nudge(id));
    releases[0]!();
    await first;
    await new Promise((resolve) => setImmediate(resolve));
    releases[1]!();
    await Promise.all(burst);
    const [one, two] = payloads() as { nudge: true; finished: number[] }[];
    expect(one).toEqual({ nudge: true, finished: [7] });
    expect(two!.finished).toEqual([7, ...Array.from({ length: MAX_FINISHED_HINTS - 1 }, (_, i) => 100 + i)]);
    // A nudge without a name sends the plain event.
    lambda.reset();
    lambda.on(InvokeCommand).resolves({ StatusCode: 202 });
    await nudger.nudge();
    expect(payloads()).toEqual([{ nudge: true }]);
  });

  it('logs a failed invoke and never throws', async () => {
    lambda.on(InvokeCommand).rejects(new Error('throttled'));
    const warnings: string[] = [];
    await createLambdaNudger({ client, functionName: 'f', logger: { warn: (m) => warnings.push(m) } }).nudge();
    expect(warnings).toEqual(['could not nudge f']);
  });
});
