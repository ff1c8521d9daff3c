/**
 * A TCP proxy in front of MariaDB that can cut one agent off the network: while partitioned it forwards nothing
 * (reads paused, so bytes wait as in a dropped link's retransmissions) and holds new connections unanswered; when
 * healed, the held bytes flow and the held connections are made, as when a network comes back.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface Proxy {
  port: number;
  partition(): void;
  heal(): void;
  close(): Promise<void>;
}

export async function startProxy(targetPort: number): Promise<Proxy> {
  let partitioned = false;
  const sockets = new Set<Socket>();
  const held: (() => void)[] = [];
  const link = (client: Socket) => {
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    upstream.on('close', () => sockets.delete(upstream));
    if (partitioned) upstream.pause();
  };
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    if (partitioned) {
      client.pause();
      held.push(() => link(client));
    } else {
      link(client);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    partition() {
      partitioned = true;
      for (const socket of sockets) socket.pause();
    },
    heal() {
      partitioned = false;
      for (const socket of sockets) socket.resume();
      for (const connectHeld of held.splice(0)) connectHeld();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
