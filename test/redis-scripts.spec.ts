/**
 * What the consume scripts cost Redis and what they leave behind, on a real server and Redis's
 * own clock (the test clock replaces it with virtual expiries): the commands each decision runs,
 * the fixed windows and blocks as keys that live exactly as long, the sliding logs' trimming
 * (under a test clock, whose time a test places exactly) and TTL, and the batching of concurrent
 * calls into one socket write. Decisions themselves are covered by test/conformance and
 * test/redis-backends.spec.ts.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Redis } from 'ioredis';
import type { UnitLimit } from '../lib/rules/rule-units.js';
import type {
  ConsumeQuery,
  ConsumeResult,
  RateLimitCounter,
} from '../lib/backends/rate-limit.backend.js';
import { blockKey, fixedWindowKey, slidingLogKey } from '../lib/backends/redis/redis-keys.js';
import { TEST_CLOCK_EXPIRY_OFFSET_MS } from '../lib/backends/redis/redis-scripts.js';
import type {
  RedisBackendClient,
  RedisBackendOptions,
} from '../lib/backends/redis/redis.backend.js';
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

/** A backend of class `Backend` on `client`, under a prefix of its own, closed after all tests. */
function backendOn<B extends { close(): Promise<void> }>(
  Backend: new (client: RedisBackendClient, options: RedisBackendOptions) => B,
  client: RedisBackendClient,
  options: Omit<RedisBackendOptions, 'prefix'> = {},
): B {
  const backend = new Backend(client, { ...options, prefix: freshPrefix() });
  backends.push(backend);
  return backend;
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
  it('runs MGET, then PTTL and INCR per running window, or SET PX per window that starts', async () => {
    const node = await client();
    const observer = await client();
    const backend = backendOn(RedisBackend, node);
    const q = query([unit('second', 1_000), unit('minute', 1_000)]);
    await backend.consume(query([unit('minute', 5)], counter('warm-up'))); // EVAL: loads the script

    // Both windows start: no key to look at, two to write.
    expect(await commandsDuring(observer, async () => void (await backend.consume(q)))).toEqual({
      evalsha: 1,
      mget: 1,
      set: 2,
    });
    const n = 10;
    const steady = await commandsDuring(observer, async () => {
      for (let i = 0; i < n; i++) expect((await backend.consume(q)).allowed).toBe(true);
    });
    // No TIME: Redis's clock is each window's expiry.
    expect(steady).toEqual({ evalsha: n, mget: n, pttl: 2 * n, incr: 2 * n });
    // One unit: the same three commands, answered before the general loop (one integer).
    const one = query([unit('minute', 1_000)], counter('bob'));
    await backend.consume(one);
    const single = await commandsDuring(observer, async () => {
      for (let i = 0; i < n; i++) {
        expect(await backend.consume(one)).toMatchObject({ units: [{ remaining: 998 - i }] });
      }
    });
    expect(single).toEqual({ evalsha: n, mget: n, pttl: n, incr: n });
  });

  it('runs MGET and PTTLs only while the user is blocked: every running window read, nothing written', async () => {
    const node = await client();
    const observer = await client();
    const backend = backendOn(RedisBackend, node);
    const q = { ...query([unit('minute', 1), unit('hour', 5)]), blockMs: 90_000 };
    const block = blockKey(backend['prefix'], q.counter.user);
    await backend.consume(q);
    expect(await backend.consume(q)).toMatchObject({ allowed: false, blocked: true });
    const blockEnd = await node.pexpiretime(block);

    let during: Awaited<ReturnType<RedisBackend['consume']>> | undefined;
    // The block and both running windows: one PTTL each.
    expect(
      await commandsDuring(observer, async () => void (during = await backend.consume(q))),
    ).toEqual({ evalsha: 1, mget: 1, pttl: 3 });
    expect(during).toMatchObject({
      blocked: true,
      unit: 'minute',
      units: [{ remaining: 0 }, { remaining: 4 }],
    });
    // A counter of the same user with no running window: the block's PTTL only.
    const fresh = { ...q, counter: { ...q.counter, scope: 'zone:fresh' } };
    expect(await commandsDuring(observer, async () => void (await backend.consume(fresh)))).toEqual(
      { evalsha: 1, mget: 1, pttl: 1 },
    );
    // Nothing was counted, and the block neither moved nor restarted.
    for (const limit of q.limits) {
      expect(await node.get(fixedWindowKey(backend['prefix'], q.counter, limit))).toBe('1');
    }
    expect(await node.exists(fixedWindowKey(backend['prefix'], fresh.counter, q.limits[0]!))).toBe(
      0,
    );
    expect(await node.pexpiretime(block)).toBe(blockEnd);
  });

  it("keeps each window in a key that lives exactly as long, on Redis's clock", async () => {
    const node = await client();
    const backend = backendOn(RedisBackend, node);
    const short = unit('second', 2, 500); // a hand-built 500 ms window, so the test waits little
    const q = query([short, unit('minute', 10)]);
    const key = fixedWindowKey(backend['prefix'], q.counter, short);
    const minuteKey = fixedWindowKey(backend['prefix'], q.counter, q.limits[1]!);

    const first = await backend.consume(q);
    const left = await node.pttl(key);
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(500);
    expect(first.units[0]!.resetMs).toBeGreaterThanOrEqual(left);
    expect(first.units[0]!.resetMs).toBeLessThanOrEqual(500);
    expect(await node.get(key)).toBe('1');
    expect(await node.pttl(minuteKey)).toBeGreaterThan(59_000);

    await backend.consume(q);
    const rejected = await backend.consume(q);
    expect(rejected).toMatchObject({ allowed: false, unit: 'second' });
    expect(rejected.retryAfterMs).toBeGreaterThan(0);
    expect(rejected.retryAfterMs).toBeLessThanOrEqual(left);
    expect(await node.get(key)).toBe('2'); // the rejection counted nothing
    expect(await node.get(minuteKey)).toBe('2');

    await sleep(550); // the window ends: Redis removes its key, and the next request starts one
    expect(await node.exists(key)).toBe(0);
    expect(await backend.consume(q)).toMatchObject({
      allowed: true,
      units: [{ remaining: 1 }, { remaining: 7 }],
    });
    expect(await node.get(key)).toBe('1');

    // reset() finds both running windows by their time left, and removes them.
    expect(await backend.reset(q.counter)).toBe(true);
    expect(await node.exists(key, minuteKey)).toBe(0);
    expect(await backend.reset(q.counter)).toBe(false);
  });

  it('starts a block as a key that lives as long as the block, which unblock() removes', async () => {
    const node = await client();
    const backend = backendOn(RedisBackend, node);
    const q = { ...query([unit('minute', 1)]), blockMs: 90_000 };
    const block = blockKey(backend['prefix'], q.counter.user);
    await backend.consume(q);
    expect(await backend.consume(q)).toMatchObject({ allowed: false, blocked: true });
    const left = await node.pttl(block);
    expect(left).toBeGreaterThan(89_000);
    expect(left).toBeLessThanOrEqual(90_000);
    const during = await backend.consume(q);
    expect(during).toMatchObject({
      allowed: false,
      blocked: true,
      unit: 'minute', // still exhausted, but the block is the longer wait
      units: [{ unit: 'minute', remaining: 0 }],
    });
    expect(during.retryAfterMs).toBeLessThanOrEqual(left);
    expect(during.retryAfterMs).toBeGreaterThan(89_000);
    expect(await backend.unblock(q.counter.user)).toBe(true);
    expect(await node.exists(block)).toBe(0);
    expect(await backend.unblock(q.counter.user)).toBe(false);
  });

  it('under a test clock, gives windows and blocks their end in virtual time, far past any real one', async () => {
    const node = await client();
    let now = 1.7e12;
    const backend = backendOn(RedisBackend, node, { testClock: () => now });
    const q = { ...query([unit('minute', 1)]), blockMs: 5_000 };
    const key = fixedWindowKey(backend['prefix'], q.counter, q.limits[0]!);
    const block = blockKey(backend['prefix'], q.counter.user);
    await backend.consume(q);
    expect(await node.get(key)).toBe('1');
    expect(await node.pexpiretime(key)).toBe(1.7e12 + 60_000 + TEST_CLOCK_EXPIRY_OFFSET_MS);
    now += 10;
    expect(await backend.consume(q)).toMatchObject({ allowed: false, blocked: true });
    expect(await node.pexpiretime(block)).toBe(1.7e12 + 10 + 5_000 + TEST_CLOCK_EXPIRY_OFFSET_MS);
    // The window ends in virtual time, whatever the real clock did meanwhile.
    now = 1.7e12 + 60_000;
    expect(await backend.consume({ ...q, blockMs: 0 })).toMatchObject({
      allowed: true,
      units: [{ remaining: 0, resetMs: 60_000 }],
    });
  });
});

