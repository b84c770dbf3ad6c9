/**
 * Every algorithm of `RedisBackend`, with costs and bursts, on a single node and on a 3-master
 * cluster under the test clock: exact numbers for each algorithm's scenarios, and random schedules
 * decided exactly as `MemoryBackend` decides them on the same clock (both follow the
 * `RateLimitAlgorithm` definition).
 */
import { describe, expect, it } from '@jest/globals';
import type { ConsumeQuery, ConsumeResult, UnitState } from '../lib/backends/rate-limit.backend.js';
import { MemoryBackend } from '../lib/backends/memory.backend.js';
import { RedisBackend } from '../lib/backends/redis/redis.backend.js';
import { SlidingRedisBackend } from '../lib/backends/redis/sliding-redis.backend.js';
import { unitKey } from '../lib/backends/redis/redis-keys.js';
import {
  RATE_LIMIT_ALGORITHMS,
  type RateLimitAlgorithm,
  type UnitLimit,
} from '../lib/rules/rule-units.js';
import { START_MS, useRedisTopologies } from './support/redis-topologies.js';
import { counter, MINUTE, query, SECOND, unit } from './support/units.js';

const redis = useRedisTopologies('rlalgo');

function state(limit: UnitLimit, remaining: number, resetMs: number): UnitState {
  return { ...limit, remaining, resetMs };
}

function admitted(...units: UnitState[]): ConsumeResult {
  return { allowed: true, retryAfterMs: 0, blocked: false, unit: undefined, units };
}

function rejected(retryAfterMs: number, by: UnitLimit, units: UnitState[]): ConsumeResult {
  return { allowed: false, retryAfterMs, blocked: false, unit: by.unit, units };
}

/** A deterministic pseudo-random sequence (a linear congruential generator). */
function seeded(seed: number): (n: number) => number {
  return (n) => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed % n;
  };
}

