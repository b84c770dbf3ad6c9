/**
 * LocalRejectCache on its own, with an injected clock: when an entry ends (at `t` exactly, or
 * within its millisecond where the result cannot say more), how answers move with time, what
 * keeps two queries apart, blocks, forgetting, the size bound and its options. Each scenario runs
 * the same calls on a second `MemoryBackend` without the cache (`alone`) at the same instants and
 * expects the same answers. Random schedules on every algorithm and backend, and the Redis call
 * counts, are in test/local-reject-cache.spec.ts.
 */
import { describe, expect, it } from '@jest/globals';
import { RateLimitConfigError } from '../rate-limit-config.error.js';
import type { RateLimitAlgorithm, UnitLimit } from '../rules/rule-units.js';
import { LocalRejectCache, type LocalRejectCacheOptions } from './local-reject-cache.js';
import { MemoryBackend } from './memory.backend.js';
import type { ConsumeQuery, ConsumeResult, RateLimitCounter } from './rate-limit.backend.js';

const SECOND: UnitLimit = { unit: 'second', limit: 2, windowMs: 1_000 };
const MINUTE: UnitLimit = { unit: 'minute', limit: 5, windowMs: 60_000 };

const alice: RateLimitCounter = { user: 'alice', scope: 'path:/a', method: '*' };

function query(
  limits: readonly UnitLimit[],
  counter: RateLimitCounter = alice,
  more: Partial<ConsumeQuery> = {},
): ConsumeQuery {
  return { counter, limits, blockMs: 0, ...more };
}

/** What one call through the cache gave, what the backend alone gave, and whether it was a hit. */
interface Decided {
  readonly got: ConsumeResult;
  readonly alone: ConsumeResult;
  readonly hit: boolean;
}

/**
 * A cache in front of a `MemoryBackend` (`algorithm` by default), a second one without it, and
 * their clock, which starts a quarter into millisecond 0 (readings are truncated).
 */
function twins(
  algorithm: RateLimitAlgorithm = 'fixed-window',
  options: LocalRejectCacheOptions = {},
) {
  let now = 0.25;
  const clock = (): number => now;
  const cached = new MemoryBackend({ clock, sweepIntervalMs: 0, algorithm });
  const alone = new MemoryBackend({ clock, sweepIntervalMs: 0, algorithm });
  const cache = new LocalRejectCache({ now: clock, algorithm, ...options });
  return {
    cache,
    cached,
    alone,
    /** Moves the clock to `t` ms (plus the quarter). */
    at(t: number): void {
      now = t + 0.25;
    },
    /** One decision as the service makes it, and the backend alone's. */
    decide(q: ConsumeQuery): Decided {
      const expected = alone.consume(q);
      const answer = cache.lookup(q);
      if (answer !== undefined) return { got: answer, alone: expected, hit: true };
      const askedAt = cache.now();
      const result = cached.consume(q);
      cache.remember(q, result, askedAt);
      return { got: result, alone: expected, hit: false };
    },
    /** `decide`, expecting the same answer as the backend alone; returns whether it was a hit. */
    same(q: ConsumeQuery): boolean {
      const { got, alone: expected, hit } = this.decide(q);
      expect(got).toEqual(expected);
      return hit;
    },
    /** `same` for `n` calls; how many the cache answered. */
    sameTimes(q: ConsumeQuery, n: number): number {
      let hits = 0;
      for (let i = 0; i < n; i++) if (this.same(q)) hits++;
      return hits;
    },
  };
}

