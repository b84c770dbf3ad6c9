/**
 * RedisBackend (fixed window) and SlidingRedisBackend (exact sliding log) against real Redis
 * servers started by the harness: one single node and one 3-master cluster. No mocks.
 *
 * Time: every backend but one gets a `testClock` driven by a {@link TestClock}, so its scripts
 * decide at exactly the instant a test names (instead of Redis's `TIME`) and every wait is
 * asserted exactly. The test "without a test clock" shows that production time comes from Redis:
 * the application's clocks are faked far off, and one backend sees a window another one started.
 */
import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';
import { RateLimitConfigError } from '../lib/rate-limit-config.error.js';
import { counterKey } from '../lib/backends/counter-key.js';
import { MemoryBackend } from '../lib/backends/memory.backend.js';
import type {
  ConsumeQuery,
  ConsumeResult,
  RateLimitCounter,
  UnitState,
} from '../lib/backends/rate-limit.backend.js';
import { parseConsumeReply, parseFlagReply } from '../lib/backends/redis/redis-replies.js';
import { blockKey, fixedWindowKey, slidingLogKey } from '../lib/backends/redis/redis-keys.js';
import { TEST_CLOCK_EXPIRY_OFFSET_MS } from '../lib/backends/redis/redis-scripts.js';
import { RedisBackend } from '../lib/backends/redis/redis.backend.js';
import { SlidingRedisBackend } from '../lib/backends/redis/sliding-redis.backend.js';
import type { RateLimitUnitName, UnitLimit } from '../lib/rules/rule-units.js';
import { commandCalls } from './support/command-stats.js';
import { keySlot } from './support/redis-harness.js';
import { START_MS, useRedisTopologies, type RedisClient } from './support/redis-topologies.js';
import { counter, HOUR, MINUTE, query, SECOND, unit } from './support/units.js';

type Kind = 'fixed' | 'sliding';
type AnyBackend = RedisBackend | SlidingRedisBackend;

function state(limit: UnitLimit, remaining: number, resetMs: number): UnitState {
  return { ...limit, remaining, resetMs };
}

/** The expected result of an admitted request. */
function admitted(...units: UnitState[]): ConsumeResult {
  return { allowed: true, retryAfterMs: 0, blocked: false, unit: undefined, units };
}

/** The expected result of a request a unit rejected (and maybe blocked the user for). */
function rejected(
  retryAfterMs: number,
  by: RateLimitUnitName,
  units: UnitState[],
  blocked = false,
): ConsumeResult {
  return { allowed: false, retryAfterMs, blocked, unit: by, units };
}

/**
 * The expected result of a request made while an earlier request's block runs: nothing counted,
 * the units as they stand, the longer of the block's remainder and the exhausted `by`'s wait.
 */
function blockedEarlier(
  retryAfterMs: number,
  units: UnitState[],
  by?: RateLimitUnitName,
): ConsumeResult {
  return { allowed: false, retryAfterMs, blocked: true, unit: by, units };
}

// ---------------------------------------------------------------------------------------------
// Servers, clients and the test clock
// ---------------------------------------------------------------------------------------------

const redis = useRedisTopologies('rltest');
const { ready, singleClient, freshPrefix } = redis;

/**
 * The time a backend's scripts decide at: `at(t)` puts the next calls at `t` ms (fractions
 * allowed) after {@link START_MS}. Only `at` moves it.
 */
class TestClock {
  private now = START_MS;

  /** The next calls run at `ms` after the start. */
  at(ms: number): void {
    this.now = START_MS + ms;
  }

  /** The `testClock` hook. */
  readonly read = (): number => this.now;
}

/** A log entry (ms since the Unix epoch) as ms after {@link START_MS}. */
function sinceStart(entry: string): number {
  return Number(entry) - START_MS;
}

function make(
  kind: Kind,
  client: RedisClient,
  clock: TestClock,
  prefix = freshPrefix(),
): AnyBackend {
  const options = { prefix, testClock: clock.read };
  const backend =
    kind === 'fixed' ? new RedisBackend(client, options) : new SlidingRedisBackend(client, options);
  redis.closeAfterAll(backend);
  return backend;
}

/** Every key under `prefix` on every node of the topology. */
async function keysUnder(nodes: readonly Redis[], prefix: string): Promise<string[]> {
  const all = await Promise.all(nodes.map((node) => node.keys(`${prefix}*`)));
  return all.flat().sort();
}

/** A deterministic pseudo-random sequence (a linear congruential generator). */
function seeded(seed: number): (n: number) => number {
  return (n) => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed % n;
  };
}

/**
 * The sliding-window contract written plainly, on whole milliseconds like MemoryBackend: a log of
 * admission times per (counter, unit); a request at `now` sees the entries in `(now - window,
 * now]`; a full unit waits until the entry at `count - limit` leaves. Blocks as in MemoryBackend:
 * a request made while blocked counts nothing, and waits the longer of the block and its units.
 */
class SlidingReference {
  private readonly logs = new Map<string, Map<string, number[]>>();
  private readonly blocks = new Map<string, number>();

  constructor(private readonly clock: () => number) {}

  consume(q: ConsumeQuery): ConsumeResult {
    const now = Math.floor(this.clock());
    const until = this.blocks.get(q.counter.user);
    const blockLeft = until !== undefined && now < until ? until - now : 0;
    const counterLogs = this.logs.get(counterKey(q.counter)) ?? new Map<string, number[]>();
    this.logs.set(counterKey(q.counter), counterLogs);
    const logs = q.limits.map((limit) => {
      const name = `${limit.unit}/${limit.windowMs}`;
      const log = (counterLogs.get(name) ?? []).filter((t) => t > now - limit.windowMs);
      counterLogs.set(name, log);
      return log;
    });
    const leavesIn = (log: number[], index: number, limit: UnitLimit): number =>
      log[index]! + limit.windowMs - now;
    let worst: UnitLimit | undefined;
    let wait = 0;
    q.limits.forEach((limit, i) => {
      const log = logs[i]!;
      let unitWait = 0;
      if (limit.limit === 0) unitWait = limit.windowMs;
      else if (log.length >= limit.limit) unitWait = leavesIn(log, log.length - limit.limit, limit);
      if (unitWait > 0 && (worst === undefined || unitWait > wait)) {
        worst = limit;
        wait = unitWait;
      }
    });
    const states = (): UnitState[] =>
      q.limits.map((limit, i) => {
        const log = logs[i]!;
        const resetMs =
          limit.limit === 0 || log.length === 0
            ? limit.windowMs
            : leavesIn(log, log.length >= limit.limit ? log.length - limit.limit : 0, limit);
        return state(limit, Math.max(0, limit.limit - log.length), resetMs);
      });
    if (blockLeft > 0) {
      return blockedEarlier(Math.max(blockLeft, wait), states(), worst?.unit);
    }
    if (worst !== undefined) {
      const blocked = q.blockMs > 0;
      if (blocked) {
        this.blocks.set(q.counter.user, now + q.blockMs);
        wait = Math.max(wait, q.blockMs);
      }
      return rejected(wait, worst.unit, states(), blocked);
    }
    for (const log of logs) log.push(now);
    return admitted(...states());
  }