describe.each(redis.topologies)('on a $name', (topology) => {
  let now = START_MS;
  const at = (ms: number): void => {
    now = START_MS + ms;
  };

  async function backend(algorithm?: RateLimitAlgorithm): Promise<RedisBackend> {
    const client = await topology.client();
    const made = new RedisBackend(client, {
      prefix: redis.freshPrefix(),
      testClock: () => now,
      ...(algorithm === undefined ? {} : { algorithm }),
    });
    redis.closeAfterAll(made);
    return made;
  }

  /** `q` with an algorithm, a cost and a burst. */
  function ask(
    limits: UnitLimit[],
    extra: Pick<ConsumeQuery, 'algorithm' | 'cost' | 'burst'>,
    blockMs = 0,
  ): ConsumeQuery {
    return { ...query(limits, counter(), blockMs), ...extra };
  }

  it('reports all four algorithms, fixed-window by default (sliding-log for SlidingRedisBackend)', async () => {
    const client = await topology.client();
    const plain = await backend();
    const sliding = new SlidingRedisBackend(client, { prefix: redis.freshPrefix() });
    redis.closeAfterAll(sliding);
    expect(plain.algorithm).toBe('fixed-window');
    expect(sliding.algorithm).toBe('sliding-log');
    expect((await backend('token-bucket')).algorithm).toBe('token-bucket');
    expect(plain.algorithms).toEqual(RATE_LIMIT_ALGORITHMS);
    expect(sliding.algorithms).toEqual(RATE_LIMIT_ALGORITHMS);
    expect(() => new RedisBackend(client, { algorithm: 'token_bucket' as never })).toThrow(
      /"algorithm": must be one of .*; did you mean 'token-bucket'\?/,
    );
  });

  it('fixed window: a cost takes that many, and one that does not fit is rejected whole', async () => {
    const b = await backend();
    const minute = unit('minute', 10);
    at(0);
    expect(await b.consume(ask([minute], { cost: 7 }))).toEqual(admitted(state(minute, 3, MINUTE)));
    at(1_000);
    expect(await b.consume(ask([minute], { cost: 4 }))).toEqual(
      rejected(59_000, minute, [state(minute, 3, 59_000)]),
    );
    expect(await b.consume(ask([minute], { cost: 11 }))).toEqual(
      rejected(MINUTE, minute, [state(minute, 3, 59_000)]),
    );
    expect(await b.consume(ask([minute], { cost: 3 }))).toEqual(admitted(state(minute, 0, 59_000)));
  });

  it('sliding log: a cost leaves that many entries, and waits for as many to leave', async () => {
    const b = await backend('sliding-log');
    const second = unit('second', 5);
    at(0);
    expect(await b.consume(ask([second], { cost: 2 }))).toEqual(admitted(state(second, 3, SECOND)));
    at(300);
    expect(await b.consume(ask([second], { cost: 2 }))).toEqual(admitted(state(second, 1, 700)));
    at(600);
    // 4 entries (two at 0, two at 300): a cost of 3 needs the 2nd oldest (at 0) to leave.
    expect(await b.consume(ask([second], { cost: 3 }))).toEqual(
      rejected(400, second, [state(second, 1, 400)]),
    );
    at(1_000);
    expect(await b.consume(ask([second], { cost: 3 }))).toEqual(admitted(state(second, 0, 300)));
    // Full: 5 entries (300, 300, 1000 x3); a cost of 2 waits for both at 300 to leave.
    expect(await b.consume(ask([second], { cost: 2 }))).toEqual(
      rejected(300, second, [state(second, 0, 300)]),
    );
  });

  it('token bucket: a burst at once, then the rate, waiting for the tokens of its cost', async () => {
    const b = await backend('token-bucket');
    const second = unit('second', 2); // a token every 500 ms
    const bucket = (cost = 1) => ask([second], { algorithm: 'token-bucket', cost, burst: 4 });
    at(0);
    // D = 3000 after 3 tokens (W = 1000 per token), full again in 3000 / 2 = 1500 ms.
    expect(await b.consume(bucket(3))).toEqual(admitted(state(second, 1, 1_500)));
    expect(await b.consume(bucket(2))).toEqual(rejected(500, second, [state(second, 1, 1_500)]));
    at(250); // D = 3000 - 250 * 2 = 2500
    expect(await b.consume(bucket(1))).toEqual(admitted(state(second, 0, 1_750)));
    // D = 3500: one more token in ceil((3500 + 1000 - 4000) / 2) = 250 ms.
    expect(await b.consume(bucket(1))).toEqual(rejected(250, second, [state(second, 0, 1_750)]));
    expect(await b.consume(bucket(5))).toEqual(rejected(SECOND, second, [state(second, 0, 1_750)]));
    at(501);
    // D = 3500 - 251 * 2 = 2998: remaining floor(1002 / 1000) = 1; after one: D = 3998.
    expect(await b.consume(bucket(1))).toEqual(admitted(state(second, 0, 1_999)));
    at(10_000); // idle: full again, its key gone in virtual time
    expect(await b.consume(bucket(4))).toEqual(admitted(state(second, 0, 2_000)));
  });

  it('token bucket: a rate of 0 admits nothing, with its window as the wait and reset', async () => {
    const b = await backend('token-bucket');
    const none = unit('minute', 0);
    at(0);
    expect(await b.consume(ask([none], {}))).toEqual(
      rejected(MINUTE, none, [state(none, 0, MINUTE)]),
    );
  });

  it('sliding window: the weighted estimate of two aligned windows, in exact integers', async () => {
    const b = await backend('sliding-window');
    const second = unit('second', 10);
    const sw = (cost = 1) => ask([second], { algorithm: 'sliding-window', cost });
    // START_MS is a multiple of 1000: window k starts at START_MS + k * 1000.
    at(200);
    expect(await b.consume(sw(6))).toEqual(admitted(state(second, 4, 800)));
    expect(await b.consume(sw(5))).toEqual(
      // q + c > L: next window, where p = 6: e'' = 1000 - floor((10 - 5) * 1000 / 6) = 167.
      rejected(800 + 167, second, [state(second, 4, 800)]),
    );
    at(1_500); // p = 6 weighs 6 * 500 / 1000 = 3: remaining 7
    expect(await b.consume(sw(4))).toEqual(admitted(state(second, 3, 500)));
    // p = 6, q = 4, c = 4: e' = 1000 - floor(2 * 1000 / 6) = 667, wait 667 - 500.
    expect(await b.consume(sw(4))).toEqual(rejected(167, second, [state(second, 3, 500)]));
    at(1_667); // 6 * 333 + 8 * 1000 = 9998 <= 10000
    expect(await b.consume(sw(4))).toEqual(admitted(state(second, 0, 333)));
    at(3_100); // two windows later: the previous one (window 2) is empty
    expect(await b.consume(sw(10))).toEqual(admitted(state(second, 0, 900)));
  });

  it('keeps each algorithm in keys of its own, which reset() clears together', async () => {
    const b = await backend();
    const minute = unit('minute', 5);
    at(0);
    for (const algorithm of RATE_LIMIT_ALGORITHMS) {
      expect(await b.consume(ask([minute], { algorithm, cost: 2 }))).toMatchObject({
        allowed: true,
        units: [{ remaining: 3 }],
      });
    }
    const nodes = await topology.nodes();
    const keys = (await Promise.all(nodes.map((node) => node.keys(`${b['prefix']}*`)))).flat();
    expect(keys.sort()).toEqual(
      RATE_LIMIT_ALGORITHMS.map((algorithm) =>
        unitKey(b['prefix'], counter(), algorithm, minute),
      ).sort(),
    );
    expect(await b.reset(counter())).toBe(true);
    expect((await Promise.all(nodes.map((node) => node.keys(`${b['prefix']}*`)))).flat()).toEqual(
      [],
    );
    expect(await b.reset(counter())).toBe(false);
  });

  it.each(RATE_LIMIT_ALGORITHMS)(
    '%s: many users’ decisions made in one loop iteration (batched per hash slot) admit exactly the limit each',
    async (algorithm) => {
      const b = await backend(algorithm);
      const minute = unit('minute', 7);
      at(0);
      const users = Array.from({ length: 12 }, (_, i) => `user-${i}`);
      const calls = users.flatMap((user) =>
        Array.from({ length: 10 }, () => ({
          user,
          result: b.consume({ ...ask([minute], {}), counter: counter(user), algorithm }),
        })),
      );
      const results = await Promise.all(calls.map((call) => call.result));
      for (const user of users) {
        const own = results.filter((_, i) => calls[i]!.user === user);
        expect(own.map((r) => r.allowed)).toEqual(Array.from({ length: 10 }, (_, i) => i < 7));
        expect(own.slice(0, 7).map((r) => r.units[0]!.remaining)).toEqual([6, 5, 4, 3, 2, 1, 0]);
      }
    },
  );

  it('reset() finds a custom window’s keys in a new process once knowUnits() named it', async () => {
    const first = await backend();
    const prefix: string = first['prefix'];
    const window: UnitLimit = { unit: 'window', limit: 5, windowMs: 900_000 };
    at(0);
    for (const algorithm of RATE_LIMIT_ALGORITHMS) {
      expect(await first.consume(ask([window], { algorithm }))).toMatchObject({ allowed: true });
    }
    // A fresh backend on the same keys, as after a restart: it has decided nothing yet.
    const client = await topology.client();
    const restarted = new RedisBackend(client, { prefix, testClock: () => now });
    redis.closeAfterAll(restarted);
    restarted.knowUnits([window]);
    expect(await restarted.reset(counter())).toBe(true);
    const nodes = await topology.nodes();
    expect((await Promise.all(nodes.map((node) => node.keys(`${prefix}*`)))).flat()).toEqual([]);
  });

  it.each(RATE_LIMIT_ALGORITHMS)(
    '%s: random schedules decide exactly as MemoryBackend does',
    async (algorithm) => {
      const b = await backend(algorithm);
      const memory = new MemoryBackend({ algorithm, clock: () => now, sweepIntervalMs: 0 });
      const random = seeded(RATE_LIMIT_ALGORITHMS.indexOf(algorithm) + 7);
      const rules: UnitLimit[][] = [
        [{ unit: 'second', limit: 5, windowMs: 1_000 }],
        [
          { unit: 'second', limit: 3, windowMs: 1_000 },
          { unit: 'window', limit: 8, windowMs: 7_000 },
        ],
        [{ unit: 'window', limit: 1, windowMs: 300 }],
        [{ unit: 'minute', limit: 0, windowMs: 60_000 }],
      ];
      let t = 0;
      for (let i = 0; i < 400; i++) {
        t += random(4) === 0 ? random(3_000) : random(150);
        at(t);
        const limits = rules[random(20) === 0 ? 3 : random(3)]!;
        const q: ConsumeQuery = {
          counter: counter(random(2) === 0 ? 'alice' : 'bob', `path:/${random(2)}`),
          limits,
          blockMs: random(10) === 0 ? 500 + random(2_000) : 0,
          ...(random(3) === 0 ? { cost: 1 + random(4) } : {}),
          ...(algorithm === 'token-bucket' && random(2) === 0 ? { burst: 1 + random(6) } : {}),
        };
        const expected = memory.consume(q);
        expect([i, t, await b.consume(q)]).toEqual([i, t, expected]);
      }
      memory.close();
    },
    60_000,
  );
});
