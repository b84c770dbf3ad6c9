/**
 * The backend conformance suite and the property tests against {@link RedisBackend} (every
 * algorithm) and {@link SlidingRedisBackend} (its sliding log), each on a single Redis node and on
 * a 3-master cluster: real servers started by the harness, one of each shared by every test of
 * this file.
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
import { beforeAll } from '@jest/globals';
import { RedisBackend } from '../../lib/backends/redis/redis.backend.js';
import { SlidingRedisBackend } from '../../lib/backends/redis/sliding-redis.backend.js';
import {
  START_MS,
  useRedisTopologies,
  type RedisClient,
  type RedisTopology,
} from '../support/redis-topologies.js';
import { RATE_LIMIT_ALGORITHMS } from '../../lib/rules/rule-units.js';
import { describeBackendConformance } from './backend-conformance.js';
import { describeBackendProperties } from './backend-properties.js';

const redis = useRedisTopologies('rlconf');

/** One ready client per topology, shared by every test of this file. */
const shared = new Map<RedisTopology, RedisClient>();

beforeAll(async () => {
  for (const topology of redis.topologies) shared.set(topology, await topology.client());
}, 30_000);

/**
 * Each algorithm on `RedisBackend` (fixed-window as its default, the others named in the
 * queries), and `SlidingRedisBackend` with its default, the sliding log.
 */
const BACKENDS = [
  ...RATE_LIMIT_ALGORITHMS.map((algorithm) => ({
    algorithm,
    namesAlgorithm: algorithm !== 'fixed-window',
    Backend: RedisBackend,
  })),
  { algorithm: 'sliding-log', namesAlgorithm: false, Backend: SlidingRedisBackend },
] as const;

for (const { algorithm, namesAlgorithm, Backend } of BACKENDS) {
  const variants = [
    ...redis.topologies.map((topology) => ({ topology, name: topology.name, start: START_MS })),
    {
      topology: redis.topologies[0],
      name: 'single node, clock 0.75 ms into a millisecond',
      start: START_MS + 0.75,
    },
  ];
  for (const variant of variants) {
    describeBackendConformance({
      name: `${Backend.name} on a ${variant.name}`,
      algorithm,
      namesAlgorithm,
      async create() {
        let now = variant.start;
        const backend = new Backend(shared.get(variant.topology)!, {
          prefix: redis.freshPrefix(),
          testClock: () => now,
        });
        return {
          backend,
          now: () => now,
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

/**
 * The properties: every algorithm on `RedisBackend` (named in each query, or its default), and
 * `SlidingRedisBackend`'s default; a fresh backend per run, on the shared clients. The clock
 * starts 0.75 ms into a millisecond (readings are truncated). Runs are fewer than in memory: each
 * step is a round trip.
 */
const PROPERTY_BACKENDS = [
  { Backend: RedisBackend, algorithms: RATE_LIMIT_ALGORITHMS, defaultAlgorithm: 'fixed-window' },
  { Backend: SlidingRedisBackend, algorithms: [], defaultAlgorithm: 'sliding-log' },
] as const;

for (const { Backend, algorithms, defaultAlgorithm } of PROPERTY_BACKENDS) {
  for (const topology of redis.topologies) {
    describeBackendProperties({
      name: `${Backend.name} on a ${topology.name}`,
      algorithms,
      defaultAlgorithm,
      runs: algorithms.length === 0 ? 60 : 300,
      async create() {
        let now = START_MS + 0.75;
        const backend = new Backend(shared.get(topology)!, {
          prefix: redis.freshPrefix(),
          testClock: () => now,
        });
        return {
          backend,
          now: () => now,
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