describe('LocalRejectCache: when a rejection ends', () => {
  it('answers until t exactly, counting retryAfterMs and resetMs down, then asks the backend', () => {
    const rig = twins();
    const q = query([SECOND]);
    expect(rig.sameTimes(q, 2)).toBe(0); // admitted: a window from 0 to 1000
    rig.at(300);
    expect(rig.same(q)).toBe(false); // rejected until 1000
    const rejected = rig.decide(q);
    expect(rejected.hit).toBe(true);
    expect(rejected.got).toEqual({
      allowed: false,
      retryAfterMs: 700,
      blocked: false,
      unit: 'second',
      units: [{ ...SECOND, remaining: 0, resetMs: 700 }],
    });
    rig.at(999);
    const last = rig.decide(q);
    expect(last).toMatchObject({ hit: true, got: { retryAfterMs: 1, units: [{ resetMs: 1 }] } });
    expect(last.got).toEqual(last.alone);
    rig.at(1_000);
    expect(rig.same(q)).toBe(false); // t: admitted again
    expect(rig.decide(q).got.allowed).toBe(true);
  });

  it('gives the same answer object within one millisecond, so a flood allocates nothing', () => {
    const rig = twins();
    const q = query([SECOND]);
    rig.sameTimes(q, 3);
    rig.at(10);
    const first = rig.cache.lookup(q);
    expect(rig.cache.lookup(q)).toBe(first);
    rig.at(11);
    expect(rig.cache.lookup(q)).not.toBe(first);
  });

  it('times a rejection from when the backend was asked, so a late answer ends no later', () => {
    const cache = new LocalRejectCache({ now: () => now, algorithm: 'fixed-window' });
    let now = 500;
    const q = query([SECOND]);
    const result: ConsumeResult = {
      allowed: false,
      retryAfterMs: 700,
      blocked: false,
      unit: 'second',
      units: [{ ...SECOND, remaining: 0, resetMs: 700 }],
    };
    cache.remember(q, result, 100); // asked at 100, answered at 500
    expect(cache.lookup(q)).toMatchObject({ retryAfterMs: 300, units: [{ resetMs: 300 }] });
    now = 800;
    expect(cache.lookup(q)).toBeUndefined();
    // An answer that comes after its own end is not kept at all.
    cache.remember(q, result, 0);
    expect(cache.size).toBe(0);
  });

  it('keeps a fixed window’s units exact across their window ends, and a block to its end', () => {
    const rig = twins();
    // Five a minute, blocked 1.5 s when exceeded; two a second.
    const q = query([SECOND, MINUTE], alice, { blockMs: 90_000 });
    for (const t of [0, 0, 1_000, 1_000, 2_000]) {
      rig.at(t);
      rig.same(q);
    }
    rig.at(2_100);
    expect(rig.same(q)).toBe(false); // the 6th: the minute is exhausted, a 90 s block starts
    // The block outlasts the minute's window: known to end at retryAfterMs, answered throughout,
    // past the second's window end (fresh again), and past the minute's (no unit exhausted).
    for (const t of [2_101, 2_999, 3_000, 59_999, 60_000, 60_001, 92_099]) {
      rig.at(t);
      expect(rig.same(q)).toBe(true);
    }
    expect(rig.cache.lookup(q)).toMatchObject({ unit: undefined, retryAfterMs: 1 });
    rig.at(92_100);
    expect(rig.same(q)).toBe(false); // the block's end: admitted
  });

  it('keeps a block whose end the result does not give only within its millisecond', () => {
    const rig = twins();
    // A 300 ms block on a minute: each rejection after the block restarts it, which the cache
    // must let the backend do (the user's other counters see the new block).
    const q = query([MINUTE], alice, { blockMs: 300 });
    const other = query([MINUTE], { ...alice, scope: 'path:/b' });
    rig.sameTimes(q, 5);
    rig.at(1_000);
    expect(rig.same(q)).toBe(false); // blocked until 1300; retryAfterMs is the minute's 59 s
    expect(rig.same(q)).toBe(true); // the same millisecond
    rig.at(1_001);
    expect(rig.same(q)).toBe(false);
    rig.at(1_400);
    expect(rig.same(q)).toBe(false); // starts a new block, until 1700
    rig.at(1_500);
    const blocked = rig.decide(other);
    expect(blocked.got).toEqual(blocked.alone);
    expect(blocked.got).toMatchObject({ allowed: false, blocked: true });
  });

  it('keeps a sliding log’s block of cost 2 only within its millisecond when its wait may outlast the block', () => {
    const rig = twins('sliding-log');
    const five = { unit: 'second', limit: 5, windowMs: 1_000 } as const;
    const q = query([five], alice, { algorithm: 'sliding-log', cost: 2, blockMs: 300 });
    const one = query([five], alice, { algorithm: 'sliding-log' });
    const other = query([five], { ...alice, scope: 'path:/b' }, { algorithm: 'sliding-log' });
    rig.same(one); // an entry at 0
    rig.at(500);
    rig.sameTimes(one, 4); // four at 500: the log is full
    rig.at(600);
    // Blocked until 900; the cost of 2 fits when the second-oldest entry leaves, at 1500.
    expect(rig.decide(q).got).toMatchObject({ allowed: false, blocked: true, retryAfterMs: 900 });
    rig.at(900);
    expect(rig.same(q)).toBe(false); // the block ended: a new one starts, until 1200
    rig.at(1_100);
    const blocked = rig.decide(other);
    expect(blocked.got).toEqual(blocked.alone);
    expect(blocked.got).toMatchObject({ allowed: false, blocked: true });
  });

  it('keeps a rejection of a unit whose wait never counts down only within its millisecond', () => {
    for (const limits of [[{ ...SECOND, limit: 0 }], [SECOND]]) {
      const rig = twins();
      const q = query(limits, alice, { cost: 3 }); // a limit of 0, or a cost above the limit
      rig.at(100);
      expect(rig.same(q)).toBe(false);
      expect(rig.same(q)).toBe(true);
      rig.at(101);
      expect(rig.same(q)).toBe(false);
      expect(rig.decide(q).got.retryAfterMs).toBe(1_000);
    }
  });

  it('keeps only within its millisecond a query that names no algorithm, when not told the backend’s', () => {
    let now = 0;
    const backend = new MemoryBackend({ clock: () => now, sweepIntervalMs: 0 });
    const cache = new LocalRejectCache({ now: () => now });
    const q = query([SECOND]);
    for (let i = 0; i < 3; i++) cache.remember(q, backend.consume(q), now);
    expect(cache.lookup(q)).toMatchObject({ allowed: false });
    now = 1;
    expect(cache.lookup(q)).toBeUndefined();
    // Named, the algorithm is known.
    const named = query([SECOND], { ...alice, user: 'bob' }, { algorithm: 'fixed-window' });
    for (let i = 0; i < 3; i++) cache.remember(named, backend.consume(named), now);
    now = 999;
    expect(cache.lookup(named)).toMatchObject({ allowed: false, retryAfterMs: 2 });
  });

  it('remembers no admitted result, and no rejection without a wait', () => {
    const cache = new LocalRejectCache({ now: () => 0, algorithm: 'fixed-window' });
    const q = query([SECOND]);
    const units = [{ ...SECOND, remaining: 1, resetMs: 1_000 }];
    cache.remember(
      q,
      { allowed: true, retryAfterMs: 0, blocked: false, unit: undefined, units },
      0,
    );
    cache.remember(
      q,
      { allowed: false, retryAfterMs: 0, blocked: false, unit: 'second', units },
      0,
    );
    expect(cache.size).toBe(0);
    expect(cache.lookup(q)).toBeUndefined();
  });
});

