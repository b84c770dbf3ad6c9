/**
 * What the consume scripts cost Redis and what they leave behind, on a real server and Redis's
 * own clock (the test clock turns expiry off): the commands each decision runs, the fixed-window
 * hash's recorded expiry, the sliding sequence's TTL, and the batching of concurrent calls into
 * one socket write. Decisions themselves are covered by test/conformance and
 * test/redis-backends.spec.ts.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { Redis } from 'ioredis';
import type { UnitLimit } from '../lib/rules/rule-units.js';
import type { ConsumeQuery, RateLimitCounter } from '../lib/backends/rate-limit.backend.js';
import {
  fixedWindowKey,
  FIXED_WINDOW_EXPIRY_FIELD,
  slidingLogKey,
  slidingSequenceKey,
} from '../lib/backends/redis/redis-keys.js';
import { RedisBackend } from '../lib/backends/redis/redis.backend.js';
import { SlidingRedisBackend } from '../lib/backends/redis/sliding-redis.backend.js';
import { startOwnedRedisServer, type OwnedRedisServerHandle } from './support/redis-harness.js';
import { commandCalls } from './support/command-stats.js';

let server: OwnedRedisServerHandle;
const clients: Redis[] = [];
const backends: { close(): Promise<void> }[] = [];
let run = 0;

beforeAll(async () => {
  server = await startOwnedRedisServer();
}, 30_000);

afterAll(async () => {
  await Promise.all(backends.map((backend) => backend.close()));
  await Promise.all(clients.map((client) => client.quit().catch(() => undefined)));
  await server?.stop();
});

async function client(options: { enableAutoPipelining?: boolean } = {}): Promise<Redis> {
  const created = new Redis({
    host: server.host,
    port: server.port,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    lazyConnect: true,
    ...options,
  });
  clients.push(created);
  await created.connect();
  return created;
}

function counter(user = 'alice'): RateLimitCounter {
  return { user, scope: 'path:/a', method: '*' };
}

function unit(name: UnitLimit['unit'], limit: number, windowMs?: number): UnitLimit {
  const standard = { second: 1_000, minute: 60_000, hour: 3_600_000 } as Record<string, number>;
  return { unit: name, limit, windowMs: windowMs ?? standard[name]! };
}

function query(limits: UnitLimit[], c = counter()): ConsumeQuery {
  return { counter: c, limits, blockMs: 0 };
}

function freshPrefix(): string {
  run += 1;
  return `scripts${run}:`;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The commands `work` made the server run (inside scripts too), minus the observer's INFO. */
async function commandsDuring(observer: Redis, work: () => Promise<void>): Promise<object> {
  const before = await commandCalls(observer);
  await work();
  const after = await commandCalls(observer);
  const delta: Record<string, number> = {};
  for (const [name, calls] of after) {
    const made = calls - (before.get(name) ?? 0) - (name === 'info' ? 1 : 0);
    if (made > 0) delta[name] = made;
  }
  return delta;
}

describe('RedisBackend script', () => {
  it('runs TIME, GET, HMGET and HSET per decision; PEXPIREAT only when a later window starts', async () => {
    const node = await client();
    const observer = await client();
    const backend = new RedisBackend(node, { prefix: freshPrefix() });
    backends.push(backend);
    const short = unit('second', 1_000, 100); // a hand-built 100 ms window
    const q = query([short, unit('minute', 1_000)]);
    await backend.consume(query([short], counter('warm-up'))); // EVAL: loads the script

    // A new hash: its TTL is read once (none), then it expires with the minute.
    expect(await commandsDuring(observer, async () => void (await backend.consume(q)))).toEqual({
      evalsha: 1,
      time: 1,
      get: 1,
      hmget: 1,
      pttl: 1,
      hset: 1,
      pexpireat: 1,
    });
    const n = 10;
    const steady = await commandsDuring(observer, async () => {
      for (let i = 0; i < n; i++) expect((await backend.consume(q)).allowed).toBe(true);
    });
    expect(steady).toEqual({ evalsha: n, time: n, get: n, hmget: n, hset: n });
    // A new 100 ms window ends long before the minute: the expiry stays.
    await sleep(150);
    const key = fixedWindowKey(backend['prefix'], q.counter);
    const expiry = await node.pexpiretime(key);
    expect(await commandsDuring(observer, async () => void (await backend.consume(q)))).toEqual({
      evalsha: 1,
      time: 1,
      get: 1,
      hmget: 1,
      hset: 1,
    });
    expect(await node.pexpiretime(key)).toBe(expiry);
    expect(Number(await node.hget(key, FIXED_WINDOW_EXPIRY_FIELD))).toBe(expiry);
  });

  it('never moves the expiry earlier, whatever units a request counts', async () => {
    const node = await client();
    const backend = new RedisBackend(node, { prefix: freshPrefix() });
    backends.push(backend);
    const c = counter();
    const key = fixedWindowKey(backend['prefix'], c);
    await backend.consume(query([unit('hour', 5)], c));
    const hour = await node.pexpiretime(key);
    const ttl = await node.pttl(key);
    expect(ttl).toBeGreaterThan(3_590_000);
    expect(ttl).toBeLessThanOrEqual(3_600_000);
    // A rule sharing the zone with only a short unit (100 ms here, so the test waits little for
    // Redis's real clock): the hour's count must survive that unit's next window.
    await backend.consume(query([unit('second', 5, 100)], c));
    await sleep(120);
    await backend.consume(query([unit('second', 5, 100)], c));
    expect(await node.pexpiretime(key)).toBe(hour);
    expect(await backend.consume(query([unit('hour', 5)], c))).toMatchObject({
      allowed: true,
      units: [{ unit: 'hour', remaining: 3 }],
    });
  });

  it('keeps the longer TTL of a hash written before the expiry field existed', async () => {
    const node = await client();
    const backend = new RedisBackend(node, { prefix: freshPrefix() });
    backends.push(backend);
    const c = counter();
    const key = fixedWindowKey(backend['prefix'], c);
    // As the previous script version left it: an hour's window, no recorded expiry.
    const [seconds] = await node.time();
    const hourEnd = Number(seconds) * 1000 + 3_000_000;
    await node.hset(key, 'hour', `2:${hourEnd}`);
    await node.pexpireat(key, hourEnd);
    await backend.consume(query([unit('second', 5)], c));
    expect(await node.pexpiretime(key)).toBe(hourEnd); // untouched
    // Recorded from TIME + PTTL, which Redis rounds separately: the same instant to within 1 ms.
    const recorded = Number(await node.hget(key, FIXED_WINDOW_EXPIRY_FIELD));
    expect(Math.abs(recorded - hourEnd)).toBeLessThanOrEqual(1);
    expect(await node.hget(key, 'hour')).toBe(`2:${hourEnd}`);
  });

  it('records no expiry under a test clock', async () => {
    const node = await client();
    const backend = new RedisBackend(node, { prefix: freshPrefix(), testClock: () => 1.7e12 });
    backends.push(backend);
    const q = query([unit('minute', 5)]);
    await backend.consume(q);
    const key = fixedWindowKey(backend['prefix'], q.counter);
    expect(await node.hgetall(key)).toEqual({ minute: `1:${1.7e12 + 60_000}` });
    expect(await node.pttl(key)).toBe(-1);
  });
});