  unblock(user: string): boolean {
    const until = this.blocks.get(user);
    this.blocks.delete(user);
    return until !== undefined && Math.floor(this.clock()) < until;
  }

  reset(c: RateLimitCounter): boolean {
    const now = Math.floor(this.clock());
    const counterLogs = this.logs.get(counterKey(c));
    this.logs.delete(counterKey(c));
    let live = false;
    for (const [name, log] of counterLogs ?? []) {
      const windowMs = Number(name.split('/')[1]);
      if (log.some((t) => t > now - windowMs)) live = true;
    }
    return live;
  }
}

// ---------------------------------------------------------------------------------------------
// Behaviour shared by both backends, on both topologies
// ---------------------------------------------------------------------------------------------

describe.each(redis.topologies)('on a $name', (topology) => {
  let client: RedisClient;
  let nodes: Redis[];

  beforeAll(async () => {
    client = await topology.client();
    nodes = await topology.nodes();
  });

  describe.each(['fixed', 'sliding'] as const)('%s window', (kind) => {
    let clock: TestClock;
    let backend: AnyBackend;
    let prefix: string;

    beforeEach(() => {
      clock = new TestClock();
      prefix = freshPrefix();
      backend = make(kind, client, clock, prefix);
    });

    /** A request decided at `t` ms. */
    const consumeAt = (t: number, q: ConsumeQuery): Promise<ConsumeResult> => {
      clock.at(t);
      return backend.consume(q);
    };
    const unblockAt = (t: number, user: string): Promise<boolean> => {
      clock.at(t);
      return backend.unblock(user);
    };
    const resetAt = (t: number, c: RateLimitCounter): Promise<boolean> => {
      clock.at(t);
      return backend.reset(c);
    };

    it('test_multiple (second=1, minute=3): rejected requests consume nothing', async () => {
      const [second, minute] = [unit('second', 1), unit('minute', 3)];
      const q = query([second, minute]);
      expect(await consumeAt(0, q)).toEqual(
        admitted(state(second, 0, SECOND), state(minute, 2, MINUTE)),
      );
      expect(await consumeAt(0, q)).toEqual(
        rejected(SECOND, 'second', [state(second, 0, SECOND), state(minute, 2, MINUTE)]),
      );
      expect(await consumeAt(1_000, q)).toEqual(
        admitted(
          state(second, 0, SECOND),
          state(minute, 1, 59_000), // fixed: the window of 0 ends; sliding: the entry of 0 leaves
        ),
      );
      expect(await consumeAt(1_000, q)).toMatchObject({ allowed: false, unit: 'second' });
      // The original's sliding test expected 429 here (it logged rejected requests); not any more.
      expect(await consumeAt(3_000, q)).toEqual(
        admitted(state(second, 0, SECOND), state(minute, 0, 57_000)),
      );
      expect(await consumeAt(4_000, q)).toEqual(
        rejected(56_000, 'minute', [state(second, 1, SECOND), state(minute, 0, 56_000)]),
      );
    });

    it('gives no free request at the end of a window', async () => {
      const perSecond = query([unit('second', 1)]);
      expect((await consumeAt(0, perSecond)).allowed).toBe(true);
      expect(await consumeAt(999, perSecond)).toEqual(
        rejected(1, 'second', [state(unit('second', 1), 0, 1)]),
      );
      expect((await consumeAt(1_000, perSecond)).allowed).toBe(true);

      const perMinute = query([unit('minute', 1)], counter('bob'));
      expect((await consumeAt(10_000, perMinute)).allowed).toBe(true);
      expect(await consumeAt(10_000 + MINUTE - 1, perMinute)).toMatchObject({
        allowed: false,
        retryAfterMs: 1,
      });
      expect((await consumeAt(10_000 + MINUTE, perMinute)).allowed).toBe(true);
    });

    it('decides on whole milliseconds: the fraction of a test-clock reading never matters', async () => {
      const second = unit('second', 1);
      const q = query([second]);
      expect(await consumeAt(0.999, q)).toEqual(admitted(state(second, 0, SECOND)));
      // Still millisecond 999 (of the window of millisecond 0): 1 ms left, not 0.001 or 2.
      expect(await consumeAt(999.999, q)).toEqual(rejected(1, 'second', [state(second, 0, 1)]));
      // Millisecond 1000: the window (or log entry) of millisecond 0 is over, though only
      // 999.001 ms passed since the request.
      expect(await consumeAt(1_000, q)).toEqual(admitted(state(second, 0, SECOND)));
      expect(await consumeAt(1_500.1, q)).toEqual(rejected(500, 'second', [state(second, 0, 500)]));
      expect(await consumeAt(1_500.9, q)).toEqual(rejected(500, 'second', [state(second, 0, 500)]));
    });

    it('counts retryAfterMs down as time passes', async () => {
      const q = query([unit('minute', 1)]);
      await consumeAt(0, q);
      expect((await consumeAt(0, q)).retryAfterMs).toBe(MINUTE);
      expect((await consumeAt(2_000, q)).retryAfterMs).toBe(58_000);
      expect((await consumeAt(59_999, q)).retryAfterMs).toBe(1);
      expect((await consumeAt(60_000, q)).allowed).toBe(true);
    });

    it('reports the longest wait among the exhausted units', async () => {
      const both = query([unit('second', 1), unit('minute', 1)]);
      await consumeAt(0, both);
      expect(await consumeAt(500, both)).toEqual(
        rejected(59_500, 'minute', [
          state(unit('second', 1), 0, 500),
          state(unit('minute', 1), 0, 59_500),
        ]),
      );

      const onlySecond = query([unit('second', 1), unit('minute', 5)], counter('bob'));
      await consumeAt(1_000, onlySecond);
      expect(await consumeAt(1_200, onlySecond)).toEqual(
        rejected(800, 'second', [
          state(unit('second', 1), 0, 800),
          state(unit('minute', 5), 4, 59_800),
        ]),
      );
    });

    it('always rejects a limit of 0, with the unit window as the wait, writing nothing', async () => {
      const q = query([unit('second', 5), unit('hour', 0)]);
      for (const t of [0, 10 * SECOND, 5 * HOUR]) {
        expect(await consumeAt(t, q)).toEqual(
          rejected(HOUR, 'hour', [
            state(unit('second', 5), 5, SECOND),
            state(unit('hour', 0), 0, HOUR),
          ]),
        );
      }
      expect(await keysUnder(nodes, prefix)).toEqual([]);
    });

    it('reports remaining and resetMs for every unit, in query order', async () => {
      const [second, minute] = [unit('second', 2), unit('minute', 10)];
      const q = query([second, minute]);
      expect(await consumeAt(0, q)).toEqual(
        admitted(state(second, 1, SECOND), state(minute, 9, MINUTE)),
      );
      expect(await consumeAt(400, q)).toEqual(
        admitted(state(second, 0, 600), state(minute, 8, 59_600)),
      );
      expect(await consumeAt(500, q)).toEqual(
        rejected(500, 'second', [state(second, 0, 500), state(minute, 8, 59_500)]),
      );
    });

    it('reports one unit alike whether its reply fits in one integer or not', async () => {
      // An admitted request under one unit comes back packed into one integer when that is exact:
      // 10 a minute fits, 4,000,000,000 a month (a product above 2^53) takes the table reply.
      for (const limit of [unit('minute', 10), unit('month', 4_000_000_000)]) {
        const q = query([limit], counter(`user-${limit.unit}`));
        expect(await consumeAt(1_000, q)).toEqual(
          admitted(state(limit, limit.limit - 1, limit.windowMs)),
        );
        expect(await consumeAt(1_250, q)).toEqual(
          admitted(state(limit, limit.limit - 2, limit.windowMs - 250)),
        );
      }
    });

    describe('blocks', () => {
      const second = unit('second', 1);

      it('start with retryAfterMs = blockMs and cover every counter of the user only', async () => {
        const q = query([second], counter(), 5 * SECOND);
        await consumeAt(0, q);
        expect(await consumeAt(0, q)).toEqual(
          rejected(5 * SECOND, 'second', [state(second, 0, SECOND)], true),
        );
        const elsewhere = query([unit('hour', 1000)], counter('alice', 'zone:other', 'GET'));
        expect(await consumeAt(100, elsewhere)).toEqual(
          blockedEarlier(4_900, [state(unit('hour', 1000), 1000, HOUR)]),
        );
        expect((await consumeAt(100, query([second], counter('bob'), 5 * SECOND))).allowed).toBe(
          true,
        );
      });

      it('are not extended by requests made while blocked, and end exactly', async () => {
        const q = query([second], counter(), 5 * SECOND);
        await consumeAt(0, q);
        await consumeAt(0, q);
        expect(await consumeAt(3_000, q)).toEqual(
          blockedEarlier(2 * SECOND, [state(second, 1, SECOND)]),
        );
        expect(await consumeAt(4_999, q)).toEqual(blockedEarlier(1, [state(second, 1, SECOND)]));
        expect(await consumeAt(5_000, q)).toEqual(admitted(state(second, 0, SECOND)));
      });

      it('report the longer of the block and the unit wait', async () => {
        const minute = unit('minute', 1);
        const q = query([minute], counter(), 5 * SECOND);
        await consumeAt(0, q);
        expect(await consumeAt(0, q)).toEqual(
          rejected(MINUTE, 'minute', [state(minute, 0, MINUTE)], true),
        );
        expect(await consumeAt(5_000, q)).toEqual(
          rejected(55 * SECOND, 'minute', [state(minute, 0, 55 * SECOND)], true),
        );
      });

      it('unblock lifts an active block and says whether there was one', async () => {
        const q = query([second], counter(), 5 * SECOND);
        expect(await unblockAt(0, 'alice')).toBe(false);
        await consumeAt(0, q);
        await consumeAt(0, q);
        expect(await unblockAt(0, 'alice')).toBe(true);
        expect(await unblockAt(0, 'alice')).toBe(false);
        expect((await consumeAt(1_000, q)).allowed).toBe(true);
        await consumeAt(1_000, q); // blocked again until 6 s
        expect(await unblockAt(5_999, 'alice')).toBe(true); // 1 ms left
        expect((await consumeAt(5_999, q)).allowed).toBe(true);
        await consumeAt(5_999, q); // blocked again until 10.999 s
        expect(await unblockAt(10_999, 'alice')).toBe(false); // just expired: nothing to lift
      });
    });

    it('reset forgets every unit of one counter only, and says whether any existed', async () => {
      const limits = [unit('second', 1), unit('minute', 1)];
      const mine = query(limits);
      const other = query(limits, counter('alice', 'path:/b'));
      expect(await resetAt(0, mine.counter)).toBe(false);
      await consumeAt(0, mine);
      await consumeAt(0, other);
      expect((await consumeAt(0, mine)).allowed).toBe(false);
      expect(await resetAt(0, mine.counter)).toBe(true);
      expect((await consumeAt(0, mine)).allowed).toBe(true);
      expect((await consumeAt(0, other)).allowed).toBe(false);
      expect(await resetAt(0, counter('nobody'))).toBe(false);
      expect(await resetAt(MINUTE - 1, other.counter)).toBe(true); // the minute is still live
      await consumeAt(MINUTE, other);
      expect(await resetAt(2 * MINUTE, other.counter)).toBe(false); // only expired entries left
    });

    it('reset does not lift the block', async () => {
      const q = query([unit('second', 1)], counter(), 5 * SECOND);
      await consumeAt(0, q);
      await consumeAt(0, q);
      expect(await resetAt(0, q.counter)).toBe(true);
      expect(await consumeAt(0, q)).toEqual(
        blockedEarlier(5 * SECOND, [state(unit('second', 1), 1, SECOND)]),
      );
    });

    it("keeps its keys from expiring on Redis's own clock under a test clock", async () => {
      const second = unit('second', 1);
      const minute = unit('minute', 5);
      const q = query([second, minute], counter(), 3 * SECOND);
      await consumeAt(0, q);
      await consumeAt(0, q); // a block
      const keys = await keysUnder(nodes, prefix);
      // Windows, logs and the block end in virtual time, shifted centuries past any real clock
      // (lua/test-clock.lua); a log two windows after its oldest entry.
      const ends = new Map<string, number>([[blockKey(prefix, q.counter.user), 3 * SECOND]]);
      if (kind === 'fixed') {
        ends.set(fixedWindowKey(prefix, q.counter, second), SECOND);
        ends.set(fixedWindowKey(prefix, q.counter, minute), MINUTE);
      } else {
        ends.set(slidingLogKey(prefix, q.counter, second), 2 * SECOND);
        ends.set(slidingLogKey(prefix, q.counter, minute), 2 * MINUTE);
      }
      expect(keys).toEqual([...ends.keys()].sort());
      for (const [key, end] of ends) {
        const at = end < 0 ? -1 : START_MS + end + TEST_CLOCK_EXPIRY_OFFSET_MS;
        expect([key, await client.call('PEXPIRETIME', key)]).toEqual([key, at]);
      }
    });

    it('keeps hostile user ids apart, every key of a call in one slot', async () => {
      const users = [
        'a}b{c',
        'a',
        '{}',
        '',
        '{',
        '%7B',
        ':',
        '\n',
        '\u0000',
        '\uD800',
        '\uFFFD',
        '😀',
        'x'.repeat(10_240),
        'x'.repeat(10_239) + 'y',
        // Pairs a naive `{user}` tag or `scope:method:user` key would confuse.
        'x}f',
        'x',
        'u:1',
        'u',
      ];
      const limits = [unit('second', 1), unit('minute', 5)];
      const scope = 'path:/x}{y';
      clock.at(0);
      for (const user of users) {
        const q = query(limits, counter(user, scope), MINUTE);
        expect((await backend.consume(q)).allowed).toBe(true);
        expect(await backend.consume(q)).toMatchObject({ allowed: false, blocked: true }); // a block
      }
      // Naive concatenation would merge these two counters of one user.
      for (const scope2 of ['zone:a:b', 'zone:a']) {
        const q = query(limits, counter('v', scope2, scope2 === 'zone:a' ? 'b:c' : 'c'));
        expect((await backend.consume(q)).allowed).toBe(true);
      }

      const expected = new Set<string>();
      for (const user of users) {
        const c = counter(user, scope);
        const unitKey = kind === 'fixed' ? fixedWindowKey : slidingLogKey;
        const keys = [
          unitKey(prefix, c, limits[0]!),
          unitKey(prefix, c, limits[1]!),
          blockKey(prefix, user),
        ];
        const slots = new Set<number>();
        for (const key of keys) {
          expected.add(key);
          // The cluster answers for itself; a single node has no CLUSTER command.
          slots.add(
            topology.clustered ? Number(await client.cluster('KEYSLOT', key)) : keySlot(key),
          );
        }
        expect({ user: user.slice(0, 20), slots: slots.size }).toEqual({
          user: user.slice(0, 20),
          slots: 1,
        });
      }
      // The calls touched exactly those keys, plus the two counters of `v`.
      const found = await keysUnder(nodes, prefix);
      const zoneKeys = found.filter((key) => key.includes('{=v}'));
      expect(zoneKeys).toHaveLength(4);
      expect(found.filter((key) => !key.includes('{=v}'))).toEqual([...expected].sort());
    });

    it('keeps working after SCRIPT FLUSH, deciding each request once', async () => {
      const minute = unit('minute', 3);
      const q = query([minute]);
      await consumeAt(0, q);
      await consumeAt(1, q);
      await Promise.all(nodes.map((node) => node.script('FLUSH')));
      expect(await consumeAt(2, q)).toEqual(admitted(state(minute, 0, MINUTE - 2)));
      expect(await consumeAt(3, q)).toEqual(
        rejected(MINUTE - 3, 'minute', [state(minute, 0, MINUTE - 3)]),
      );
      if (kind === 'fixed') {
        const key = fixedWindowKey(prefix, q.counter, minute);
        expect(await client.get(key)).toBe('3');
        // The window's end, in virtual time, shifted far past any real clock (lua/test-clock.lua).
        expect(await client.call('PEXPIRETIME', key)).toBe(
          START_MS + MINUTE + TEST_CLOCK_EXPIRY_OFFSET_MS,
        );
      } else {
        expect(await client.llen(slidingLogKey(prefix, q.counter, minute))).toBe(3);
      }
    });
  });

  describe('RedisBackend decides exactly like MemoryBackend', () => {
    it('on a long mixed sequence of requests, unblocks and resets, at fractional instants', async () => {
      const clock = new TestClock();
      const redis = make('fixed', client, clock);
      let now = 0;
      const memory = new MemoryBackend({ clock: () => START_MS + now, sweepIntervalMs: 0 });
      const outcome = await compareOnRandomSequence(redis, memory, (t) => {
        now = t;
        clock.at(t);
      });
      expect(outcome.rejected).toBeGreaterThan(50); // the sequence really exercises rejections
      expect(outcome.blocked).toBeGreaterThan(5);
      memory.close();
    });
  });

  describe('SlidingRedisBackend decides exactly like the sliding-window contract', () => {
    it('on a long mixed sequence of requests, unblocks and resets, at fractional instants', async () => {
      const clock = new TestClock();
      const redis = make('sliding', client, clock);
      let now = 0;
      const reference = new SlidingReference(() => START_MS + now);
      const outcome = await compareOnRandomSequence(redis, reference, (t) => {
        now = t;
        clock.at(t);
      });
      expect(outcome.rejected).toBeGreaterThan(50);
      expect(outcome.blocked).toBeGreaterThan(5);
    });
  });

  describe('SlidingRedisBackend', () => {
    let clock: TestClock;
    let backend: SlidingRedisBackend;
    let prefix: string;

    beforeEach(() => {
      clock = new TestClock();
      prefix = freshPrefix();
      backend = make('sliding', client, clock, prefix) as SlidingRedisBackend;
    });

    const consumeAt = (t: number, q: ConsumeQuery): Promise<ConsumeResult> => {
      clock.at(t);
      return backend.consume(q);
    };

    /** The log of one unit as stored, in list order, as ms after the clock's start. */
    async function logTimes(c: RateLimitCounter, limit: UnitLimit): Promise<number[]> {
      const key = slidingLogKey(prefix, c, limit);
      const entries = await (client as Redis).lrange(key, 0, -1); // (Cluster: same API)
      return entries.map(sinceStart);
    }

    it('logs each admitted request at its test-clock millisecond, oldest first', async () => {
      const second = unit('second', 4);
      const q = query([second]);
      for (const t of [0, 0.25, 1.123456, 1.9]) expect((await consumeAt(t, q)).allowed).toBe(true);
      expect(await logTimes(q.counter, second)).toEqual([0, 0, 1, 1]);
      expect(await client.type(slidingLogKey(prefix, q.counter, second))).toBe('list');
    });

    it('rejects a request 1 ms before the oldest entry leaves, admits it once it left', async () => {
      const second = unit('second', 1);
      const q = query([second]);
      expect((await consumeAt(0, q)).allowed).toBe(true);
      expect(await consumeAt(999, q)).toEqual(rejected(1, 'second', [state(second, 0, 1)]));
      expect(await consumeAt(1_000, q)).toEqual(admitted(state(second, 0, SECOND)));
      expect(await logTimes(q.counter, second)).toEqual([1_000]); // the old entry was dropped
    });

    it('admits an evenly spaced burst again exactly as each entry leaves', async () => {
      const second = unit('second', 4);
      const q = query([second]);
      for (const t of [0, 250, 500, 750]) expect((await consumeAt(t, q)).allowed).toBe(true);
      for (const oldest of [0, 250, 500, 750]) {
        // 100 ms and 1 ms before the oldest entry leaves: rejected, told to wait exactly that long.
        expect(await consumeAt(oldest + 900, q)).toEqual(
          rejected(100, 'second', [state(second, 0, 100)]),
        );
        expect(await consumeAt(oldest + 999, q)).toEqual(
          rejected(1, 'second', [state(second, 0, 1)]),
        );
        // Admitted as it leaves; the next oldest leaves 250 ms later.
        expect(await consumeAt(oldest + 1_000, q)).toEqual(admitted(state(second, 0, 250)));
      }
      // Each re-admission came 1 s after the entry it replaced: the spacing is kept.
      expect(await logTimes(q.counter, second)).toEqual([1_000, 1_250, 1_500, 1_750]);
    });

    it('treats a log above a lowered limit as full', async () => {
      const three = unit('minute', 3);
      const c = counter();
      for (const t of [0, 10_000, 20_000]) {
        expect((await consumeAt(t, query([three], c))).allowed).toBe(true);
      }
      // Lowered to 1 while all three are in the window (at 35 s): a request fits only once two
      // have left, i.e. when the entry at index count - limit = 2 (the newest, of 20 s) leaves.
      const one = unit('minute', 1);
      expect(await consumeAt(35_000, query([one], c))).toEqual(
        rejected(45_000, 'minute', [state(one, 0, 45_000)]),
      );
      expect(await consumeAt(35_000, query([three], c))).toEqual(
        rejected(25_000, 'minute', [state(three, 0, 25_000)]),
      );
      const five = unit('minute', 5);
      expect(await consumeAt(35_000, query([five], c))).toEqual(admitted(state(five, 1, 25_000)));
      expect(await logTimes(c, three)).toEqual([0, 10_000, 20_000, 35_000]);
    });

    it('logs every admitted request, even many in one millisecond, each once', async () => {
      const day = unit('day', 10_000);
      const q = query([unit('second', 10_000), day]);
      clock.at(0);
      const n = 200;
      const results = await Promise.all(Array.from({ length: n }, () => backend.consume(q)));
      expect(results.every((result) => result.allowed)).toBe(true);
      // Each saw its own count: remaining 9999 down to 9800, each once.
      expect(results.map((r) => r.units[1]!.remaining).sort((a, b) => b - a)).toEqual(
        Array.from({ length: n }, (_, i) => 9_999 - i),
      );
      // One entry per request, all the same millisecond: equal entries, each counted.
      expect(await logTimes(q.counter, day)).toEqual(Array.from({ length: n }, () => 0));
    });

    /**
     * Admits one request of `q` at each of `times` (ms, in order). After the first, they are sent
     * without waiting for one another: each reads the test clock as it is sent, and one connection
     * (one node, for one user) runs them in that order.
     */
    async function admitAt(q: ConsumeQuery, times: readonly number[]): Promise<void> {
      expect((await consumeAt(times[0]!, q)).allowed).toBe(true);
      const rest = await Promise.all(times.slice(1).map((t) => consumeAt(t, q)));
      expect(rest.filter((result) => !result.allowed)).toEqual([]);
    }

    // 3,000 entries, one every 2 ms; `left` of them have left the window at the next request. The
    // trim reads the entries after the head in chunks of 32, 64, ..., 1024 (indexes 1-32, 33-96,
    // ..., 993-2016, 2017-3040), so these put the first live entry at the end or the start of a
    // chunk, inside the largest, or nowhere (every entry left).
    it.each([1, 32, 33, 1_500, 2_017, 2_999, 3_000])(
      'trims a backlog of 3,000 entries of which %d left the window, exactly',
      async (left) => {
        const windowMs = 10_000;
        const big: UnitLimit = { unit: 'minute', limit: 5_000, windowMs };
        const q = query([big]);
        const reference = new SlidingReference(clock.read);
        const times = Array.from({ length: 3_000 }, (_, k) => 2 * k);
        await admitAt(q, times);
        for (const t of times) {
          clock.at(t);
          reference.consume(q);
        }
        // Entry k (of 2k ms) is out once 2k <= now - window: the first `left` are.
        const now = windowMs + 2 * left - 1;
        const result = await consumeAt(now, q);
        expect(result).toEqual(reference.consume(q));
        const kept = 3_000 - left;
        // The oldest entry kept (of 2 * left ms) leaves 1 ms from now; none kept: a fresh log.
        expect(result).toEqual(admitted(state(big, 5_000 - kept - 1, kept > 0 ? 1 : windowMs)));
        expect(await logTimes(q.counter, big)).toEqual([...times.slice(left), now]);
        // A lower limit on the same log: full (but the fresh one), waiting for the entry at
        // count - limit.
        const lowered = query([{ ...big, limit: 1_000 }]);
        expect(await consumeAt(now, lowered)).toEqual(reference.consume(lowered));
      },
    );

    it('deletes a log once every entry left, even when another unit rejects the request', async () => {
      const second = unit('second', 5);
      const c = counter();
      await admitAt(query([second], c), [0, 100, 200]);
      const closed = query([second, unit('hour', 0)], c);
      expect(await consumeAt(1_200, closed)).toEqual(
        rejected(HOUR, 'hour', [state(second, 5, SECOND), state(unit('hour', 0), 0, HOUR)]),
      );
      expect(await client.exists(slidingLogKey(prefix, c, second))).toBe(0);
      expect(await consumeAt(1_300, query([second], c))).toEqual(
        admitted(state(second, 4, SECOND)),
      );
      expect(await logTimes(c, second)).toEqual([1_300]);
    });

    it('rejects a limit of 0 without touching the log other limits of the unit share', async () => {
      const minute = unit('minute', 3);
      const closed = unit('minute', 0);
      const c = counter();
      await admitAt(query([minute], c), [0, 1_000]);
      // At 60.5 s the entry of 0 s has left; a limit of 0 reads nothing, so it stays.
      expect(await consumeAt(60_500, query([closed], c))).toEqual(
        rejected(MINUTE, 'minute', [state(closed, 0, MINUTE)]),
      );
      expect(await logTimes(c, minute)).toEqual([0, 1_000]);
      expect(await consumeAt(60_500, query([minute], c))).toEqual(admitted(state(minute, 1, 500)));
      expect(await logTimes(c, minute)).toEqual([1_000, 60_500]);
    });

    describe('when the clock steps back', () => {
      it('counts an entry logged behind a later one until that one leaves: stricter', async () => {
        const second = unit('second', 3);
        const q = query([second]);
        expect(await consumeAt(5_000, q)).toEqual(admitted(state(second, 2, SECOND)));
        expect(await consumeAt(5_500, q)).toEqual(admitted(state(second, 1, 500)));
        // Back to 4.2 s: both entries count (they are later than 4.2 s - 1 s).
        expect(await consumeAt(4_200, q)).toEqual(admitted(state(second, 0, SECOND)));
        expect(await logTimes(q.counter, second)).toEqual([5_000, 5_500, 4_200]);
        // At 5.6 s the entry of 4.2 s has left, but it sits behind the live 5 s one: still
        // counted, so the unit is full until 5 s leaves (the contract would admit here).
        expect(await consumeAt(5_600, q)).toEqual(rejected(400, 'second', [state(second, 0, 400)]));
        // 5 s left: the trim stops at 5.5 s and keeps 4.2 s behind it, counted once more.
        expect(await consumeAt(6_000, q)).toEqual(admitted(state(second, 0, 500)));
        expect(await logTimes(q.counter, second)).toEqual([5_500, 4_200, 6_000]);
        // 5.5 s left: both go, and the count is exact again.
        expect(await consumeAt(6_500, q)).toEqual(admitted(state(second, 1, 500)));
        expect(await logTimes(q.counter, second)).toEqual([6_000, 6_500]);
      });

      it('waits at least until the head of the list leaves, never 0, when the marked entry left', async () => {
        const five = unit('second', 5);
        const three = unit('second', 3); // the same log, a lower limit
        await admitAt(query([five]), [1_000, 500, 1_001, 1_002]);
        // At 1.6 s: 4 entries, the one at count - limit (500) left long ago. In the window are
        // 1, 1.001 and 1.002 s: full, until 1 s leaves at 2 s.
        expect(await consumeAt(1_600, query([three]))).toEqual(
          rejected(400, 'second', [state(three, 0, 400)]),
        );
      });

      // The yardstick: an exact log fed the same admitted requests, which at every request forgets
      // every entry that has left the window (as the sorted log before did), never to count it
      // again should the clock go back. The list only ever forgets fewer.
      it('never admits more than an exact log would, stepping back and forth at random', async () => {
        const limits: UnitLimit[] = [
          unit('second', 3),
          { unit: 'minute', limit: 12, windowMs: 5_000 },
        ];
        const q = query(limits);
        let exact: number[][] = limits.map(() => []);
        const random = seeded(7);
        const moves = [-700, -30, -1, 0, 1, 90, 350, 600, 999, 1_000, 2_500];
        let t = 10_000;
        let latest = t; // every entry is of this millisecond or earlier
        let stepsBack = 0;
        let rejections = 0;
        let stricter = 0; // unit states that counted an entry the exact log had forgotten
        for (let step = 0; step < 400; step++) {
          const move = moves[random(moves.length)]!;
          if (move < 0) stepsBack++;
          t = Math.max(0, t + move);
          latest = Math.max(latest, t);
          const result = await consumeAt(t, q);
          exact = exact.map((log, i) => log.filter((s) => s > t - limits[i]!.windowMs));
          limits.forEach((limit, i) => {
            const room = limit.limit - exact[i]!.length;
            const reported = result.units[i]!;
            expect({ step, fits: !result.allowed || room > 0 }).toEqual({ step, fits: true });
            const most = result.allowed ? room - 1 : Math.max(0, room);
            expect({ step, remaining: reported.remaining <= most }).toEqual({
              step,
              remaining: true,
            });
            expect({ step, resetMs: reported.resetMs > 0 }).toEqual({ step, resetMs: true });
            if (reported.remaining < most) stricter++;
          });
          if (result.allowed) for (const log of exact) log.push(t);
          else rejections++;
        }
        expect(stepsBack).toBeGreaterThan(50);
        expect(rejections).toBeGreaterThan(100);
        expect(rejections).toBeLessThan(300);
        expect(stricter).toBeGreaterThan(20);
        // Once the clock has run past every entry's window, decisions are exact again.
        const last = latest + 5_000;
        expect(await consumeAt(last, q)).toEqual(
          admitted(state(limits[0]!, 2, SECOND), state(limits[1]!, 11, 5_000)),
        );
      });
    });

    it('reset also clears a non-standard window this process used', async () => {
      const short = { unit: 'second', limit: 1, windowMs: 250 } as const;
      const q = query([short]);
      clock.at(0);
      await backend.consume(q);
      expect((await backend.consume(q)).allowed).toBe(false);
      expect(await backend.reset(q.counter)).toBe(true);
      expect((await backend.consume(q)).allowed).toBe(true);
    });
  });
});