describe('LocalRejectCache: how each algorithm moves', () => {
  it.each<[RateLimitAlgorithm]>([['sliding-window'], ['sliding-log'], ['token-bucket']])(
    '%s: a one-unit rule of cost 1 is answered until t, exactly',
    (algorithm) => {
      const rig = twins(algorithm);
      const q = query([SECOND], alice, { algorithm });
      let hits = 0;
      // A call every 7 ms for 5 s: each rejection is answered until the backend admits again.
      for (let t = 0; t < 5_000; t += 7) {
        rig.at(t);
        if (rig.same(q)) hits++;
      }
      expect(hits).toBeGreaterThan(600);
    },
  );

  it('token-bucket: units that refill are answered until their next token can come', () => {
    const rig = twins('token-bucket');
    const tenAMinute = { unit: 'minute', limit: 10, windowMs: 60_000 } as const;
    const q = query([SECOND, tenAMinute], alice, { algorithm: 'token-bucket' });
    rig.sameTimes(q, 2);
    rig.at(100);
    // The second's bucket is empty (a token each 500 ms): rejected until 500. The minute's has
    // 8 of 10 tokens, and a token comes each 6 s: it is known unchanged until then.
    expect(rig.same(q)).toBe(false);
    rig.at(499);
    expect(rig.same(q)).toBe(true);
    rig.at(500);
    expect(rig.same(q)).toBe(false);
  });

  it('sliding-window: a unit that holds nothing stays so, one that holds some is known within its millisecond', () => {
    const rig = twins('sliding-window');
    const q = query([SECOND, MINUTE], alice, { algorithm: 'sliding-window' });
    rig.sameTimes(q, 3); // the second rejects until the next aligned second
    rig.at(1);
    // The minute holds 2: its estimate falls as the window slides, by steps the result does not
    // give, so the rejection is not known past its millisecond.
    expect(rig.same(q)).toBe(false);
    expect(rig.same(q)).toBe(true);
  });
});