describe('SlidingRedisBackend script', () => {
  it('runs 8 commands per admitted decision on one unit, none for the sequence TTL', async () => {
    const node = await client();
    const observer = await client();
    const backend = new SlidingRedisBackend(node, { prefix: freshPrefix() });
    backends.push(backend);
    const q = query([unit('minute', 1_000)]);
    await backend.consume(q);
    const n = 10;
    const steady = await commandsDuring(observer, async () => {
      for (let i = 0; i < n; i++) expect((await backend.consume(q)).allowed).toBe(true);
    });
    expect(steady).toEqual({
      evalsha: n,
      time: n,
      get: n,
      zremrangebyscore: n,
      zcard: n,
      zrange: n,
      incr: n,
      zadd: n,
      pexpire: n, // the log's
    });
  });

  it('gives the sequence its TTL once; a new sequence after it expires repeats no member', async () => {
    const node = await client();
    const backend = new SlidingRedisBackend(node, { prefix: freshPrefix() });
    backends.push(backend);
    const window = unit('second', 100, 300); // a hand-built 300 ms window
    const q = query([window]);
    const sequence = slidingSequenceKey(backend['prefix'], q.counter);
    const log = slidingLogKey(backend['prefix'], q.counter, window);

    const started = performance.now();
    await backend.consume(q);
    const expiry = await node.pexpiretime(sequence);
    await sleep(150);
    await backend.consume(q);
    expect(await node.pexpiretime(sequence)).toBe(expiry); // not extended
    expect(await node.pexpiretime(log)).toBeGreaterThan(expiry); // the log is
    await sleep(Math.max(0, 360 - (performance.now() - started)));
    // The sequence expired; the entry of 150 ms is still in the log.
    const result = await backend.consume(q);
    const members = await node.zrange(log, '0', '-1');
    expect(members.map((member) => member.split('-')[1])).toEqual(['2', '1']);
    expect(new Set(members.map((member) => member.split('-')[0])).size).toBe(2);
    expect(result).toMatchObject({ allowed: true, units: [{ remaining: 98 }] });
  });
});

describe('write batching', () => {
  it('sends the calls of one loop iteration in one write on its own client, each decided once', async () => {
    const backend = new RedisBackend(
      { host: server.host, port: server.port },
      { prefix: freshPrefix() },
    );
    backends.push(backend);
    const q = query([unit('minute', 1_000)]);
    await backend.consume(q);
    const node = (await backend.getClient()) as unknown as Redis;
    const cork = jest.spyOn(node.stream, 'cork');
    const uncork = jest.spyOn(node.stream, 'uncork');
    const results = await Promise.all(Array.from({ length: 50 }, () => backend.consume(q)));
    expect(cork).toHaveBeenCalledTimes(1);
    expect(uncork).toHaveBeenCalledTimes(1);
    expect(results.map((r) => r.units[0]!.remaining).sort((a, b) => b - a)).toEqual(
      Array.from({ length: 50 }, (_, i) => 998 - i),
    );
    // The next iteration corks again.
    await new Promise((resolve) => setImmediate(resolve));
    await backend.consume(q);
    expect(cork).toHaveBeenCalledTimes(2);
    cork.mockRestore();
    uncork.mockRestore();
  });

  it.each([false, true])(
    'never corks a client passed in (enableAutoPipelining: %s): it stays the application’s',
    async (enableAutoPipelining) => {
      const node = await client({ enableAutoPipelining });
      const backend = new SlidingRedisBackend(node, { prefix: freshPrefix() });
      backends.push(backend);
      const cork = jest.spyOn(node.stream, 'cork');
      const results = await Promise.all(
        Array.from({ length: 20 }, () => backend.consume(query([unit('minute', 100)]))),
      );
      expect(results.every((result) => result.allowed)).toBe(true);
      expect(cork).not.toHaveBeenCalled();
      cork.mockRestore();
    },
  );
});
