/**
 * `peek`, `release`, `block` and `blockedFor` of the Redis backends where the conformance suite
 * (test/conformance, which runs them on every algorithm under a test clock) does not look: on
 * Redis's own clock, on a single node and on a 3-master cluster; the block they set is the very
 * key a rule's `blockTime` sets; and what each costs Redis: releases of one event-loop iteration
 * go as one script call, a peek writes nothing.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import type { Redis } from 'ioredis';
import type { ConsumeQuery } from '../lib/backends/rate-limit.backend.js';
import { blockKey } from '../lib/backends/redis/redis-keys.js';
import { RedisBackend } from '../lib/backends/redis/redis.backend.js';
import { RATE_LIMIT_ALGORITHMS, type RateLimitAlgorithm } from '../lib/rules/rule-units.js';
import { commandCalls } from './support/command-stats.js';
import { useRedisTopologies, type RedisClient } from './support/redis-topologies.js';

const redis = useRedisTopologies('rlops');
const HOUR = 3_600_000;

/** One ready client per topology, shared by every test of this file. */
const shared = new Map<string, RedisClient>();

beforeAll(async () => {
  for (const topology of redis.topologies) shared.set(topology.name, await topology.client());
}, 30_000);

let users = 0;

/** A backend of `algorithm` on the topology's shared client, under a prefix of its own. */
function backendOn(topology: string, algorithm: RateLimitAlgorithm): RedisBackend {
  const backend = new RedisBackend(shared.get(topology)!, {
    algorithm,
    prefix: redis.freshPrefix(),
  });
  redis.closeAfterAll(backend);
  return backend;
}

/** A query of a fresh user: 5 an hour (an hour, so no window ends while a test runs). */
function hourly(blockMs = 0): ConsumeQuery {
  users += 1;
  return {
    counter: { user: `ops-${redis.run}-${users}`, scope: 'path:/login', method: 'POST' },
    limits: [{ unit: 'hour', limit: 5, windowMs: HOUR }],
    blockMs,
  };
}

/** The script calls among `commands`: EVALSHA, and EVAL when Redis did not have the script. */
function scriptCalls(commands: Record<string, number>): Record<string, number> {
  const { eval: evals, evalsha } = commands;
  return {
    ...(evals === undefined ? {} : { eval: evals }),
    ...(evalsha === undefined ? {} : { evalsha }),
  };
}

/** The commands `work` made the node run (inside scripts too), minus the observer's INFO. */
async function commandsDuring(
  node: Redis,
  work: () => Promise<unknown>,
): Promise<Record<string, number>> {
  const before = await commandCalls(node);
  await work();
  const after = await commandCalls(node);
  const delta: Record<string, number> = {};
  for (const [name, calls] of after) {
    const made = calls - (before.get(name) ?? 0) - (name === 'info' ? 1 : 0);
    if (made > 0) delta[name] = made;
  }
  return delta;
}

for (const topology of ['single node', '3-master cluster']) {
  describe(`RedisBackend operations on Redis's own clock, ${topology}`, () => {
    for (const algorithm of RATE_LIMIT_ALGORITHMS) {
      it(`${algorithm}: peek counts nothing, release gives back, block and blockedFor agree with consume`, async () => {
        const backend = backendOn(topology, algorithm);
        const q = hourly();
        const user = q.counter.user;
        expect(await backend.peek(q)).toMatchObject({ blockedMs: 0, units: [{ remaining: 5 }] });
        await backend.consume(q);
        await backend.consume(q);
        const peeked = await backend.peek(q);
        expect(peeked).toMatchObject({ blockedMs: 0, units: [{ unit: 'hour', remaining: 3 }] });
        expect(peeked.units[0]!.resetMs).toBeLessThanOrEqual(HOUR);
        // The peek counted nothing: three more fit, then the hour is full.
        expect(await backend.peek(q)).toMatchObject({ units: [{ remaining: 3 }] });
        await backend.release(q);
        await backend.release(q);
        await backend.release(q); // one more than was taken: never below zero
        expect(await backend.peek(q)).toMatchObject({ units: [{ remaining: 5 }] });
        for (let i = 4; i >= 0; i--) {
          expect(await backend.consume(q)).toMatchObject({
            allowed: true,
            units: [{ remaining: i }],
          });
        }
        expect(await backend.consume(q)).toMatchObject({ allowed: false, blocked: false });

        await backend.block(user, 60_000);
        const left = await backend.blockedFor(user);
        expect(left).toBeGreaterThan(55_000);
        expect(left).toBeLessThanOrEqual(60_000);
        const during = await backend.peek(q);
        expect(during.blockedMs).toBeGreaterThan(55_000);
        expect(during.blockedMs).toBeLessThanOrEqual(left);
        const other = { ...hourly(), counter: { ...q.counter, scope: 'zone:other' } };
        expect(await backend.consume(other)).toMatchObject({ allowed: false, blocked: true });
        expect(await backend.unblock(user)).toBe(true);
        expect(await backend.blockedFor(user)).toBe(0);
        expect(await backend.consume(other)).toMatchObject({ allowed: true });
      });
    }
  });
}