describe('LocalRejectCache: what keeps queries apart', () => {
  /** Rejects `q` on `rig` (three calls of a two-a-second rule). */
  function rejectedOnce(q: ConsumeQuery) {
    const rig = twins();
    rig.sameTimes(q, 3);
    expect(rig.cache.size).toBe(1);
    return rig;
  }

  it('the limits: two rules sharing a zone, or a dynamic limit with another value', () => {
    const zone = { user: 'alice', scope: 'zone:z', method: '*' };
    const rig = rejectedOnce(query([SECOND], zone));
    expect(rig.cache.lookup(query([{ ...SECOND, limit: 5 }], zone))).toBeUndefined();
    expect(rig.cache.lookup(query([{ ...SECOND, windowMs: 2_000 }], zone))).toBeUndefined();
    expect(rig.cache.lookup(query([{ ...SECOND, unit: 'window' }], zone))).toBeUndefined();
    expect(rig.cache.lookup(query([SECOND, MINUTE], zone))).toBeUndefined();
    expect(rig.cache.lookup(query([{ ...SECOND }], zone))).toMatchObject({ allowed: false });
  });

  it('the cost, the algorithm, the burst and the block', () => {
    const rig = rejectedOnce(query([SECOND]));
    // A cost of 2 is rejected too, but its wait may be longer: the backend must say.
    expect(rig.cache.lookup(query([SECOND], alice, { cost: 2 }))).toBeUndefined();
    expect(rig.cache.lookup(query([SECOND], alice, { cost: 1 }))).toMatchObject({ allowed: false });
    expect(rig.cache.lookup(query([SECOND], alice, { algorithm: 'sliding-log' }))).toBeUndefined();
    expect(rig.cache.lookup(query([SECOND], alice, { burst: 2 }))).toBeUndefined();
    expect(rig.cache.lookup(query([SECOND], alice, { blockMs: 1 }))).toBeUndefined();
  });

  it('a rejection of a higher cost says nothing about a lower one', () => {
    const rig = twins();
    const two = query([SECOND], alice, { cost: 2 });
    rig.same(two);
    expect(rig.same(two)).toBe(false);
    expect(rig.cache.lookup(query([SECOND]))).toBeUndefined();
  });

  it('the counter, with no collision between its parts', () => {
    const rig = rejectedOnce(query([SECOND], { user: 'c', scope: 'zone:ab', method: '*' }));
    for (const counter of [
      { user: 'c', scope: 'zone:a', method: 'b*' },
      { user: '*c', scope: 'zone:ab', method: '' },
      { user: 'c', scope: 'path:ab', method: '*' },
      { user: 'd', scope: 'zone:ab', method: '*' },
    ]) {
      expect(rig.cache.lookup(query([SECOND], counter))).toBeUndefined();
    }
  });
});

describe('LocalRejectCache: blocks and admissions', () => {
  it('answers a block only for the query it was returned for', () => {
    const rig = twins();
    const q = query([SECOND], alice, { blockMs: 5_000 });
    rig.sameTimes(q, 3);
    const other = query([SECOND], { ...alice, scope: 'path:/b' });
    expect(rig.cache.lookup(other)).toBeUndefined();
    expect(rig.same(other)).toBe(false); // the backend reports that counter's own units
    expect(rig.same(other)).toBe(true);
  });

  it('drops an unblocked rejection of the user once a block is remembered', () => {
    const rig = twins();
    const minute = query([MINUTE]);
    rig.sameTimes(minute, 6); // rejected until the minute's end, not blocked
    expect(rig.same(minute)).toBe(true);
    const blocking = query([SECOND], { ...alice, scope: 'path:/b' }, { blockMs: 5_000 });
    rig.sameTimes(blocking, 3); // blocks alice
    expect(rig.same(minute)).toBe(false); // the backend now reports the block
    expect(rig.same(minute)).toBe(true);
  });

  it('forgets every rejection of a counter once it admits a request of another rule', () => {
    const rig = twins();
    const zone = { user: 'alice', scope: 'zone:z', method: '*' };
    const strict = query([SECOND], zone);
    const loose = query([{ ...SECOND, limit: 4 }], zone);
    rig.sameTimes(strict, 3);
    expect(rig.same(strict)).toBe(true);
    expect(rig.same(loose)).toBe(false); // admitted: the counter changed
    expect(rig.cache.size).toBe(0);
    expect(rig.same(strict)).toBe(false);
  });
});