describe('SlidingRedisBackend script', () => {
  it('runs 5 commands per admitted one-unit decision while nothing leaves the window, no PEXPIRE', async () => {
    const node = await client();
    const observer = await client();
    const backend = backendOn(SlidingRedisBackend, node);
    const q = query([unit('minute', 1_000)]);
    await backend.consume(query([unit('minute', 5)], counter('warm-up'))); // EVAL: loads the script

    // A new log: its head is missing, so the loop appends and sets the expiry.
    expect(await commandsDuring(observer, async () => void (await backend.consume(q)))).toEqual({
      evalsha: 1,
      time: 1,
      pttl: 1, // the block
      lindex: 1, // the head: none
      rpush: 1,
      pexpire: 1, // two windows: the entry is the log's oldest
    });
    const n = 10;
    const steady = await commandsDuring(observer, async () => {
      for (let i = 0; i < n; i++) {
        expect(await backend.consume(q)).toMatchObject({ units: [{ remaining: 998 - i }] });
      }
    });
    // The head is inside the window: the length is the count, and the expiry stays.
    expect(steady).toEqual({ evalsha: n, time: n, pttl: n, lindex: n, llen: n, rpush: n });
  });

  it('rejects at a full one-unit log with 4 commands, writing nothing', async () => {
    const node = await client();
    const observer = await client();
    const backend = backendOn(SlidingRedisBackend, node);
    const minute = unit('minute', 3);
    const q = query([minute]);
    for (let i = 0; i < 3; i++) expect((await backend.consume(q)).allowed).toBe(true);
    const log = slidingLogKey(backend['prefix'], q.counter, minute);
    const before = await node.lrange(log, 0, -1);
    const expiry = await node.pexpiretime(log);

    let result: Awaited<ReturnType<SlidingRedisBackend['consume']>> | undefined;
    const commands = await commandsDuring(observer, async () => {
      result = await backend.consume(q);
    });
    expect(commands).toEqual({ evalsha: 1, time: 1, pttl: 1, lindex: 1, llen: 1 });
    expect(result).toMatchObject({ allowed: false, units: [{ remaining: 0 }] });
    // The wait is until the oldest entry leaves: at most a minute, more than 59 s this soon.
    expect(result!.retryAfterMs).toBeLessThanOrEqual(60_000);
    expect(result!.retryAfterMs).toBeGreaterThan(59_000);
    expect(await node.lrange(log, 0, -1)).toEqual(before);
    expect(await node.pexpiretime(log)).toBe(expiry);
  });

  it('reads the logs as a rejection does while the user is blocked, writing nothing', async () => {
    const node = await client();
    const observer = await client();
    const backend = backendOn(SlidingRedisBackend, node);
    const minute = unit('minute', 1);
    const q = { ...query([minute]), blockMs: 90_000 };
    const block = blockKey(backend['prefix'], q.counter.user);
    const log = slidingLogKey(backend['prefix'], q.counter, minute);
    await backend.consume(q);
    expect(await backend.consume(q)).toMatchObject({ allowed: false, blocked: true });
    const before = await node.lrange(log, 0, -1);
    const blockEnd = await node.pexpiretime(block);

    let during: Awaited<ReturnType<SlidingRedisBackend['consume']>> | undefined;
    expect(
      await commandsDuring(observer, async () => void (during = await backend.consume(q))),
    ).toEqual({ evalsha: 1, time: 1, pttl: 1, lindex: 1, llen: 1 });
    expect(during).toMatchObject({ blocked: true, unit: 'minute', units: [{ remaining: 0 }] });
    // A counter of the same user with an empty log: its head only.
    const fresh = { ...q, counter: { ...q.counter, scope: 'zone:fresh' } };
    expect(await commandsDuring(observer, async () => void (await backend.consume(fresh)))).toEqual(
      { evalsha: 1, time: 1, pttl: 1, lindex: 1 },
    );
    expect(await node.lrange(log, 0, -1)).toEqual(before);
    expect(await node.exists(slidingLogKey(backend['prefix'], fresh.counter, minute))).toBe(0);
    expect(await node.pexpiretime(block)).toBe(blockEnd);
  });

  it('reads each log with LLEN under several units, and appends only once all have room', async () => {
    const node = await client();
    const observer = await client();
    const backend = backendOn(SlidingRedisBackend, node);
    const second = unit('second', 1_000);
    const minute = unit('minute', 2);
    const q = query([second, minute]);
    await backend.consume(q);
    expect(
      await commandsDuring(observer, async () => {
        expect((await backend.consume(q)).allowed).toBe(true);
      }),
    ).toEqual({ evalsha: 1, time: 1, pttl: 1, lindex: 2, llen: 2, rpush: 2 });
    // The minute is full: nothing is appended to either log.
    expect(
      await commandsDuring(observer, async () => {
        expect((await backend.consume(q)).allowed).toBe(false);
      }),
    ).toEqual({ evalsha: 1, time: 1, pttl: 1, lindex: 2, llen: 2 });
    expect(await node.llen(slidingLogKey(backend['prefix'], q.counter, second))).toBe(2);
  });

  describe('under a test clock', () => {
    let node: Redis;
    let observer: Redis;
    let now = 0;
    let backend: SlidingRedisBackend;

    beforeAll(async () => {
      node = await client();
      observer = await client();
    });

    beforeEach(() => {
      backend = backendOn(SlidingRedisBackend, node, { testClock: () => 1.7e12 + now });
    });

    /** Admits one request of `q` at each of `times` (ms after the start), in order. */
    async function admitAt(q: ConsumeQuery, times: readonly number[]): Promise<void> {
      now = times[0]!;
      expect((await backend.consume(q)).allowed).toBe(true);
      // Sent without waiting: each reads the clock as it is sent, and runs in that order.
      const rest = await Promise.all(
        times.slice(1).map((t) => {
          now = t;
          return backend.consume(q);
        }),
      );
      expect(rest.filter((result) => !result.allowed)).toEqual([]);
    }

    /** The commands of one decision of `q` at `t`, its result, and the log's length after it. */
    async function decideAt(t: number, q: ConsumeQuery, window = q.limits[0]!) {
      now = t;
      let allowed: boolean | undefined;
      const commands = await commandsDuring(observer, async () => {
        allowed = (await backend.consume(q)).allowed;
      });
      const log = slidingLogKey(backend['prefix'], q.counter, window);
      return { allowed, commands, length: await node.llen(log) };
    }

    // 3,000 entries 2 ms apart in a 10 s window; the first `left` are out at the next request, so
    // the first entry in is at index `left`. The chunks after the head: indexes 1-32, 33-96, ...,
    // 993-2016 (1,024 entries), then 2017-3040.
    it.each([
      // In the first chunk, which did not reach the end of the list: LLEN counts.
      { left: 1, reads: 1, llen: 1 },
      // In the 6th chunk, full: LLEN counts.
      { left: 1_500, reads: 6, llen: 1 },
      // Opening the 7th chunk, which reached the end of the list: it gives the count.
      { left: 2_017, reads: 7, llen: 0 },
    ])(
      'trims a backlog in chunks of 32 up to 1,024: $left out, $reads LRANGEs',
      async ({ left, reads, llen }) => {
        const windowMs = 10_000;
        const q = query([{ unit: 'minute', limit: 5_000, windowMs }]);
        await admitAt(
          q,
          Array.from({ length: 3_000 }, (_, k) => 2 * k),
        );
        const counted = llen > 0 ? { llen } : {};
        expect(await decideAt(windowMs + 2 * left - 1, q)).toEqual({
          allowed: true,
          commands: {
            evalsha: 1,
            pexpiretime: 1,
            lindex: 1,
            lrange: reads,
            ltrim: 1,
            pexpireat: 1, // the new head's expiry, in virtual time
            ...counted,
            rpush: 1,
          },
          length: 3_000 - left + 1,
        });
      },
    );

    it('deletes a log whose every entry left, then starts it again', async () => {
      const q = query([{ unit: 'minute', limit: 5_000, windowMs: 10_000 }]);
      await admitAt(
        q,
        Array.from({ length: 3_000 }, (_, k) => 2 * k),
      );
      expect(await decideAt(20_000, q)).toEqual({
        allowed: true,
        // 2,999 entries after the head: chunks 32, 64, ..., 1024, the 7th one short.
        // The log starts again, with its expiry in virtual time.
        commands: {
          evalsha: 1,
          pexpiretime: 1,
          lindex: 1,
          lrange: 7,
          del: 1,
          rpush: 1,
          pexpireat: 1,
        },
        length: 1,
      });
    });

    it('counts a short log from the one chunk it reads', async () => {
      const q = query([unit('second', 20)]);
      await admitAt(q, [0, 100, 200, 300, 400, 500]);
      expect(await decideAt(1_250, q)).toEqual({
        allowed: true,
        commands: {
          evalsha: 1,
          pexpiretime: 1,
          lindex: 1,
          lrange: 1,
          ltrim: 1,
          pexpireat: 1,
          rpush: 1,
        },
        length: 4, // 300, 400, 500 ms and this one
      });
    });

    it('reads the entry at count - limit only for a log above its limit', async () => {
      const minute = unit('minute', 5);
      await admitAt(query([minute]), [0, 1, 2, 3]);
      // Full at its limit: the wait comes from the oldest entry, the head, read already.
      expect(await decideAt(10, query([unit('minute', 4)]), minute)).toEqual({
        allowed: false,
        commands: { evalsha: 1, pexpiretime: 1, lindex: 1, llen: 1 },
        length: 4,
      });
      // Above it: one more LINDEX.
      expect(await decideAt(10, query([unit('minute', 2)]), minute)).toEqual({
        allowed: false,
        commands: { evalsha: 1, pexpiretime: 1, lindex: 2, llen: 1 },
        length: 4,
      });
    });

    it('reads nothing for a limit of 0', async () => {
      const second = unit('second', 5);
      await admitAt(query([second]), [0, 1]);
      const q = query([second, unit('hour', 0)]);
      expect(await decideAt(2, q)).toEqual({
        allowed: false,
        commands: { evalsha: 1, pexpiretime: 1, lindex: 1, llen: 1 }, // the second's log only
        length: 2,
      });
      expect(await decideAt(3, query([unit('hour', 0)]), second)).toEqual({
        allowed: false,
        commands: { evalsha: 1, pexpiretime: 1 },
        length: 2,
      });
    });
  });

  /** Redis's clock now, in whole ms. */
  async function redisNow(node: Redis): Promise<number> {
    const [seconds, micros] = await node.time();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }

  // PEXPIRE counts from the script's start and the entry is TIME's millisecond, read a moment
  // later: an expiry of two windows after an entry is that, give or take a few milliseconds of a
  // busy machine.
  const CLOCK_SLACK_MS = 5;

  it('expires a log two windows after its oldest entry, moved only when that entry changes', async () => {
    const node = await client();
    const backend = backendOn(SlidingRedisBackend, node);
    const window = unit('second', 100, 300); // a hand-built 300 ms window
    const q = query([window]);
    const log = slidingLogKey(backend['prefix'], q.counter, window);
    const entries = async (): Promise<number[]> => (await node.lrange(log, 0, -1)).map(Number);

    await backend.consume(q);
    const [first] = await entries();
    const expiry = await node.pexpiretime(log);
    expect(Math.abs(expiry - (first! + 600))).toBeLessThanOrEqual(CLOCK_SLACK_MS);
    await sleep(150);
    await backend.consume(q); // the head is inside the window: appended, expiry unchanged
    expect(await node.pexpiretime(log)).toBe(expiry);
    expect(await node.keys(`${backend['prefix']}*`)).toEqual([log]);
    const [, second] = await entries();
    expect(second! - first!).toBeGreaterThanOrEqual(150);

    // Once the first entry left, the next request drops it, and the log now expires two windows
    // after the second: one window after the newest entry at least, two at most.
    await sleep(Math.max(0, first! + 300 - (await redisNow(node))) + 20);
    await backend.consume(q);
    const after = await entries();
    expect(after).toHaveLength(2);
    const [oldest, newest] = after;
    expect(oldest).toBe(second);
    const moved = await node.pexpiretime(log);
    expect(Math.abs(moved - (second! + 600))).toBeLessThanOrEqual(CLOCK_SLACK_MS);
    expect(moved).toBeGreaterThan(newest! + 300);
    await sleep(Math.max(0, moved - (await redisNow(node))) + 20);
    expect(await node.exists(log)).toBe(0);
  });

  it('moves the expiry when a rejected request drops the head, too', async () => {
    const node = await client();
    const backend = backendOn(SlidingRedisBackend, node);
    const window = unit('second', 3, 300);
    const log = slidingLogKey(backend['prefix'], counter(), window);
    await backend.consume(query([window]));
    await sleep(100);
    await backend.consume(query([window]));
    await backend.consume(query([window]));
    const [first, second] = (await node.lrange(log, 0, -1)).map(Number);
    await sleep(Math.max(0, first! + 300 - (await redisNow(node))) + 20);

    // The limit lowered to 1: two entries are still in, so the request is rejected after the trim.
    expect((await backend.consume(query([{ ...window, limit: 1 }]))).allowed).toBe(false);
    expect((await node.lrange(log, 0, -1)).map(Number)[0]).toBe(second);
    const moved = await node.pexpiretime(log);
    expect(Math.abs(moved - (second! + 600))).toBeLessThanOrEqual(CLOCK_SLACK_MS);
  });
});

