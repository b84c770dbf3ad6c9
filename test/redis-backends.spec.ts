/**
 * RedisBackend (fixed window) and SlidingRedisBackend (exact sliding log) against real Redis
 * servers started by the harness: one single node and one 3-master cluster. No mocks.
 *
 * Time: every backend gets a `timeOffsetMs` hook driven by a {@link VirtualClock}, which places
 * each script call at a chosen virtual instant of Redis's own clock, so tests move time instead of
 * sleeping.
 */
import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { Cluster, Redis } from 'ioredis';
import { RateLimitConfigError } from '../lib/rate-limit-config.error.js';
import { MemoryBackend } from '../lib/backends/memory.backend.js';
import type {
  ConsumeQuery,
  ConsumeResult,
  RateLimitCounter,
} from '../lib/backends/rate-limit.backend.js';
import { parseConsumeReply, parseFlagReply } from '../lib/backends/redis/redis-backend.base.js';
import {
  blockKey,
  fixedWindowKey,
  slidingLogKey,
  slidingSequenceKey,
} from '../lib/backends/redis/redis-keys.js';
import { RedisBackend } from '../lib/backends/redis/redis.backend.js';
import { SlidingRedisBackend } from '../lib/backends/redis/sliding-redis.backend.js';
import {
  UNIT_WINDOW_SECONDS,
  type RateLimitUnit,
  type UnitLimit,
} from '../lib/rules/rule-units.js';
import {
  keySlot,
  startRedisCluster,
  startRedisServer,
  type RedisClusterHandle,
  type RedisNodeAddress,
  type RedisServerHandle,
} from './support/redis-harness.js';

const SECOND = 1_000;
const MINUTE = 60_000;
const HOUR = 3_600_000;

type Kind = 'fixed' | 'sliding';
type Client = Redis | Cluster;

function unit(name: RateLimitUnit, limit: number): UnitLimit {
  return { unit: name, limit, windowMs: UNIT_WINDOW_SECONDS[name] * 1000 };
}

function counter(user = 'alice', scope = 'path:/a', method = '*'): RateLimitCounter {
  return { user, scope, method };
}

function query(
  limits: readonly UnitLimit[],
  target: RateLimitCounter = counter(),
  blockMs = 0,
): ConsumeQuery {
  return { counter: target, limits, blockMs };
}

// ---------------------------------------------------------------------------------------------
// Servers, clients and the virtual clock
// ---------------------------------------------------------------------------------------------

let single: RedisServerHandle;
let cluster: RedisClusterHandle;
const clients: Client[] = [];
const backends: AnyBackend[] = [];