describe('LocalRejectCache: forgetting', () => {
  function threeRejected() {
    const rig = twins();
    const queries = [
      query([SECOND]),
      query([SECOND], alice, { cost: 2 }),
      query([SECOND], { ...alice, scope: 'path:/b' }),
      query([SECOND], { ...alice, user: 'bob' }),
    ];
    for (const q of queries) rig.sameTimes(q, 3);
    expect(rig.cache.size).toBe(4);
    return { rig, queries };
  }

  it('forgetCounter forgets every shape of that counter only', () => {
    const { rig, queries } = threeRejected();
    rig.cache.forgetCounter(alice);
    expect(queries.map((q) => rig.cache.lookup(q) !== undefined)).toEqual([
      false,
      false,
      true,
      true,
    ]);
    expect(rig.cache.size).toBe(2);
  });

  it('forgetUser forgets every counter of that user only', () => {
    const { rig, queries } = threeRejected();
    rig.cache.forgetUser('alice');
    expect(queries.map((q) => rig.cache.lookup(q) !== undefined)).toEqual([
      false,
      false,
      false,
      true,
    ]);
    expect(rig.cache.size).toBe(1);
  });

  it('does not remember a result asked for before a forget (it may predate the reset)', () => {
    let now = 10;
    const backend = new MemoryBackend({ clock: () => now, sweepIntervalMs: 0 });
    const cache = new LocalRejectCache({ now: () => now, algorithm: 'fixed-window' });
    const q = query([SECOND]);
    backend.consume(q);
    backend.consume(q);
    const askedAt = cache.now();
    const inFlight = backend.consume(q);
    now = 11;
    backend.reset(alice);
    cache.forgetCounter(alice);
    cache.remember(q, inFlight, askedAt);
    expect(cache.lookup(q)).toBeUndefined();
    now = 12;
    const afterwards = cache.now();
    cache.remember(q, inFlight, afterwards);
    expect(cache.lookup(q)).toMatchObject({ allowed: false });
  });
});

describe('LocalRejectCache: size', () => {
  it('holds at most maxEntries, dropping the one remembered earliest', () => {
    const rig = twins('fixed-window', { maxEntries: 3 });
    const users = ['u0', 'u1', 'u2', 'u3', 'u4'];
    for (const user of users) rig.sameTimes(query([MINUTE], { ...alice, user }), 6);
    expect(rig.cache.size).toBe(3);
    expect(
      users.map((user) => rig.cache.lookup(query([MINUTE], { ...alice, user })) !== undefined),
    ).toEqual([false, false, true, true, true]);
  });

  it('drops expired entries before live ones', () => {
    const rig = twins('fixed-window', { maxEntries: 3 });
    const long = (user: string) => query([MINUTE], { ...alice, user });
    rig.sameTimes(long('a'), 6); // until 60 s
    rig.sameTimes(query([SECOND], { ...alice, user: 'b' }), 3); // until 1 s
    rig.sameTimes(long('c'), 6);
    rig.at(5_000);
    rig.sameTimes(long('d'), 6);
    expect(rig.cache.size).toBe(3);
    expect(['a', 'c', 'd'].every((user) => rig.cache.lookup(long(user)) !== undefined)).toBe(true);
  });
});

describe('LocalRejectCache options', () => {
  it.each<[string, unknown, RegExp]>([
    ['a maxEntries of 0', { maxEntries: 0 }, /"maxEntries": must be a whole number from 1/],
    ['a fractional maxEntries', { maxEntries: 1.5 }, /"maxEntries"/],
    ['too large a maxEntries', { maxEntries: 2 ** 24 + 1 }, /"maxEntries"/],
    ['a clock that is no function', { now: 5 }, /"now": must be a function/],
    ['an unknown algorithm', { algorithm: 'leaky-bucket' }, /"algorithm": must be one of/],
    ['a misspelt option', { maxKeys: 5 }, /"maxKeys".*did you mean "maxEntries"/],
    ['no object', 'big', /"options": must be an object/],
  ])('rejects %s, naming the option', (_what, options, message) => {
    const create = () => new LocalRejectCache(options as LocalRejectCacheOptions);
    expect(create).toThrow(RateLimitConfigError);
    expect(create).toThrow(message);
  });

  it('works unconfigured, on a monotonic clock', () => {
    const cache = new LocalRejectCache();
    expect(cache.size).toBe(0);
    const before = performance.now();
    expect(cache.now()).toBeGreaterThanOrEqual(before);
  });
});
