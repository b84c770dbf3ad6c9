/**
 * A TCP proxy on 127.0.0.1 in front of a harness-started `redis-server`, that a test can switch
 * into a "blackhole": every connection stays open and nothing passes in either direction, as in
 * a network partition or a hung server behind a load balancer (the case a refused connection or a
 * killed server does not cover: the client sees no error, only silence).
 *
 * Guarantees:
 * - only 127.0.0.1 is bound or connected to (a non-loopback target is refused);
 * - at most {@link MAX_CONNECTIONS} client connections at once, further ones are reset;
 * - `stop()` destroys every socket and closes the listener, within a bounded time.
 *
 * @module
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { LOOPBACK_HOST, type RedisNodeAddress } from './redis-harness.js';

/** Most client connections the proxy holds at once; tests open a handful. */
export const MAX_CONNECTIONS = 64;

/** Longest `startFaultProxy` waits to bind, and `stop()` to close the listener, in ms. */
const LISTEN_TIMEOUT_MS = 2_000;

export interface FaultProxy extends RedisNodeAddress {
  /** `redis://127.0.0.1:<proxy port>`. */
  readonly url: string;
  /**
   * From now on, drop every byte in both directions, on open connections and on the ones
   * accepted later (which are held open and never reach Redis). No socket is closed.
   */
  blackhole(): void;
  /**
   * Back to forwarding. Connections that lived through the blackhole are reset, since bytes of
   * theirs were dropped and their replies would no longer match their commands (the client
   * reconnects); new connections are forwarded again.
   */
  forward(): void;
  /** Whether the proxy is black-holing. */
  readonly blackholing: boolean;
  /**
   * Client connections the client has not closed (it has not sent its FIN). A client that closes
   * during a blackhole gets no answer to its FIN, as in a partition; it counts as closed anyway.
   */
  connections(): number;
  /** Destroys every socket and closes the listener. Idempotent. */
  stop(): Promise<void>;
}

/** One client connection and, unless it was accepted during a blackhole, its upstream socket. */
interface Link {
  readonly client: Socket;
  readonly upstream: Socket | undefined;
  /** True once bytes of this link were dropped. */
  damaged: boolean;
  /** True once the client sent its FIN. */
  clientEnded: boolean;
}

function isLoopback(host: string): boolean {
  return host === LOOPBACK_HOST || host === 'localhost';
}

/**
 * Starts a proxy on a free 127.0.0.1 port that forwards to `target` (a harness-started
 * `redis-server`), forwarding until {@link FaultProxy.blackhole} is called.
 */
export async function startFaultProxy(target: RedisNodeAddress): Promise<FaultProxy> {
  if (!isLoopback(target.host)) {
    throw new Error(`The fault proxy only forwards to 127.0.0.1, not to ${target.host}`);
  }
  const links = new Set<Link>();
  let blackholing = false;
  let stopped = false;

  const drop = (link: Link): void => {
    links.delete(link);
    link.client.destroy();
    link.upstream?.destroy();
  };

  const server: Server = createServer({ allowHalfOpen: true }, (client) => {
    if (stopped || links.size >= MAX_CONNECTIONS) {
      client.resetAndDestroy();
      return;
    }
    // Half-open allowed: a client's FIN is not answered during a blackhole, as a partition would not.
    const upstream = blackholing
      ? undefined
      : createConnection({ host: LOOPBACK_HOST, port: target.port, allowHalfOpen: true });
    const link: Link = { client, upstream, damaged: blackholing, clientEnded: false };
    links.add(link);
    client.on('error', () => drop(link));
    client.on('close', () => drop(link));
    upstream?.on('error', () => drop(link));
    upstream?.on('close', () => drop(link));
    client.on('data', (chunk: Buffer) => {
      if (blackholing || upstream === undefined) link.damaged = true;
      else upstream.write(chunk);
    });
    upstream?.on('data', (chunk: Buffer) => {
      if (blackholing) link.damaged = true;
      else client.write(chunk);
    });
    client.on('end', () => {
      link.clientEnded = true;
      if (blackholing) link.damaged = true;
      else upstream?.end();
    });
    upstream?.on('end', () => {
      if (blackholing) link.damaged = true;
      else client.end();
    });
  });

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      server.close();
      reject(new Error(`Timed out after ${LISTEN_TIMEOUT_MS} ms binding the fault proxy`));
    }, LISTEN_TIMEOUT_MS);
    server.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    server.listen({ host: LOOPBACK_HOST, port: 0 }, () => {
      clearTimeout(timer);
      const address = server.address();
      if (typeof address === 'object' && address !== null) resolve(address.port);
      else reject(new Error('The fault proxy has no TCP address'));
    });
  });

  return {
    host: LOOPBACK_HOST,
    port,
    url: `redis://${LOOPBACK_HOST}:${port}`,
    get blackholing() {
      return blackholing;
    },
    blackhole() {
      blackholing = true;
    },
    forward() {
      blackholing = false;
      for (const link of [...links]) {
        if (link.damaged || link.upstream === undefined) {
          links.delete(link);
          link.client.resetAndDestroy();
          link.upstream?.destroy();
        }
      }
    },
    connections: () => {
      let open = 0;
      for (const link of links) if (!link.clientEnded) open++;
      return open;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const link of [...links]) drop(link);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, LISTEN_TIMEOUT_MS);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