/** Decides requests, unblocks and resets in both `redis` and `reference`. */
interface Decider {
  consume(q: ConsumeQuery): ConsumeResult | Promise<ConsumeResult>;
  unblock(user: string): boolean | Promise<boolean>;
  reset(c: RateLimitCounter): boolean | Promise<boolean>;
}

/**
 * Runs one seeded sequence of 300 steps (requests under four rules on four counters, with and
 * without blocks, plus unblocks and resets) through `redis` and `reference` at the same instants,
 * some a fraction into a millisecond, and expects the same answer at every step. `at(t)` moves
 * both clocks to `t` ms after the start.
 */
async function compareOnRandomSequence(
  redis: Decider,
  reference: Decider,
  at: (t: number) => void,
): Promise<{ rejected: number; blocked: number }> {
  const random = seeded(42);
  const rules: (readonly UnitLimit[])[] = [
    [unit('second', 2)],
    [unit('second', 1), unit('minute', 4)],
    [unit('minute', 3), unit('hour', 5)],
    [unit('second', 3), unit('minute', 0)],
  ];
  const counters = [
    counter('u1'),
    counter('u1', 'zone:z'),
    counter('u2'),
    counter('u2', 'path:/b', 'GET'),
  ];
  const steps = [0, 0.4, 1, 7, 120, 480, 999, 999.7, 1_000, 15_000];
  let t = 0;
  let rejected = 0;
  let blocked = 0;
  for (let step = 0; step < 300; step++) {
    t += steps[random(steps.length)]!;
    at(t);
    const roll = random(40);
    let actual: unknown;
    let expected: unknown;
    if (roll === 0) {
      const user = `u${1 + random(2)}`;
      actual = await redis.unblock(user);
      expected = await reference.unblock(user);
    } else if (roll === 1) {
      const c = counters[random(counters.length)]!;
      actual = await redis.reset(c);
      expected = await reference.reset(c);
    } else {
      const q = query(
        rules[random(rules.length)]!,
        counters[random(counters.length)]!,
        random(6) === 0 ? [1_000, 2_500][random(2)]! : 0,
      );
      actual = await redis.consume(q);
      const result = await reference.consume(q);
      if (!result.allowed) rejected++;
      if (result.blocked) blocked++;
      expected = result;
    }
    expect({ step, t, actual }).toEqual({ step, t, actual: expected });
  }
  return { rejected, blocked };
}