describe('script calls', () => {
  type AnyBackend = RedisBackend | SlidingRedisBackend;
  it.each<[string, new (client: RedisBackendClient, options: RedisBackendOptions) => AnyBackend]>([
    ['RedisBackend', RedisBackend],
    ['SlidingRedisBackend', SlidingRedisBackend],
  ])(
    '%s sends EVALSHA, EVAL only after NOSCRIPT, and gets one integer for an admitted one-unit decision',
    async (_name, Backend) => {
      const node = await client();
      const backend = backendOn(Backend, node);
      const call = jest.spyOn(node as unknown as { call(...args: unknown[]): unknown }, 'call');
      const commands = (): unknown[] => call.mock.calls.map((args) => args[0]);
      const replies = (): Promise<unknown[]> =>
        Promise.all(call.mock.results.map((result) => result.value));
      const one = query([unit('minute', 10)]);

      await node.script('FLUSH'); // Redis forgets every script, as after a restart
      expect(await backend.consume(one)).toMatchObject({
        allowed: true,
        units: [{ remaining: 9 }],
      });
      expect(commands()).toEqual(['evalsha', 'eval']);

      call.mockClear();
      expect(await backend.consume(one)).toMatchObject({ units: [{ remaining: 8 }] });
      await backend.consume(query([unit('second', 10), unit('minute', 10)], counter('bob')));
      expect(commands()).toEqual(['evalsha', 'evalsha']);
      const [packed, table] = await replies();
      expect(typeof packed).toBe('number');
      expect(Array.isArray(table)).toBe(true);
      call.mockRestore();
    },
  );
});

