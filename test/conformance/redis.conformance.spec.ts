/**
 * The backend conformance suite against {@link RedisBackend} (fixed window) and
 * {@link SlidingRedisBackend} (sliding log), each on a single Redis node and on a 3-master
 * cluster: real servers started by the harness, one of each shared by every test of this file.
 *
 * Time: each backend gets a `testClock`, which its scripts use instead of Redis's `TIME`. It
 * starts at a realistic Unix time and only `advance(ms)` moves it, so every call is decided at
 * exactly the instant the scenario names and the suite's exact waits hold on every run. One more
 * fixture per algorithm starts 0.75 ms into a millisecond: readings are truncated to the
 * millisecond, as `MemoryBackend` truncates its clock, so nothing may change.
 *
 * Isolation: a fresh backend per test, with its own key prefix (the suite's user ids are unique
 * on top of that).
 */
import { afterAll, beforeAll } from '@jest/globals';
import { Cluster, Redis } from 'ioredis';
import { RedisBackend } from '../../lib/backends/redis/redis.backend.js';
import { SlidingRedisBackend } from '../../lib/backends/redis/sliding-redis.backend.js';
import {
  startRedisCluster,
  startRedisServer,
  type RedisClusterHandle,
  type RedisServerHandle,
} from '../support/redis-harness.js';
import { describeBackendConformance } from './backend-conformance.js';

/** Where every fixture's test clock starts: 2023-11-14T22:13:20Z, in ms. */
const START_MS = 1.7e12;

let single: RedisServerHandle | undefined;
let cluster: RedisClusterHandle | undefined;
let singleClient: Redis;
let clusterClient: Cluster;
const clients: (Redis | Cluster)[] = [];

/** Waits until `client` is ready (it has no offline queue), at most 10 s; tracks it for afterAll. */
async function ready<T extends Redis | Cluster>(client: T): Promise<T> {
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

beforeAll(async () => {
  const [server, nodes] = await Promise.allSettled([startRedisServer(), startRedisCluster()]);
  if (server.status === 'fulfilled') single = server.value;
  if (nodes.status === 'fulfilled') cluster = nodes.value;
  if (server.status === 'rejected') throw server.reason;
  if (nodes.status === 'rejected') throw nodes.reason;
  const safe = { maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false };
  singleClient = await ready(
    new Redis({ host: single!.host, port: single!.port, enableOfflineQueue: false, ...safe }),
  );
  clusterClient = await ready(
    new Cluster([...cluster!.nodes], { enableOfflineQueue: false, redisOptions: safe }),
  );
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(clients.map((client) => client.quit()));
  for (const client of clients) if (client.status !== 'end') client.disconnect();
  await Promise.allSettled([single?.stop(), cluster?.stop()]);
}, 30_000);

const RUN = Math.random().toString(36).slice(2, 10);
let prefixes = 0;

const BACKENDS = [
  { algorithm: 'fixed', Backend: RedisBackend },
  { algorithm: 'sliding', Backend: SlidingRedisBackend },
] as const;

const TOPOLOGIES = [
  { name: 'single node', client: (): Redis | Cluster => singleClient },
  { name: '3-master cluster', client: (): Redis | Cluster => clusterClient },
] as const;

for (const { algorithm, Backend } of BACKENDS) {
  const variants = [
    ...TOPOLOGIES.map((topology) => ({ ...topology, start: START_MS })),
    {
      ...TOPOLOGIES[0],
      name: 'single node, clock 0.75 ms into a millisecond',
      start: START_MS + 0.75,
    },
  ];
  for (const variant of variants) {
    describeBackendConformance({
      name: `${Backend.name} on a ${variant.name}`,
      algorithm,
      async create() {
        let now = variant.start;
        prefixes += 1;
        const backend = new Backend(variant.client(), {
          prefix: `rlconf:${RUN}:${prefixes}:`,
          testClock: () => now,
        });
        return {
          backend,
          advance(ms: number) {
            now += ms;
          },
          async close() {
            await backend.close();
          },
        };
      },
    });
  }
}