// ---------------------------------------------------------------------------------------------
// Without a test clock: time from Redis
// ---------------------------------------------------------------------------------------------

describe('without a test clock', () => {
  afterEach(() => jest.restoreAllMocks());

  it("decides on Redis's clock, never the application's, the same for every instance", async () => {
    const TEN_YEARS = 10 * 365 * 86_400_000;
    const realNow = Date.now();
    const dateNow = jest.spyOn(Date, 'now').mockReturnValue(realNow + TEN_YEARS);
    const perfNow = jest.spyOn(performance, 'now').mockReturnValue(0);
    const observer = await singleClient();
    const timeBefore = (await commandCalls(observer)).get('time') ?? 0;

    // Every backend and topology, each through two instances on two clients of their own.
    const instances = await Promise.all(
      redis.topologies.flatMap((topology) =>
        (['fixed', 'sliding'] as const).map(async (kind) => {
          const prefix = freshPrefix();
          const Backend = kind === 'fixed' ? RedisBackend : SlidingRedisBackend;
          const [one, two] = [await topology.client(), await topology.client()];
          const pair = [new Backend(one, { prefix }), new Backend(two, { prefix })] as const;
          redis.closeAfterAll(...pair);
          const nodes = await topology.nodes();
          return { name: `${kind} on a ${topology.name}`, prefix, pair, one, nodes };
        }),
      ),
    );
    const second = unit('second', 1);
    const q = query([second], counter(), 500);
    const each = <T>(call: (instance: (typeof instances)[number]) => Promise<T>): Promise<T[]> =>
      Promise.all(instances.map(call));

    expect(await each(({ pair }) => pair[0].consume(q))).toEqual(
      instances.map(() => admitted(state(second, 0, SECOND))),
    );
    dateNow.mockReturnValue(realNow - TEN_YEARS);
    perfNow.mockReturnValue(1e12);
    // The other instance sees the window the first one started, and the user gets blocked.
    const rejections = await each(({ pair }) => pair[1].consume(q));
    for (const [i, result] of rejections.entries()) {
      const wait = result.retryAfterMs;
      const resetMs = result.units[0]?.resetMs ?? Number.NaN;
      expect({ backend: instances[i]!.name, result }).toEqual({
        backend: instances[i]!.name,
        result: rejected(wait, 'second', [state(second, 0, resetMs)], true),
      });
      // The longer of the block (500 ms) and the window's time left (at most 1 s).
      expect(resetMs).toBeGreaterThan(0);
      expect(resetMs).toBeLessThanOrEqual(SECOND);
      expect(wait).toBe(Math.max(500, resetMs));
    }
    // The keys expire on Redis's clock: a block with the block, a window with the window, a log
    // two windows after its oldest entry.
    for (const { name, prefix, one, nodes } of instances) {
      const keys = await keysUnder(nodes, prefix);
      expect({ name, keys: keys.length }).toEqual({ name, keys: 2 }); // a window or a log, a block
      const windowKeyLifetime = name.startsWith('sliding') ? 2 * SECOND : SECOND;
      for (const key of keys) {
        const ttl = await one.pttl(key);
        const most = key.endsWith('}b') ? 500 : windowKeyLifetime;
        expect({ key, ttl, expiring: ttl > 0 && ttl <= most }).toEqual({
          key,
          ttl,
          expiring: true,
        });
      }
    }
    dateNow.mockReturnValue(0);
    // A real wait, the only one in these tests: the point is Redis's own clock moving on.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(await each(({ pair }) => pair[1].consume(q))).toEqual(
      instances.map(() => admitted(state(second, 0, SECOND))),
    );
    // On the single node, each of the sliding backend's 3 script calls read Redis's TIME once;
    // the fixed window's read none: its windows and blocks are keys that Redis's clock expires.
    expect(((await commandCalls(observer)).get('time') ?? 0) - timeBefore).toBe(3);
  });
});