describe('batching', () => {
  it('sends the decisions of one loop iteration as one script call, each decided once, in order', async () => {
    const observer = await client();
    const backend = backendOn(RedisBackend, { host: server.host, port: server.port });
    const q = query([unit('minute', 30)]);
    // Loads both scripts: the lone one, and the batch one (two decisions in one iteration).
    await backend.consume(query([unit('minute', 5)], counter('warm-up')));
    await Promise.all([
      backend.consume(q),
      backend.consume(query([unit('minute', 5)], counter('b'))),
    ]);
    let results: ConsumeResult[] = [];
    const made = await commandsDuring(observer, async () => {
      results = await Promise.all(Array.from({ length: 50 }, () => backend.consume(q)));
    });
    // One call ran the 50 decisions: one EVALSHA, one MGET per decision.
    expect(made).toMatchObject({ evalsha: 1, mget: 50 });
    // 29 left before the batch: the first 29 of the 50 are admitted, in the order they were made.
    expect(results.map((r) => r.allowed)).toEqual(Array.from({ length: 50 }, (_, i) => i < 29));
    expect(results.slice(0, 29).map((r) => r.units[0]!.remaining)).toEqual(
      Array.from({ length: 29 }, (_, i) => 28 - i),
    );
  });

  it('fails only the decision whose key is broken, not the others of its batch', async () => {
    const node = await client();
    const backend = backendOn(SlidingRedisBackend, node);
    const minute = [unit('minute', 10)];
    await backend.consume(query(minute, counter('warm-up')));
    // A string where mallory's log (a list) should be: her script fails with WRONGTYPE.
    await node.set(slidingLogKey(backend['prefix'], counter('mallory'), minute[0]!), 'x');
    const settled = await Promise.allSettled(
      ['alice', 'mallory', 'bob'].map((user) => backend.consume(query(minute, counter(user)))),
    );
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(String((settled[1] as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/);
  });

  it.each([false, true])(
    'uses a client passed in as given (enableAutoPipelining: %s): it stays the application’s',
    async (enableAutoPipelining) => {
      const node = await client({ enableAutoPipelining });
      const backend = backendOn(SlidingRedisBackend, node);
      await backend.consume(query([unit('minute', 100)], counter('warm-up')));
      const results = await Promise.all(
        Array.from({ length: 20 }, () => backend.consume(query([unit('minute', 100)]))),
      );
      expect(node.options.enableAutoPipelining).toBe(enableAutoPipelining);
      expect(results.map((r) => r.units[0]!.remaining)).toEqual(
        Array.from({ length: 20 }, (_, i) => 99 - i),
      );
    },
  );
});
