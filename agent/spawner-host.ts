/**
 * The other side of agent/spawner.ts, in the spawner process: runs startCommand
 * (process-runner.ts, unchanged) for each `start` message and posts back, in this order, the pid, the output chunks
 * and the result. Kills do not come here: a group kill needs only the pgid, which the agent has.
 */
import { errorMessage } from '../core/errors';
import { startCommand, type RunningCommand } from './process-runner';
import type { FromSpawner, ToSpawner } from './spawner';

interface Channel {
  post(message: FromSpawner): void;
  onMessage(listener: (message: ToSpawner) => void): void;
}

function channel(): Channel {
  const send = process.send?.bind(process);
  if (send === undefined) throw new Error('spawner-host.ts runs only as a child process with an IPC channel (agent/spawner.ts)');
  // The agent's Ctrl-C or TERM is for the agent, which drains first; the host leaves when the agent's channel closes
  // (the agent stopped or died), taking its pipes with it exactly as the agent's own exit would.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => {});
  process.on('disconnect', () => process.exit(0));
  return { post: (message) => void send(message), onMessage: (listener) => process.on('message', listener) };
}

const { post, onMessage } = channel();
const running = new Map<number, RunningCommand>();

onMessage((message) => {
  if (message.type === 'start') {
    const { id } = message;
    let command: RunningCommand;
    try {
      command = startCommand(message.spec, {
        onSpawn: (pid) => post({ type: 'spawned', id, pid }),
        onOutput: (chunk) => post({ type: 'output', id, chunk }),
      });
    } catch (error) {
      // startCommand reports its failures in the result; this is a bug, reported the same way.
      post({ type: 'failed', id, error: errorMessage(error) });
      return;
    }
    if (command.pid === undefined) post({ type: 'spawned', id, pid: undefined });
    running.set(id, command);
    void command.done.then((result) => {
      running.delete(id);
      post({ type: 'done', id, result });
    });
    return;
  }
  const command = running.get(message.id);
  if (message.type === 'open') command?.open();
  else command?.shut();
});
post({ type: 'ready' });