/** Connects, waits until ready (clients have no offline queue), and tracks the client. */
async function ready<T extends Client>(client: T): Promise<T> {
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

function nodeClient(node: RedisNodeAddress): Promise<Redis> {
  return ready(
    new Redis({
      host: node.host,
      port: node.port,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
    }),
  );
}

function singleClient(): Promise<Redis> {
  return nodeClient(single);
}

function clusterClient(): Promise<Cluster> {
  return ready(
    new Cluster([...cluster.nodes], {
      enableOfflineQueue: false,
      redisOptions: { maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false },
    }),
  );
}

/** Local wall-clock time in microseconds (monotonic between calibrations, never `Date.now`). */
function localUs(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}

/**
 * Thrown when a call ran too far from the instant the test chose (a GC pause, a slow event loop):
 * the attempt is void and {@link timedIt} runs the test again from scratch.
 */
class JitterError extends Error {
  override readonly name = 'JitterError';
}

/** How late a call may run after its target instant and still count (half a millisecond). */
const JITTER_TOLERANCE_US = 500;

/** Backends that remember the Redis time their last script ran at (reported by every script). */
class ProbedRedisBackend extends RedisBackend {
  lastRedisTimeUs = Number.NaN;
  protected override observeRedisTime(redisTimeUs: number): void {
    this.lastRedisTimeUs = redisTimeUs;
  }
}
class ProbedSlidingRedisBackend extends SlidingRedisBackend {
  lastRedisTimeUs = Number.NaN;
  protected override observeRedisTime(redisTimeUs: number): void {
    this.lastRedisTimeUs = redisTimeUs;
  }
}
type AnyBackend = ProbedRedisBackend | ProbedSlidingRedisBackend;

/**
 * Places script calls at chosen instants of a virtual timeline on Redis's own clock: `at(t)`
 * makes the next calls run at virtual `t` ms (+ `aimUs`). Each clock starts its timeline 10 s
 * ahead of Redis's real time, at a whole millisecond.
 *
 * Calibration brackets Redis's clock: for a `TIME` sent at local `before` and answered at local
 * `after`, Redis's reading lies between `before + skew` and `after + skew`. The clock uses the
 * lowest skew compatible with every sample, so a call never runs before its target, only late by
 * its send latency. Every script reports the time it ran at, so {@link VirtualClock.run} knows
 * exactly how late a call was and throws {@link JitterError} past the tolerance: a test never
 * asserts on a decision made at another instant than the one it chose.
 */
class VirtualClock {
  private readonly baseUs: number;
  private targetUs: number;

  private constructor(private readonly skewUs: number) {
    this.baseUs = Math.ceil((localUs() + skewUs) / 1000) * 1000 + 10_000_000;
    this.targetUs = this.baseUs;
  }

  static async start(client: Redis): Promise<VirtualClock> {
    let low = -Infinity;
    for (let i = 0; i < 10; i++) {
      const [seconds, micros] = await client.time();
      const after = localUs();
      low = Math.max(low, Number(seconds) * 1e6 + Number(micros) - after);
    }
    return new VirtualClock(low);
  }

  /** The next calls run at virtual `ms` (plus `aimUs` microseconds into that millisecond). */
  at(ms: number, aimUs = 0): void {
    this.targetUs = this.baseUs + ms * 1000 + aimUs;
  }

  /** The next calls run at an exact virtual instant in microseconds. */
  atUs(us: number): void {
    this.targetUs = this.baseUs + us;
  }

  /** A Redis time or score (µs on the shifted clock) as virtual microseconds. */
  virtualUs(redisUs: number): number {
    return redisUs - this.baseUs;
  }

  /** The `timeOffsetMs` hook: called by the backend right before it sends a script. */
  readonly offset = (): number => (this.targetUs - (localUs() + this.skewUs)) / 1000;

  /** Runs one call of `backend` and throws {@link JitterError} if it did not run on target. */
  async run<T>(
    backend: AnyBackend,
    call: () => Promise<T>,
    toleranceUs = JITTER_TOLERANCE_US,
  ): Promise<T> {
    backend.lastRedisTimeUs = Number.NaN;
    const result = await call();
    const late = backend.lastRedisTimeUs - this.targetUs;
    if (!(late >= 0 && late < toleranceUs)) {
      throw new JitterError(`a call ran ${late} µs after its target (tolerance ${toleranceUs})`);
    }
    return result;
  }
}

let jitterRetries = 0;

/**
 * `it`, run again from scratch (`setup` first) when an attempt hit a {@link JitterError}; any
 * other failure fails the test at once. Attempts that pass or fail on their assertions all ran
 * every call at its chosen instant.
 */
function timedIt(name: string, setup: () => Promise<void>, body: () => Promise<void>): void {
  it(name, async () => {
    for (let attempt = 1; ; attempt++) {
      if (attempt > 1) jitterRetries++;
      await setup();
      try {
        await body();
        return;
      } catch (error) {
        if (!(error instanceof JitterError) || attempt >= 50) throw error;
      }
    }
  });
}

let prefixCounter = 0;
const RUN = Math.random().toString(36).slice(2, 8);

/** A fresh key prefix, so tests never see each other's keys (even on an external REDIS_URL). */
function freshPrefix(): string {
  prefixCounter += 1;
  return `rltest:${RUN}:${prefixCounter}:`;
}

function make(kind: Kind, client: Client, clock: VirtualClock, prefix = freshPrefix()): AnyBackend {
  const options = { prefix, timeOffsetMs: clock.offset };
  const backend =
    kind === 'fixed'
      ? new ProbedRedisBackend(client, options)
      : new ProbedSlidingRedisBackend(client, options);
  backends.push(backend);
  return backend;
}

/** Every key under `prefix` on every node of the topology. */
async function keysUnder(nodes: readonly Redis[], prefix: string): Promise<string[]> {
  const all = await Promise.all(nodes.map((node) => node.keys(`${prefix}*`)));
  return all.flat().sort();
}

beforeAll(async () => {
  [single, cluster] = await Promise.all([startRedisServer(), startRedisCluster()]);
}, 60_000);

afterAll(async () => {
  if (jitterRetries > 0) {
    process.stdout.write(`redis-backends.spec: ${jitterRetries} attempt(s) re-run after jitter\n`);
  }
  await Promise.allSettled(backends.map((backend) => backend.close()));
  // Disconnect before stopping the servers (a client whose socket is already gone leaves a timer).
  for (const client of clients) if (client.status !== 'end') client.disconnect();
  await Promise.allSettled([single?.stop(), cluster?.stop()]);
}, 30_000);

// ---------------------------------------------------------------------------------------------
// Behaviour shared by both backends, on both topologies
// ---------------------------------------------------------------------------------------------

interface Topology {
  readonly name: string;
  readonly clustered: boolean;
  client(): Promise<Client>;
  nodes(): Promise<Redis[]>;
}

const TOPOLOGIES: readonly Topology[] = [
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
    nodes: () => Promise.all(cluster.nodes.map(nodeClient)),
  },
];

