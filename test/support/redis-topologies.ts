/**
 * The two Redis topologies the backend specs run on: one single node and one 3-master cluster,
 * real servers started by the harness, once per spec file.
 *
 * A spec file calls {@link useRedisTopologies} once, at its top level: that registers the
 * `beforeAll` that starts both servers and the `afterAll` that closes what the file opened
 * (backends handed to `closeAfterAll`, then every client), then stops them.
 */
import { afterAll, beforeAll } from '@jest/globals';
import { Cluster, Redis } from 'ioredis';
import {
  startRedisCluster,
  startRedisServer,
  type RedisClusterHandle,
  type RedisNodeAddress,
  type RedisServerHandle,
} from './redis-harness.js';

/** Where every test clock starts: 2023-11-14T22:13:20Z, in ms (a whole millisecond). */
export const START_MS = 1.7e12;

export type RedisClient = Redis | Cluster;

/** One way to reach Redis: a single node or a cluster. */
export interface RedisTopology {
  readonly name: string;
  readonly clustered: boolean;
  /** A new client of the topology, ready and tracked. */
  client(): Promise<RedisClient>;
  /** A new client of each master node (the one node of a single node), ready and tracked. */
  nodes(): Promise<Redis[]>;
}

export interface RedisTopologies {
  /** The single node (once `beforeAll` has started it). */
  readonly single: RedisServerHandle;
  /** The 3-master cluster (once `beforeAll` has started it). */
  readonly cluster: RedisClusterHandle;
  /** The single node, then the cluster. */
  readonly topologies: readonly [RedisTopology, RedisTopology];
  /** A random tag for this spec file's run, for keys and markers no other run uses. */
  readonly run: string;
  /** A fresh key prefix, so tests never see each other's keys (even on an external REDIS_URL). */
  freshPrefix(): string;
  /** Waits until `client` is ready (clients have no offline queue), at most 10 s, and tracks it. */
  ready<T extends RedisClient>(client: T): Promise<T>;
  /** Tracks a client that is already connected, so `afterAll` disconnects it too. */
  track(client: RedisClient): void;
  /** Closes `backend` in `afterAll`, before any client is disconnected. */
  closeAfterAll(...backends: { close(): Promise<unknown> }[]): void;
  /** A new safe client of one node, ready and tracked. */
  nodeClient(node: RedisNodeAddress): Promise<Redis>;
  /** A new safe client of the single node, ready and tracked. */
  singleClient(): Promise<Redis>;
  /** A new safe client of the cluster, ready and tracked. */
  clusterClient(): Promise<Cluster>;
}

/** What every client of these specs is: no retries and nothing resent after a reconnect. */
const SAFE = { maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false } as const;

/**
 * Starts a single node and a 3-master cluster for this spec file (`beforeAll`) and stops them
 * (`afterAll`); key prefixes are `<prefixTag>:<run>:<n>:`.
 */
export function useRedisTopologies(prefixTag: string): RedisTopologies {
  let single: RedisServerHandle | undefined;
  let cluster: RedisClusterHandle | undefined;
  const clients: RedisClient[] = [];
  const backends: { close(): Promise<unknown> }[] = [];
  const run = Math.random().toString(36).slice(2, 10);
  let prefixes = 0;

  beforeAll(async () => {
    const [server, nodes] = await Promise.allSettled([startRedisServer(), startRedisCluster()]);
    if (server.status === 'fulfilled') single = server.value;
    if (nodes.status === 'fulfilled') cluster = nodes.value;
    if (server.status === 'rejected') throw server.reason;
    if (nodes.status === 'rejected') throw nodes.reason;
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled(backends.map((backend) => backend.close()));
    await Promise.allSettled(clients.map((client) => client.quit()));
    // Disconnect before stopping the servers (a client whose socket is already gone leaves a timer).
    for (const client of clients) if (client.status !== 'end') client.disconnect();
    await Promise.allSettled([single?.stop(), cluster?.stop()]);
  }, 30_000);

  async function ready<T extends RedisClient>(client: T): Promise<T> {
    clients.push(client);
    client.on('error', () => undefined);
    if (client.status !== 'ready') {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('Redis client not ready in 10 s')), 10_000);
        client.once('ready', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return client;
  }

  function started<T>(handle: T | undefined, what: string): T {
    if (handle === undefined) throw new Error(`The Redis ${what} has not started (see beforeAll)`);
    return handle;
  }

  const nodeClient = (node: RedisNodeAddress): Promise<Redis> =>
    ready(new Redis({ host: node.host, port: node.port, enableOfflineQueue: false, ...SAFE }));
  const singleClient = (): Promise<Redis> => nodeClient(started(single, 'single node'));
  const clusterClient = (): Promise<Cluster> =>
    ready(
      new Cluster([...started(cluster, 'cluster').nodes], {
        enableOfflineQueue: false,
        redisOptions: SAFE,
      }),
    );

  return {
    get single() {
      return started(single, 'single node');
    },
    get cluster() {
      return started(cluster, 'cluster');
    },
    topologies: [
      {
        name: 'single node',
        clustered: false,
        client: singleClient,
        nodes: async () => [await singleClient()],
      },
      {
        name: '3-master cluster',
        clustered: true,
        client: clusterClient,
        nodes: () => Promise.all(started(cluster, 'cluster').nodes.map(nodeClient)),
      },
    ],
    run,
    freshPrefix() {
      prefixes += 1;
      return `${prefixTag}:${run}:${prefixes}:`;
    },
    ready,
    track(client) {
      clients.push(client);
    },
    closeAfterAll(...closing) {
      backends.push(...closing);
    },
    nodeClient,
    singleClient,
    clusterClient,
  };
}