describe('RedisBackend operations: keys and commands', () => {
  let node: Redis;

  beforeAll(async () => {
    node = await redis.singleClient();
  });

  it("block() sets the user's block key, the one a rule's blockTime sets, replacing it", async () => {
    const backend = backendOn('single node', 'fixed-window');
    const q = { ...hourly(90_000), limits: [{ unit: 'hour' as const, limit: 1, windowMs: HOUR }] };
    const key = blockKey(backend['prefix'], q.counter.user);
    await backend.consume(q);
    expect(await backend.consume(q)).toMatchObject({ allowed: false, blocked: true });
    expect(await node.pttl(key)).toBeGreaterThan(85_000);
    // A shorter block by hand replaces the rule's longer one, in the same key.
    await backend.block(q.counter.user, 5_000);
    const left = await node.pttl(key);
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(5_000);
    expect(await backend.blockedFor(q.counter.user)).toBeLessThanOrEqual(left);
    expect(await backend.unblock(q.counter.user)).toBe(true);
    expect(await node.exists(key)).toBe(0);
  });

  it('sends the releases of one event-loop iteration as one script call', async () => {
    for (const algorithm of RATE_LIMIT_ALGORITHMS) {
      const backend = backendOn('single node', algorithm);
      const q = { ...hourly(), limits: [{ unit: 'hour' as const, limit: 10, windowMs: HOUR }] };
      // Loads the scripts (a first call is EVALSHA, NOSCRIPT, then EVAL).
      await backend.release(hourly());
      await Promise.all([backend.release(hourly()), backend.release(hourly())]);
      await Promise.all(Array.from({ length: 10 }, () => backend.consume(q)));
      const commands = await commandsDuring(node, () =>
        Promise.all(Array.from({ length: 10 }, () => backend.release(q))),
      );
      expect({ algorithm, scripts: scriptCalls(commands) }).toEqual({
        algorithm,
        scripts: { evalsha: 1 },
      });
      expect({ algorithm, peeked: await backend.peek(q) }).toMatchObject({
        algorithm,
        peeked: { units: [{ remaining: 10 }] },
      });
    }
  });

  it('peeks in one script call that writes nothing, and blocks and tells a block in one each', async () => {
    const writes = ['set', 'incr', 'incrby', 'decrby', 'del', 'rpush', 'ltrim', 'pexpire'];
    for (const algorithm of RATE_LIMIT_ALGORITHMS) {
      const backend = backendOn('single node', algorithm);
      const q = hourly(60_000);
      await backend.consume(q);
      await backend.peek(hourly()); // loads the script
      const commands = await commandsDuring(node, () => backend.peek(q));
      expect({ algorithm, scripts: scriptCalls(commands) }).toEqual({
        algorithm,
        scripts: { evalsha: 1 },
      });
      expect([algorithm, Object.keys(commands).filter((name) => writes.includes(name))]).toEqual([
        algorithm,
        [],
      ]);
    }
    const backend = backendOn('single node', 'fixed-window');
    await backend.block('warm-up', 1);
    await backend.blockedFor('warm-up');
    const user = hourly().counter.user;
    expect(await commandsDuring(node, () => backend.block(user, 1_000))).toEqual({
      evalsha: 1,
      set: 1,
    });
    expect(await commandsDuring(node, () => backend.blockedFor(user))).toEqual({
      evalsha: 1,
      pttl: 1,
    });
  });
});