describe.each(TOPOLOGIES)('on a $name', (topology) => {
  let client: Client;
  let nodes: Redis[];
  let timeSource: Redis;

  beforeAll(async () => {
    client = await topology.client();
    nodes = await topology.nodes();
    timeSource = nodes[0]!;
  });

  describe.each(['fixed', 'sliding'] as const)('%s window', (kind) => {
    let clock: VirtualClock;
    let backend: AnyBackend;
    let prefix: string;

    const setup = async (): Promise<void> => {
      clock = await VirtualClock.start(timeSource);
      prefix = freshPrefix();
      backend = make(kind, client, clock, prefix);
    };

    /** A request at the very start of virtual millisecond `t` (an admitted one is logged then). */
    const hit = (t: number, q: ConsumeQuery): Promise<ConsumeResult> => {
      clock.at(t);
      // The fixed window only needs the call in millisecond t; the log needs it before probes.
      return clock.run(backend, () => backend.consume(q), kind === 'fixed' ? 1_000 : 500);
    };
    /**
     * A request half a millisecond into `t`: for the sliding log (µs timestamps), later than the
     * entries logged by {@link hit} at the same millisecond, so boundaries and rounded-up waits
     * come out exact. The fixed window only sees whole milliseconds.
     */
    const probe = (t: number, q: ConsumeQuery): Promise<ConsumeResult> => {
      clock.at(t, 500);
      return clock.run(backend, () => backend.consume(q));
    };
    const unblock = (t: number, user: string): Promise<boolean> => {
      clock.at(t, 500);
      return clock.run(backend, () => backend.unblock(user));
    };
    const reset = (t: number, c: RateLimitCounter): Promise<boolean> => {
      clock.at(t, 500);
      return clock.run(backend, () => backend.reset(c));
    };

    timedIt(
      'test_multiple (second=1, minute=3): rejected requests consume nothing',
      setup,
      async () => {
        const q = query([unit('second', 1), unit('minute', 3)]);
        const admitted: boolean[] = [];
        admitted.push((await hit(0, q)).allowed);
        const rejected = await probe(0, q);
        expect(rejected).toMatchObject({ allowed: false, unit: 'second', retryAfterMs: SECOND });
        admitted.push(rejected.allowed);
        admitted.push((await probe(1_000, q)).allowed); // +1 s
        admitted.push((await probe(1_000, q)).allowed);
        admitted.push((await probe(3_000, q)).allowed); // +2 s: third of the minute
        // The original's sliding test expected 429 here (it logged rejected requests); not any more.
        expect(admitted).toEqual([true, false, true, false, true]);
        expect(await probe(4_000, q)).toMatchObject({ allowed: false, unit: 'minute' });
      },
    );

    timedIt('gives no free request at the end of a window', setup, async () => {
      const perSecond = query([unit('second', 1)]);
      expect((await hit(0, perSecond)).allowed).toBe(true);
      expect(await probe(999, perSecond)).toMatchObject({ allowed: false, retryAfterMs: 1 });
      expect((await probe(1_000, perSecond)).allowed).toBe(true);

      const perMinute = query([unit('minute', 1)], counter('bob'));
      expect((await hit(10_000, perMinute)).allowed).toBe(true);
      expect(await probe(10_000 + MINUTE - 1, perMinute)).toMatchObject({
        allowed: false,
        retryAfterMs: 1,
      });
      expect((await probe(10_000 + MINUTE, perMinute)).allowed).toBe(true);
    });

    timedIt('counts retryAfterMs down as time passes', setup, async () => {
      const q = query([unit('minute', 1)]);
      await hit(0, q);
      expect((await probe(0, q)).retryAfterMs).toBe(MINUTE);
      expect((await probe(2_000, q)).retryAfterMs).toBe(58_000);
      expect((await probe(59_999, q)).retryAfterMs).toBe(1);
    });

    timedIt('reports the longest wait among the exhausted units', setup, async () => {
      const both = query([unit('second', 1), unit('minute', 1)]);
      await hit(0, both);
      expect(await probe(500, both)).toMatchObject({
        allowed: false,
        unit: 'minute',
        retryAfterMs: 59_500,
      });

      const onlySecond = query([unit('second', 1), unit('minute', 5)], counter('bob'));
      await hit(1_000, onlySecond);
      expect(await probe(1_200, onlySecond)).toMatchObject({
        allowed: false,
        unit: 'second',
        retryAfterMs: 800,
      });
    });

    timedIt(
      'always rejects a limit of 0, with the unit window as the wait, writing nothing',
      setup,
      async () => {
        const q = query([unit('second', 5), unit('hour', 0)]);
        for (const t of [0, 10 * SECOND, 5 * HOUR]) {
          expect(await probe(t, q)).toEqual({
            allowed: false,
            retryAfterMs: HOUR,
            blocked: false,
            unit: 'hour',
            units: [
              { unit: 'second', limit: 5, windowMs: SECOND, remaining: 5, resetMs: SECOND },
              { unit: 'hour', limit: 0, windowMs: HOUR, remaining: 0, resetMs: HOUR },
            ],
          });
        }
        expect(await keysUnder(nodes, prefix)).toEqual([]);
      },
    );

    timedIt('reports remaining and resetMs for every unit, in query order', setup, async () => {
      const q = query([unit('second', 2), unit('minute', 10)]);
      expect((await hit(0, q)).units).toEqual([
        { unit: 'second', limit: 2, windowMs: SECOND, remaining: 1, resetMs: SECOND },
        { unit: 'minute', limit: 10, windowMs: MINUTE, remaining: 9, resetMs: MINUTE },
      ]);
      expect((await probe(400, q)).units).toEqual([
        { unit: 'second', limit: 2, windowMs: SECOND, remaining: 0, resetMs: 600 },
        { unit: 'minute', limit: 10, windowMs: MINUTE, remaining: 8, resetMs: 59_600 },
      ]);
      expect(await probe(500, q)).toEqual({
        allowed: false,
        retryAfterMs: 500,
        blocked: false,
        unit: 'second',
        units: [
          { unit: 'second', limit: 2, windowMs: SECOND, remaining: 0, resetMs: 500 },
          { unit: 'minute', limit: 10, windowMs: MINUTE, remaining: 8, resetMs: 59_500 },
        ],
      });
    });

    describe('blocks', () => {
      const limits = [unit('second', 1)];

      timedIt(
        'start with retryAfterMs = blockMs and cover every counter of the user only',
        setup,
        async () => {
          const q = query(limits, counter(), 5 * SECOND);
          await hit(0, q);
          expect(await probe(0, q)).toEqual({
            allowed: false,
            retryAfterMs: 5 * SECOND,
            blocked: true,
            unit: 'second',
            units: [{ unit: 'second', limit: 1, windowMs: SECOND, remaining: 0, resetMs: SECOND }],
          });
          const elsewhere = query([unit('hour', 1000)], counter('alice', 'zone:other', 'GET'));
          expect(await probe(100, elsewhere)).toEqual({
            allowed: false,
            retryAfterMs: 4_900,
            blocked: true,
            unit: undefined,
            units: [],
          });
          expect((await hit(100, query(limits, counter('bob'), 5 * SECOND))).allowed).toBe(true);
        },
      );

      timedIt(
        'are not extended by requests made while blocked, and end exactly',
        setup,
        async () => {
          const q = query(limits, counter(), 5 * SECOND);
          await hit(0, q);
          await probe(0, q);
          expect(await probe(3_000, q)).toMatchObject({ blocked: true, retryAfterMs: 2 * SECOND });
          expect(await probe(4_999, q)).toMatchObject({ blocked: true, retryAfterMs: 1 });
          expect(await probe(5_000, q)).toMatchObject({ allowed: true, blocked: false });
        },
      );

      timedIt('report the longer of the block and the unit wait', setup, async () => {
        const q = query([unit('minute', 1)], counter(), 5 * SECOND);
        await hit(0, q);
        expect(await probe(0, q)).toMatchObject({ blocked: true, retryAfterMs: MINUTE });
        expect(await probe(5_000, q)).toMatchObject({
          allowed: false,
          blocked: true,
          unit: 'minute',
          retryAfterMs: 55 * SECOND,
        });
      });

      timedIt('unblock lifts an active block and says whether there was one', setup, async () => {
        const q = query(limits, counter(), 5 * SECOND);
        expect(await unblock(0, 'alice')).toBe(false);
        await hit(0, q);
        await probe(0, q);
        expect(await unblock(0, 'alice')).toBe(true);
        expect(await unblock(0, 'alice')).toBe(false);
        expect((await probe(1_000, q)).allowed).toBe(true);
        await probe(1_000, q); // blocked again until 6 s
        expect(await unblock(6_000, 'alice')).toBe(false); // expired: nothing to lift
      });
    });

    timedIt(
      'reset forgets every unit of one counter only, and says whether any existed',
      setup,
      async () => {
        const limits = [unit('second', 1), unit('minute', 1)];
        const mine = query(limits);
        const other = query(limits, counter('alice', 'path:/b'));
        expect(await reset(0, mine.counter)).toBe(false);
        await hit(0, mine);
        await hit(0, other);
        expect((await probe(0, mine)).allowed).toBe(false);
        expect(await reset(0, mine.counter)).toBe(true);
        expect((await probe(0, mine)).allowed).toBe(true);
        expect((await probe(0, other)).allowed).toBe(false);
        expect(await reset(0, counter('nobody'))).toBe(false);
        expect(await reset(2 * MINUTE, other.counter)).toBe(false); // only expired entries left
      },
    );

    timedIt('reset does not lift the block', setup, async () => {
      const q = query([unit('second', 1)], counter(), 5 * SECOND);
      await hit(0, q);
      await probe(0, q);
      expect(await reset(0, q.counter)).toBe(true);
      expect(await probe(0, q)).toMatchObject({ allowed: false, blocked: true });
    });

    timedIt('keeps hostile user ids apart, every key of a call in one slot', setup, async () => {
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
      // Windows of a second and a minute: the exact instant of each call does not matter here.
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
        const keys =
          kind === 'fixed'
            ? [fixedWindowKey(prefix, c), blockKey(prefix, user)]
            : [
                slidingSequenceKey(prefix, c),
                slidingLogKey(prefix, c, limits[0]!),
                slidingLogKey(prefix, c, limits[1]!),
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
      expect(zoneKeys).toHaveLength(kind === 'fixed' ? 2 : 6);
      expect(found.filter((key) => !key.includes('{=v}'))).toEqual([...expected].sort());
    });

    timedIt('keeps working after SCRIPT FLUSH, deciding each request once', setup, async () => {
      const q = query([unit('minute', 3)]);
      await hit(0, q);
      await hit(1, q);
      await Promise.all(nodes.map((node) => node.script('FLUSH')));
      clock.at(2); // (the exact instant does not matter here; NOSCRIPT costs a second round trip)
      expect(await backend.consume(q)).toMatchObject({ allowed: true, units: [{ remaining: 0 }] });
      expect(await probe(3, q)).toMatchObject({ allowed: false, unit: 'minute' });
      if (kind === 'fixed') {
        const stored = await client.hget(fixedWindowKey(prefix, q.counter), 'minute');
        expect(stored?.split(':')[0]).toBe('3');
      } else {
        expect(await client.zcard(slidingLogKey(prefix, q.counter, q.limits[0]!))).toBe(3);
      }
    });

    timedIt('takes its time from Redis, not from the application clock', setup, async () => {
      const q = query([unit('minute', 2)], counter(), 10 * SECOND);
      const realNow = Date.now();
      const spy = jest.spyOn(Date, 'now');
      try {
        spy.mockReturnValue(realNow + 10 * 365 * 86_400_000); // ten years ahead
        backend = make(kind, client, clock, prefix);
        expect((await hit(0, q)).allowed).toBe(true);
        spy.mockReturnValue(realNow - 10 * 365 * 86_400_000); // ten years back
        expect(await probe(1_000, q)).toMatchObject({
          allowed: true,
          units: [{ remaining: 0, resetMs: 59_000 }],
        });
        spy.mockReturnValue(0);
        expect(await probe(2_000, q)).toMatchObject({
          allowed: false,
          blocked: true,
          retryAfterMs: 58_000,
        });
      } finally {
        spy.mockRestore();
      }
    });
  });

  describe('RedisBackend decides exactly like MemoryBackend', () => {
    it('on a long mixed sequence of requests, unblocks and resets', async () => {
      const clock = await VirtualClock.start(timeSource);
      const redis = make('fixed', client, clock) as ProbedRedisBackend;
      // MemoryBackend reads the millisecond Redis actually decided at (each script reports it),
      // so a call that runs late compares at its real instant instead of failing the test.
      let now = 0;
      const memory = new MemoryBackend({ clock: () => now, sweepIntervalMs: 0 });
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
      let seed = 42;
      const random = (n: number): number => {
        seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
        return seed % n;
      };
      /** Runs the Redis call at virtual `planned` ms (or later), then moves Memory's clock there. */
      const onRedis = async <T>(planned: number, call: () => Promise<T>): Promise<T> => {
        clock.at(Math.max(planned, now)); // never before the previous decision
        const result = await call();
        now = Math.floor(clock.virtualUs(redis.lastRedisTimeUs) / 1000);
        return result;
      };
      let planned = 0;
      let rejected = 0;
      let late = 0;
      for (let step = 0; step < 300; step++) {
        planned = Math.max(planned, now) + [0, 1, 7, 120, 480, 999, 1_000, 15_000][random(8)]!;
        const roll = random(40);
        let actual: unknown;
        let expected: unknown;
        if (roll === 0) {
          const user = `u${1 + random(2)}`;
          actual = await onRedis(planned, () => redis.unblock(user));
          expected = memory.unblock(user);
        } else if (roll === 1) {
          const c = counters[random(counters.length)]!;
          actual = await onRedis(planned, () => redis.reset(c));
          expected = memory.reset(c);
        } else {
          const q = query(
            rules[random(rules.length)]!,
            counters[random(counters.length)]!,
            random(6) === 0 ? [1_000, 2_500][random(2)]! : 0,
          );
          actual = await onRedis(planned, () => redis.consume(q));
          const result = memory.consume(q);
          if (!result.allowed) rejected++;
          expected = result;
        }
        if (now !== planned) late++;
        expect({ step, now, actual }).toEqual({ step, now, actual: expected });
      }
      expect(rejected).toBeGreaterThan(50); // the sequence really exercises rejections
      expect(late).toBeLessThan(30); // and almost every call ran at its planned millisecond
      memory.close();
    });
  });

  describe('SlidingRedisBackend', () => {
    let clock: VirtualClock;
    let backend: ProbedSlidingRedisBackend;
    let prefix: string;

    const setup = async (): Promise<void> => {
      clock = await VirtualClock.start(timeSource);
      prefix = freshPrefix();
      backend = make('sliding', client, clock, prefix) as ProbedSlidingRedisBackend;
    };

    const consumeAt = (us: number, q: ConsumeQuery): Promise<ConsumeResult> => {
      clock.atUs(us);
      return clock.run(backend, () => backend.consume(q), 1_000);
    };

    /** The log of one unit, oldest first, as virtual microseconds. */
    async function logTimes(c: RateLimitCounter, limit: UnitLimit): Promise<number[]> {
      const key = slidingLogKey(prefix, c, limit);
      const flat = await (client as Redis).zrange(key, '0', '-1', 'WITHSCORES'); // (Cluster: same)
      const times: number[] = [];
      for (let i = 1; i < flat.length; i += 2) times.push(clock.virtualUs(Number(flat[i])));
      return times;
    }

    timedIt(
      'rejects a request 1 ms before the oldest entry leaves, admits it once it left',
      setup,
      async () => {
        const second = unit('second', 1);
        const q = query([second]);
        expect((await consumeAt(0, q)).allowed).toBe(true);
        const [entry] = await logTimes(q.counter, second);
        expect(await consumeAt(entry! + 999_000, q)).toMatchObject({
          allowed: false,
          unit: 'second',
          retryAfterMs: 1,
        });
        expect((await consumeAt(entry! + 1_000_000, q)).allowed).toBe(true);
        expect(await logTimes(q.counter, second)).toHaveLength(1); // the old entry was dropped
      },
    );

    timedIt('admits an evenly spaced burst again exactly as each entry leaves', setup, async () => {
      const second = unit('second', 4);
      const q = query([second]);
      for (const t of [0, 250, 500, 750]) {
        expect((await consumeAt(t * 1000, q)).allowed).toBe(true);
      }
      for (let k = 0; k < 4; k++) {
        const times = await logTimes(q.counter, second);
        expect(times).toHaveLength(4);
        const oldest = times[0]!;
        // 100 ms and 1 ms before the oldest entry leaves: rejected, told to wait exactly that long.
        expect(await consumeAt(oldest + 900_000, q)).toMatchObject({
          allowed: false,
          retryAfterMs: 100,
        });
        expect(await consumeAt(oldest + 999_000, q)).toMatchObject({
          allowed: false,
          retryAfterMs: 1,
        });
        expect(await consumeAt(oldest + 1_000_000, q)).toMatchObject({
          allowed: true,
          units: [{ remaining: 0 }],
        });
      }
      // Each re-admission came 1 s after the entry it replaced: the spacing is kept.
      const times = await logTimes(q.counter, second);
      expect(times.map((t) => Math.floor(t / 1000))).toEqual([1_000, 1_250, 1_500, 1_750]);
    });

    timedIt('treats a log above a lowered limit as full', setup, async () => {
      const three = unit('minute', 3);
      const c = counter();
      for (const t of [0, 10_000, 20_000]) {
        expect((await consumeAt(t * 1000, query([three], c))).allowed).toBe(true);
      }
      const times = await logTimes(c, three);
      // Lowered to 1 while all three are in the window (at about 35 s): a request fits only once
      // two have left, i.e. when the entry at index count - limit = 2 (the newest) leaves.
      expect(await consumeAt(times[2]! + 15_000_000, query([unit('minute', 1)], c))).toMatchObject({
        allowed: false,
        unit: 'minute',
        retryAfterMs: 45_000,
        units: [{ remaining: 0, resetMs: 45_000 }],
      });
      expect((await consumeAt(times[2]! + 15_000_000, query([three], c))).allowed).toBe(false);
      expect((await consumeAt(times[2]! + 15_000_000, query([unit('minute', 5)], c))).allowed).toBe(
        true,
      );
      expect(await logTimes(c, three)).toHaveLength(4);
    });

    timedIt('logs every admitted request, even many at once (unique members)', setup, async () => {
      const day = unit('day', 10_000);
      const q = query([unit('second', 10_000), day]);
      clock.at(0);
      const n = 200;
      const results = await Promise.all(Array.from({ length: n }, () => backend.consume(q)));
      expect(results.every((result) => result.allowed)).toBe(true);
      const log = slidingLogKey(prefix, q.counter, day);
      expect(await client.zcard(log)).toBe(n);
      const members = await (client as Redis).zrange(log, '0', '-1'); // (Cluster: same API)
      expect(new Set(members).size).toBe(n);
      for (const member of members) expect(member).toMatch(/^\d+-\d+$/);
      // The sequence, not the time, makes members unique: requests sharing a microsecond still
      // count once each (all of the first n sequence numbers are there).
      const sequences = members.map((member) => Number(member.split('-')[1])).sort((a, b) => a - b);
      expect(sequences).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    });

    timedIt('reset also clears a non-standard window this process used', setup, async () => {
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

// ---------------------------------------------------------------------------------------------
// Single node only: command counting, clients, warnings
// ---------------------------------------------------------------------------------------------

describe('on a single node', () => {
  /** calls per command, from INFO commandstats. */
  async function commandCalls(node: Redis): Promise<Map<string, number>> {
    const info = await node.info('commandstats');
    const calls = new Map<string, number>();
    for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      calls.set(match[1]!, Number(match[2]));
    }
    return calls;
  }

  it.each(['fixed', 'sliding'] as const)('%s: exactly one command per decision', async (kind) => {
    const node = await singleClient();
    const observer = await singleClient();
    const clock = await VirtualClock.start(observer);
    const backend = make(kind, node, clock);
    const q = query([unit('second', 2), unit('minute', 5)], counter(), 3_000);
    clock.at(0);
    // Warm up: the first call of each script on a connection sends it whole (EVAL).
    await backend.consume(q);
    await backend.unblock('nobody');
    await backend.reset(counter('nobody'));

    // MONITOR shows every command a client sends, and marks those a script runs as "lua".
    const monitor = await observer.monitor();
    clients.push(monitor);
    const sent: string[] = [];
    const marker = `end-${RUN}-${kind}`;
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
      outcomes.push(result.allowed ? 'allowed' : result.units.length ? 'exhausted' : 'blocked');
    }
    await backend.unblock('alice');
    await backend.reset(q.counter);

    const after = await commandCalls(observer);
    await observer.echo(marker);
    await markerSeen;
    monitor.disconnect();

    // Every kind of decision was made...
    expect(new Set(outcomes)).toEqual(new Set(['allowed', 'exhausted', 'blocked']));
    // ...and each cost one script call (EVALSHA; EVAL the first time on a connection)...
    const delta = (command: string): number =>
      (after.get(command) ?? 0) - (before.get(command) ?? 0);
    expect(delta('evalsha') + delta('eval')).toBe(n + 2);
    // ...that ran once (every script reads TIME once)...
    expect(delta('time')).toBe(n + 2);
    // ...and nothing else was sent: only the observer's INFO besides the scripts.
    expect(sent.filter((command) => command !== 'info')).toEqual(
      Array.from({ length: n + 2 }, () => 'evalsha'),
    );
  });

  describe('clients', () => {
    afterEach(() => jest.restoreAllMocks());

    it('warns once per user-supplied client that has the offline queue on', async () => {
      const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      const queued = await ready(new Redis({ host: single.host, port: single.port }));
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
      ['a URL', (): string => single.url],
      ['connection options', (): object => ({ host: single.host, port: single.port })],
    ])('creates its own safe client from %s, and closes it', async (_, source) => {
      const clock = await VirtualClock.start(await singleClient());
      const backend = new SlidingRedisBackend(source() as string, {
        prefix: freshPrefix(),
        timeOffsetMs: clock.offset,
      });
      // Works at once: the first request waits for the first connection.
      clock.at(0);
      expect((await backend.consume(query([unit('second', 1)]))).allowed).toBe(true);
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
    [{ timeOffsetMs: 5 }, /"timeOffsetMs": must be a function/],
    [{ keyPrefix: 'x' }, /"keyPrefix".*did you mean "prefix"/],
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
  const T = 1_700_000_000_123_456;

  it('reads admitted, exhausted and blocked replies, and the Redis time', () => {
    expect(parseConsumeReply('X', [1, 0, 0, 0, T, 1, 1000, 9, 60000], limits)).toEqual({
      redisTimeUs: T,
      result: {
        allowed: true,
        retryAfterMs: 0,
        blocked: false,
        unit: undefined,
        units: [
          { unit: 'second', limit: 2, windowMs: SECOND, remaining: 1, resetMs: 1000 },
          { unit: 'minute', limit: 10, windowMs: MINUTE, remaining: 9, resetMs: 60000 },
        ],
      },
    });
    expect(parseConsumeReply('X', [0, 500, 1, 2, T, 0, 500, 0, 500], limits).result).toMatchObject({
      allowed: false,
      retryAfterMs: 500,
      blocked: true,
      unit: 'minute',
    });
    expect(parseConsumeReply('X', [0, 4900, 1, 0, T], limits).result).toEqual({
      allowed: false,
      retryAfterMs: 4900,
      blocked: true,
      unit: undefined,
      units: [],
    });
    expect(parseFlagReply('X', [1, T])).toEqual({ flag: true, redisTimeUs: T });
    expect(parseFlagReply('X', [0, T])).toEqual({ flag: false, redisTimeUs: T });
  });

  it.each([
    null,
    'OK',
    [],
    [1, 0, 0, 0],
    [1, 0, 0, 0, T, 1, 1000], // a unit missing
    [1, 0, 0, 0, T, 1, 1000, 9, 60000, 1, 1], // a unit too many
    [2, 0, 0, 0, T, 1, 1000, 9, 60000], // not a flag
    ['1', 0, 0, 0, T, 1, 1000, 9, 60000], // a string
    [1, 0, 0, 0, T, -1, 1000, 9, 60000], // negative
    [1, 0, 0, 0, T, 1.5, 1000, 9, 60000], // a fraction
    [1, 0, 0, 0, 1.5, 1, 1000, 9, 60000], // not a time
    [1, 5, 0, 0, T, 1, 1000, 9, 60000], // admitted with a wait
    [0, 0, 0, 1, T, 0, 0, 9, 60000], // rejected without a wait
    [0, 10, 0, 3, T, 0, 0, 9, 60000], // unit out of range
    [0, 0, 1, 0, T], // blocked without a wait
  ])('throws on the malformed consume reply %p', (reply) => {
    expect(() => parseConsumeReply('RedisBackend', reply, limits)).toThrow(
      /RedisBackend: unexpected reply/,
    );
  });

  it.each([null, 1, [1], [2, T], [1, T, 0], ['1', T]])(
    'throws on the malformed flag reply %p',
    (reply) => {
      expect(() => parseFlagReply('SlidingRedisBackend', reply)).toThrow(
        /SlidingRedisBackend: unexpected reply/,
      );
    },
  );
});