// ---------------------------------------------------------------------------------------------
// Single node only: command counting, clients, warnings, the test clock's readings
// ---------------------------------------------------------------------------------------------

describe('on a single node', () => {
  it.each(['fixed', 'sliding'] as const)('%s: exactly one command per decision', async (kind) => {
    const node = await singleClient();
    const observer = await singleClient();
    const clock = new TestClock();
    const backend = make(kind, node, clock);
    const q = query([unit('second', 2), unit('minute', 5)], counter(), 3_000);
    clock.at(0);
    // Warm up: the first call of each script on a connection sends it whole (EVAL).
    await backend.consume(q);
    await backend.unblock('nobody');
    await backend.reset(counter('nobody'));

    // MONITOR shows every command a client sends, and marks those a script runs as "lua".
    const monitor = await observer.monitor();
    redis.track(monitor);
    const sent: string[] = [];
    const marker = `end-${redis.run}-${kind}`;
    let sawMarker: () => void = () => undefined;
    const markerSeen = new Promise<void>((resolve) => (sawMarker = resolve));
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (args[0]?.toLowerCase() === 'echo' && args[1] === marker) sawMarker();
      else if (source !== 'lua') sent.push(args[0]!.toLowerCase());
    });
    const before = await commandCalls(observer);

    const n = 12;
    const outcomes: string[] = [];
    for (let i = 0; i < n; i++) {
      clock.at(Math.floor(i / 3) * 1_500);
      const result = await backend.consume(q);
      outcomes.push(result.allowed ? 'allowed' : result.unit ? 'exhausted' : 'blocked');
    }
    await backend.unblock('alice');
    await backend.reset(q.counter);

    const after = await commandCalls(observer);
    await observer.echo(marker);
    await markerSeen;
    monitor.disconnect();

    // Every kind of decision was made, each at its instant...
    expect(outcomes).toEqual([
      // 0 s (after the warm-up): a block until 3 s, then a request during it that finds the
      // second still exhausted
      ...['allowed', 'exhausted', 'exhausted'],
      ...['blocked', 'blocked', 'blocked'], // 1.5 s: the block alone rejects
      ...['allowed', 'allowed', 'exhausted'], // 3 s: blocked again until 6 s
      ...['blocked', 'blocked', 'blocked'], // 4.5 s
    ]);
    // ...and each cost one script call (EVALSHA; EVAL the first time on a connection)...
    const delta = (command: string): number =>
      (after.get(command) ?? 0) - (before.get(command) ?? 0);
    expect(delta('evalsha') + delta('eval')).toBe(n + 2);
    // ...that read no TIME (the test clock replaces it)...
    expect(delta('time')).toBe(0);
    // ...and nothing else was sent: only the observer's INFO besides the scripts.
    expect(sent.filter((command) => command !== 'info')).toEqual(
      Array.from({ length: n + 2 }, () => 'evalsha'),
    );
  });

  it.each([
    ['NaN', Number.NaN],
    ['a negative time', -1],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['a time past 2^53 µs', 9.1e12],
    ['a string', '1700000000000'],
  ])('fails a call whose testClock() returns %s, sending nothing', async (_, value) => {
    const backend = new RedisBackend(await singleClient(), {
      prefix: freshPrefix(),
      testClock: () => value as number,
    });
    redis.closeAfterAll(backend);
    await expect(backend.consume(query([unit('second', 1)]))).rejects.toThrow(
      /^RedisBackend: testClock\(\) must return a time in milliseconds from 0 to \d+, got /,
    );
    await expect(backend.unblock('alice')).rejects.toThrow(/testClock\(\)/);
  });

  it('takes a test clock at any time, the Unix epoch included', async () => {
    let now = 0;
    const backend = new SlidingRedisBackend(await singleClient(), {
      prefix: freshPrefix(),
      testClock: () => now,
    });
    redis.closeAfterAll(backend);
    const second = unit('second', 1);
    const q = query([second], counter(), 2_000);
    expect(await backend.consume(q)).toEqual(admitted(state(second, 0, SECOND)));
    now = 250;
    expect(await backend.consume(q)).toEqual(
      rejected(2_000, 'second', [state(second, 0, 750)], true),
    );
    now = 2_249;
    expect(await backend.consume(q)).toEqual(blockedEarlier(1, [state(second, 1, SECOND)]));
    now = 2_250;
    expect(await backend.consume(q)).toEqual(admitted(state(second, 0, SECOND)));
  });

  describe('clients', () => {
    afterEach(() => jest.restoreAllMocks());

    it('warns once per user-supplied client that has the offline queue on', async () => {
      const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      const queued = await ready(new Redis({ host: redis.single.host, port: redis.single.port }));
      new RedisBackend(queued);
      new SlidingRedisBackend(queued);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0]![0])).toMatch(
        /enableOfflineQueue[\s\S]*late[\s\S]*enableOfflineQueue: false/,
      );
      expect(warn.mock.contexts[0]).toBeInstanceOf(Logger);
      expect(Reflect.get(warn.mock.contexts[0] as object, 'context')).toBe('RateLimit');

      warn.mockClear();
      new RedisBackend(await singleClient());
      expect(warn).not.toHaveBeenCalled();
    });

    it('never closes a user-supplied client', async () => {
      const mine = await singleClient();
      const backend = new RedisBackend(mine);
      await backend.close();
      expect(mine.status).toBe('ready');
      expect(await backend.getClient()).toBe(mine);
    });

    it.each([
      ['a URL', (): string => redis.single.url],
      ['connection options', (): object => ({ host: redis.single.host, port: redis.single.port })],
    ])('creates its own safe client from %s, and closes it', async (_, source) => {
      const backend = new SlidingRedisBackend(source() as string, {
        prefix: freshPrefix(),
        testClock: new TestClock().read,
      });
      // Works at once: the first request waits for the first connection.
      expect(await backend.consume(query([unit('second', 1)]))).toEqual(
        admitted(state(unit('second', 1), 0, SECOND)),
      );
      const own = (await backend.getClient()) as Redis;
      expect(own).toBeInstanceOf(Redis);
      expect(own.options).toMatchObject({
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        autoResendUnfulfilledCommands: false,
        connectTimeout: 1_000,
      });
      expect(own.options.retryStrategy?.(1)).toBe(100);
      expect(own.options.retryStrategy?.(1_000)).toBe(500); // forever, every 500 ms at most
      await backend.close();
      expect(own.status).toBe('end');
      await backend.close(); // idempotent
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Pure: validation and reply parsing
// ---------------------------------------------------------------------------------------------

describe('Redis backend options', () => {
  const client = { defineCommand: () => undefined } as unknown as Redis;

  it.each([
    [{ prefix: '' }, /"prefix": must be a non-empty string/],
    [{ prefix: 'a{b' }, /"prefix".*without "\{" or "\}"/],
    [{ prefix: 'a}' }, /"prefix"/],
    [{ prefix: 5 }, /"prefix"/],
    [{ testClock: 5 }, /"testClock": must be a function returning the time in milliseconds/],
    [{ testClock: 1.7e12 }, /"testClock": must be a function/],
    [{ timeOffsetMs: () => 0 }, /"timeOffsetMs".*did you mean "testClock"/],
    [{ clock: () => 0 }, /"clock".*did you mean "testClock"/],
    [{ keyPrefix: 'x' }, /"keyPrefix".*did you mean "prefix"/],
    [{ prefx: 'x' }, /"prefx".*did you mean "prefix"/],
    ['rl:', /"options": must be an object/],
  ])('rejects %p', (options, message) => {
    for (const Backend of [RedisBackend, SlidingRedisBackend]) {
      const attempt = (): unknown => new Backend(client, options as never);
      expect(attempt).toThrow(RateLimitConfigError);
      expect(attempt).toThrow(message);
      try {
        attempt();
      } catch (error) {
        expect(error).toMatchObject({ code: 'RATE_LIMIT_INVALID_OPTION' });
        expect(String((error as Error).message)).toContain(Backend.name);
      }
    }
  });

  it.each([
    [undefined, /"client": expected an ioredis Redis or Cluster/],
    ['', /"client"/],
    [42, /"client"/],
    [{ sendCommand: () => undefined, isOpen: true }, /only ioredis clients are supported/],
  ])('rejects the client %p', (value, message) => {
    expect(() => new RedisBackend(value as never)).toThrow(message);
  });
});

describe('script reply parsing', () => {
  const limits = [unit('second', 2), unit('minute', 10)];

  it('reads admitted, exhausted and blocked replies', () => {
    expect(parseConsumeReply('X', [1, 0, 0, 0, 1, 1000, 9, 60000], limits)).toEqual({
      allowed: true,
      retryAfterMs: 0,
      blocked: false,
      unit: undefined,
      units: [
        { unit: 'second', limit: 2, windowMs: SECOND, remaining: 1, resetMs: 1000 },
        { unit: 'minute', limit: 10, windowMs: MINUTE, remaining: 9, resetMs: 60000 },
      ],
    });
    expect(parseConsumeReply('X', [0, 500, 1, 2, 0, 500, 0, 500], limits)).toMatchObject({
      allowed: false,
      retryAfterMs: 500,
      blocked: true,
      unit: 'minute',
    });
    // During a block: the units as they stand, and the exhausted one with the longest wait...
    expect(parseConsumeReply('X', [0, 59_000, 1, 2, 1, 400, 0, 59_000], limits)).toEqual({
      allowed: false,
      retryAfterMs: 59_000,
      blocked: true,
      unit: 'minute',
      units: [
        { unit: 'second', limit: 2, windowMs: SECOND, remaining: 1, resetMs: 400 },
        { unit: 'minute', limit: 10, windowMs: MINUTE, remaining: 0, resetMs: 59_000 },
      ],
    });
    // ...or none, when the block alone rejects.
    expect(parseConsumeReply('X', [0, 4900, 1, 0, 2, 1000, 9, 60000], limits)).toEqual({
      allowed: false,
      retryAfterMs: 4900,
      blocked: true,
      unit: undefined,
      units: [
        { unit: 'second', limit: 2, windowMs: SECOND, remaining: 2, resetMs: 1000 },
        { unit: 'minute', limit: 10, windowMs: MINUTE, remaining: 9, resetMs: 60000 },
      ],
    });
    expect(parseFlagReply('X', 1)).toBe(true);
    expect(parseFlagReply('X', 0)).toBe(false);
  });

  it.each([
    null,
    'OK',
    [],
    [1, 0, 0],
    [1, 0, 0, 0, 1, 1000], // a unit missing
    [1, 0, 0, 0, 1, 1000, 9, 60000, 1, 1], // a unit too many
    [1, 0, 0, 0, 1_700_000_000_123_456, 1, 1000, 9, 60000], // the old reply, with Redis's time
    [2, 0, 0, 0, 1, 1000, 9, 60000], // not a flag
    ['1', 0, 0, 0, 1, 1000, 9, 60000], // a string
    [1, 0, 0, 0, -1, 1000, 9, 60000], // negative
    [1, 0, 0, 0, 1.5, 1000, 9, 60000], // a fraction
    [1, 5, 0, 0, 1, 1000, 9, 60000], // admitted with a wait
    [0, 0, 0, 1, 0, 0, 9, 60000], // rejected without a wait
    [0, 10, 0, 3, 0, 0, 9, 60000], // unit out of range
    [0, 0, 1, 0], // blocked without a wait
    [0, 4900, 1, 0], // blocked, without the units (the reply before every unit was reported)
    [0, 0, 1, 0, 2, 1000, 9, 60000], // blocked without a wait
    [0, 4900, 0, 0, 2, 1000, 9, 60000], // rejected by neither a unit nor a block
    [0, 4900, 1, 0, 0, 500, 9, 60000], // an exhausted unit that the reply does not name
    [0, 500, 0, 2, 1, 500, 9, 59500], // the unit named has requests left
    [0, 500, 1, 2, 1, 500, 0, 59500], // the unit named waits longer than the reply says
  ])('throws on the malformed consume reply %p', (reply) => {
    expect(() => parseConsumeReply('RedisBackend', reply, limits)).toThrow(
      /RedisBackend: unexpected reply/,
    );
  });

  it('unpacks the one integer of an admitted request under one unit', () => {
    const minute = unit('minute', 10);
    expect(parseConsumeReply('X', 59_000 * 11 + 9, [minute])).toEqual({
      allowed: true,
      retryAfterMs: 0,
      blocked: false,
      unit: undefined,
      units: [{ unit: 'minute', limit: 10, windowMs: MINUTE, remaining: 9, resetMs: 59_000 }],
    });
    expect(parseConsumeReply('X', 1 * 11 + 0, [minute]).units).toEqual([
      { unit: 'minute', limit: 10, windowMs: MINUTE, remaining: 0, resetMs: 1 },
    ]);
  });

  it.each([
    [59_000 * 11 + 9, limits], // two units never pack
    [-1, [unit('minute', 10)]],
    [1.5, [unit('minute', 10)]],
    [2 ** 53, [unit('minute', 10)]], // beyond what packs exactly
    [59_000 * 11 + 9, [{ ...unit('minute', 10), limit: 9.5 }]], // a limit that cannot pack
  ])('throws on the malformed packed reply %p', (reply, units) => {
    expect(() => parseConsumeReply('RedisBackend', reply, units)).toThrow(
      /RedisBackend: unexpected reply/,
    );
  });

  it.each([null, 2, -1, '1', [1], [1, 1_700_000_000_123_456]])(
    'throws on the malformed flag reply %p',
    (reply) => {
      expect(() => parseFlagReply('SlidingRedisBackend', reply)).toThrow(
        /SlidingRedisBackend: unexpected reply/,
      );
    },
  );
});
