/**
 * The conformance scenarios of the backend operations besides `consume`: `peek`, `release`,
 * `block` and `blockedFor` (lib/backends/rate-limit.backend.ts), registered by
 * {@link describeOperationScenarios} inside each fixture's `describe` of backend-conformance.ts,
 * so they run on every backend and algorithm that suite runs on, with its context: a fresh
 * backend per test on a virtual clock at time zero, and every call compared, exactly, with the
 * reference model fed the same calls. The numbers here are computed by hand for all four
 * algorithms (the comments show the arithmetic), which checks the model too.
 *
 * @module
 */
import { expect, it } from '@jest/globals';
import type { UnitState } from '../../lib/backends/rate-limit.backend.js';
import type { RateLimitAlgorithm } from '../../lib/rules/rule-units.js';
import type { Context } from './backend-conformance.js';
import {
  admitted,
  blockedEarlier,
  EVERY,
  HOUR,
  limitsOf,
  MINUTE,
  peeked,
  rejected,
  SECOND,
  unitState,
  type PerAlgorithm,
} from './expectations.js';

/**
 * Registers the scenarios for one algorithm; `context` gives the running test's context (it is
 * set in the suite's `beforeEach`).
 */
export function describeOperationScenarios(
  algorithm: RateLimitAlgorithm,
  context: () => Context,
): void {
  /** The expectation for this fixture's algorithm. */
  const per4 = <T>(expected: PerAlgorithm<T>): T => expected[algorithm];

  // ---------------------------------------------------------------------------------------------
  // peek
  // ---------------------------------------------------------------------------------------------

  it('peek shows a fresh counter full, as each algorithm reports a full unit', async () => {
    const { backend, counter, query, queryOf } = context();
    const second = (remaining: number, resetMs: number): UnitState =>
      unitState('second', 2, remaining, resetMs);
    const minute = (remaining: number, resetMs: number): UnitState =>
      unitState('minute', 3, remaining, resetMs);
    // A full bucket is full again in 0 ms; every window is whole at time zero.
    expect(await backend.peek(query({ second: 2, minute: 3 }, counter()))).toEqual(
      per4({
        ...EVERY(peeked(0, second(2, SECOND), minute(3, MINUTE))),
        'token-bucket': peeked(0, second(2, 0), minute(3, 0)),
      }),
    );
    // A bucket holds its burst; the other algorithms have no burst.
    expect(
      await backend.peek(queryOf(limitsOf({ second: 2 }), counter('burst'), { burst: 5 })),
    ).toEqual(
      per4({ ...EVERY(peeked(0, second(2, SECOND))), 'token-bucket': peeked(0, second(5, 0)) }),
    );
    // A limit of 0, as a rejected request reports it (see the limit-0 scenario).
    expect(await backend.peek(query({ second: 5, hour: 0 }, counter('zero')))).toEqual(
      peeked(
        0,
        unitState('second', 5, 5, per4({ ...EVERY(SECOND), 'token-bucket': 0 })),
        unitState('hour', 0, 0, HOUR),
      ),
    );
  });

  it('peek shows every unit exactly as consume reports it, and a peek between consumes changes no decision', async () => {
    const { at, backend, consume, counter, query } = context();
    const q = query({ second: 2, minute: 3 }, counter());
    const second = (remaining: number, resetMs: number): UnitState =>
      unitState('second', 2, remaining, resetMs);
    const minute = (remaining: number, resetMs: number): UnitState =>
      unitState('minute', 3, remaining, resetMs);

    // Token bucket: a request is 500 ms of the second's debt (2 per second), 20 s of the minute's.
    const first = await consume(q);
    expect(first).toEqual(
      per4({
        ...EVERY(admitted(second(1, SECOND), minute(2, MINUTE))),
        'token-bucket': admitted(second(1, 500), minute(2, 20_000)),
      }),
    );
    expect(await backend.peek(q)).toEqual(peeked(0, ...first.units));

    at(400);
    // Token bucket: 100 ms of the second's debt left (200 units) + 1000; the minute's 19.6 s
    // (58,800 units) + 60,000 = 118,800 units, full again in 39.6 s.
    const full = await consume(q);
    const standing = per4({
      ...EVERY([second(0, 600), minute(1, 59_600)]),
      'token-bucket': [second(0, 600), minute(1, 39_600)],
    });
    expect(full).toEqual(admitted(...standing));
    for (let i = 0; i < 3; i++) expect(await backend.peek(q)).toEqual(peeked(0, ...standing));
    // Rejected exactly as without the peeks. Sliding window: q + 1 > L, so in the next window,
    // from e = 1000 − floor(1 × 1000 / 2) = 500; token bucket: 200 units over, at 2 per ms.
    expect(await consume(q)).toEqual(
      rejected(
        per4({ ...EVERY(600), 'sliding-window': 1_100, 'token-bucket': 100 }),
        'second',
        standing,
      ),
    );
    expect(await backend.peek(q)).toEqual(peeked(0, ...standing));
  });

  it('peek during a block reports what is left of it on every counter, and neither starts nor extends a block', async () => {
    const { at, backend, consume, counter, query, user } = context();
    const q = query({ second: 1 }, counter(), 5 * SECOND);
    const second = (remaining: number, resetMs: number): UnitState =>
      unitState('second', 1, remaining, resetMs);
    expect(await consume(q)).toEqual(admitted(second(0, SECOND)));
    // Exhausted, and the query has a block: a peek starts none.
    expect(await backend.peek(q)).toEqual(peeked(0, second(0, SECOND)));
    expect(await backend.blockedFor(user())).toBe(0);
    expect(await consume(q)).toEqual(rejected(5 * SECOND, 'second', [second(0, SECOND)], true));

    at(1_200);
    // Sliding window: the previous second's request weighs 800 of 1000; the others are free.
    expect(await backend.peek(q)).toEqual(
      peeked(
        3_800,
        per4({
          ...EVERY(second(1, SECOND)),
          'sliding-window': second(0, 800),
          'token-bucket': second(1, 0),
        }),
      ),
    );
    // Another counter of the blocked user: its own units, the user's block.
    expect(await backend.peek(query({ hour: 3 }, counter('alice', 'zone:other')))).toEqual(
      peeked(
        3_800,
        unitState(
          'hour',
          3,
          3,
          per4({ ...EVERY(HOUR), 'sliding-window': HOUR - 1_200, 'token-bucket': 0 }),
        ),
      ),
    );
    // Another user: not blocked.
    expect(await backend.peek(query({ second: 1 }, counter('bob')))).toEqual(
      peeked(
        0,
        per4({
          ...EVERY(second(1, SECOND)),
          'sliding-window': second(1, 800),
          'token-bucket': second(1, 0),
        }),
      ),
    );
    at(4_999);
    expect((await backend.peek(q)).blockedMs).toBe(1);
    at(5_000);
    expect(await backend.peek(q)).toEqual(
      peeked(0, per4({ ...EVERY(second(1, SECOND)), 'token-bucket': second(1, 0) })),
    );
    // The block ended when it was due: no peek extended it.
    expect(await consume(q)).toEqual(admitted(second(0, SECOND)));
  });

  // ---------------------------------------------------------------------------------------------
  // release
  // ---------------------------------------------------------------------------------------------

  it('release gives the cost back in every unit of the rule: what it rejected fits again, and no more', async () => {
    const { at, backend, consume, counter, queryOf } = context();
    const q = queryOf(limitsOf({ second: 5, minute: 10 }), counter(), { cost: 3 });
    const second = (remaining: number, resetMs: number): UnitState =>
      unitState('second', 5, remaining, resetMs);
    const minute = (remaining: number, resetMs: number): UnitState =>
      unitState('minute', 10, remaining, resetMs);
    // Token bucket: 3 tokens are 3000 units of the second (600 ms at 5 per ms), 180,000 of the
    // minute (18 s at 10 per ms).
    const taken = per4({
      ...EVERY([second(2, SECOND), minute(7, MINUTE)]),
      'token-bucket': [second(2, 600), minute(7, 18_000)],
    });
    expect(await consume(q)).toEqual(admitted(...taken));
    // 3 + 3 > 5. Sliding window: in the next window, from e = 1000 − floor(2 × 1000 / 3) = 334;
    // token bucket: 1000 units over, at 5 per ms.
    expect(await consume(q)).toEqual(
      rejected(
        per4({ ...EVERY(SECOND), 'sliding-window': 1_334, 'token-bucket': 200 }),
        'second',
        taken,
      ),
    );

    at(100);
    await backend.release(q);
    // Every unit full again. The windows keep running (their end stays); the log is empty; the
    // buckets owed less than the cost by now (2500 and 179,000 units), so they are full.
    expect(await backend.peek(q)).toEqual(
      per4({
        ...EVERY(peeked(0, second(5, 900), minute(10, 59_900))),
        'sliding-log': peeked(0, second(5, SECOND), minute(10, MINUTE)),
        'token-bucket': peeked(0, second(5, 0), minute(10, 0)),
      }),
    );
    const again = per4({
      ...EVERY([second(2, 900), minute(7, 59_900)]),
      'sliding-log': [second(2, SECOND), minute(7, MINUTE)],
      'token-bucket': [second(2, 600), minute(7, 18_000)],
    });
    expect(await consume(q)).toEqual(admitted(...again));
    // Exactly the cost came back: a second request of cost 3 is rejected as before.
    expect(await consume(q)).toEqual(
      rejected(
        per4({
          ...EVERY(900),
          'sliding-window': 1_234,
          'sliding-log': SECOND,
          'token-bucket': 200,
        }),
        'second',
        again,
      ),
    );
  });

  it('release never goes below zero, and frees nothing on a counter it never counted', async () => {
    const { backend, consume, consumeEach, counter, query } = context();
    const q = query({ minute: 3 }, counter());
    const minute = (remaining: number, resetMs: number): UnitState =>
      unitState('minute', 3, remaining, resetMs);
    const fresh = peeked(0, minute(3, per4({ ...EVERY(MINUTE), 'token-bucket': 0 })));
    await backend.release(q);
    expect(await backend.peek(q)).toEqual(fresh);
    expect(await consume(q)).toEqual(
      admitted(minute(2, per4({ ...EVERY(MINUTE), 'token-bucket': 20_000 }))),
    );
    for (let i = 0; i < 3; i++) await backend.release(q);
    expect(await backend.peek(q)).toEqual(fresh);
    // Three, not more: the extra releases gave nothing.
    const results = await consumeEach([q, q, q, q]);
    expect(results.map((r) => r.allowed)).toEqual([true, true, true, false]);
    // Sliding window: q + 1 > L, so in the next window, from e = 60 s − floor(2 × 60 s / 3);
    // token bucket: one token (60,000 units) over, at 3 per ms.
    expect(results[3]).toEqual(
      rejected(
        per4({ ...EVERY(MINUTE), 'sliding-window': 80_000, 'token-bucket': 20_000 }),
        'minute',
        [minute(0, MINUTE)],
      ),
    );
  });

  it('release frees nothing once the window the request was counted in no longer weighs', async () => {
    const { at, backend, consume, consumeEach, counter, query } = context();
    const second = (remaining: number, resetMs: number): UnitState =>
      unitState('second', 2, remaining, resetMs);
    const a = query({ second: 2 }, counter('a'));
    const b = query({ second: 2 }, counter('b'));
    await consumeEach([a, a, b, b]);

    at(1_200);
    // Only the sliding window still counts the requests of [0, 1000): 2 × 800 of 2 × 1000.
    const free = per4({ ...EVERY(second(2, SECOND)), 'token-bucket': second(2, 0) });
    expect(await backend.peek(a)).toEqual(
      peeked(0, per4({ ...EVERY(free), 'sliding-window': second(0, 800) })),
    );
    await backend.release(a);
    // The sliding window gives back in the previous window (1 × 800 left); the fixed window and
    // the log ended at 1000, and the bucket is full: nothing to give.
    expect(await backend.peek(a)).toEqual(
      peeked(0, per4({ ...EVERY(free), 'sliding-window': second(1, 800) })),
    );
    expect(await consume(a)).toEqual(
      per4({
        ...EVERY(admitted(second(1, SECOND))),
        'sliding-window': admitted(second(0, 800)), // 800 + 1000 ≤ 2000
        'token-bucket': admitted(second(1, 500)),
      }),
    );

    at(2_000);
    // Two windows on, nothing of [0, 1000) counts under any algorithm: releasing b gives nothing,
    // and b's new window holds two, as if the release never came.
    await backend.release(b);
    expect(await backend.peek(b)).toEqual(peeked(0, free));
    const results = await consumeEach([b, b, b]);
    expect(results.map((r) => r.allowed)).toEqual([true, true, false]);
    // Sliding window: the next window, from e = 1000 − floor(1000 / 2); token bucket: 1000 units
    // over at 2 per ms.
    expect(results[2]).toEqual(
      rejected(per4({ ...EVERY(SECOND), 'sliding-window': 1_500, 'token-bucket': 500 }), 'second', [
        second(0, SECOND),
      ]),
    );
  });

  it('release takes the newest entries of a log, the current window’s count, a bucket’s debt down to full', async () => {
    const { at, backend, consume, counter, query } = context();
    const q = query({ second: 3 }, counter());
    const second = (remaining: number, resetMs: number): UnitState =>
      unitState('second', 3, remaining, resetMs);
    for (const t of [0, 300, 600]) {
      at(t);
      expect((await consume(q)).allowed).toBe(true);
    }
    at(700);
    await backend.release(q);
    // Fixed and sliding window: 2 of 3 counted, window ends at 1000. Log: 0 and 300 left (600 was
    // the newest), 0 leaves at 1000. Bucket: it owed 900 units (300 ms at 3 per ms), less than a
    // token's 1000: full.
    expect(await backend.peek(q)).toEqual(
      peeked(0, per4({ ...EVERY(second(1, 300)), 'token-bucket': second(3, 0) })),
    );
    at(1_300);
    // The log is empty by now (had the release taken its oldest entry, 600 would still count);
    // the sliding window's previous second weighs 2 × 700.
    expect(await backend.peek(q)).toEqual(
      peeked(
        0,
        per4({
          ...EVERY(second(3, SECOND)),
          'sliding-window': second(1, 700),
          'token-bucket': second(3, 0),
        }),
      ),
    );
  });

  it('releases made at once give back exactly what the admitted requests took', async () => {
    const { backend, consume, consumeAtOnce, counter, query } = context();
    const q = query({ minute: 10 }, counter());
    const results = await consumeAtOnce(Array.from({ length: 30 }, () => q));
    const admittedOnes = results.filter((r) => r.allowed);
    expect(admittedOnes).toHaveLength(10);
    await Promise.all(admittedOnes.map(() => backend.release(q)));
    expect(await backend.peek(q)).toEqual(
      peeked(0, unitState('minute', 10, 10, per4({ ...EVERY(MINUTE), 'token-bucket': 0 }))),
    );
    expect((await consume(q)).allowed).toBe(true);
  });

  // ---------------------------------------------------------------------------------------------
  // block and blockedFor
  // ---------------------------------------------------------------------------------------------

  it('block blocks the user on every counter for its length: consume rejects with blocked, blockedFor counts down', async () => {
    const { at, backend, consume, counter, query, user } = context();
    const fiveASecond = (resetMs: number, remaining = 5): UnitState =>
      unitState('second', 5, remaining, resetMs);
    const q = query({ second: 5 }, counter());
    expect(await backend.blockedFor(user())).toBe(0);
    await backend.block(user(), 5 * SECOND);
    expect(await backend.blockedFor(user())).toBe(5 * SECOND);
    expect(await consume(q)).toEqual(
      blockedEarlier(5 * SECOND, [fiveASecond(per4({ ...EVERY(SECOND), 'token-bucket': 0 }))]),
    );
    // Not another user, even on the same counter's scope.
    expect(await backend.blockedFor(user('bob'))).toBe(0);
    expect(await consume(query({ second: 5 }, counter('bob')))).toEqual(
      admitted(fiveASecond(per4({ ...EVERY(SECOND), 'token-bucket': 200 }), 4)),
    );

    at(1_500);
    expect(await backend.blockedFor(user())).toBe(3_500);
    expect(await consume(query({ hour: 3 }, counter('alice', 'zone:other')))).toEqual(
      blockedEarlier(3_500, [
        unitState(
          'hour',
          3,
          3,
          per4({ ...EVERY(HOUR), 'sliding-window': HOUR - 1_500, 'token-bucket': 0 }),
        ),
      ]),
    );
    at(4_999);
    expect(await backend.blockedFor(user())).toBe(1);
    expect(await consume(q)).toEqual(
      blockedEarlier(1, [
        fiveASecond(per4({ ...EVERY(SECOND), 'sliding-window': 1, 'token-bucket': 0 })),
      ]),
    );
    at(5_000);
    expect(await backend.blockedFor(user())).toBe(0);
    // Nothing the block rejected was counted.
    expect(await consume(q)).toEqual(
      admitted(fiveASecond(per4({ ...EVERY(SECOND), 'token-bucket': 200 }), 4)),
    );
  });

  it('block replaces a running block, a longer one with a shorter one too, and unblock lifts it', async () => {
    const { at, backend, consume, counter, query, user } = context();
    const second = (remaining: number, resetMs: number): UnitState =>
      unitState('second', 1, remaining, resetMs);
    const q = query({ second: 1 }, counter(), 10 * SECOND);
    expect(await consume(q)).toEqual(admitted(second(0, SECOND)));
    expect(await consume(q)).toEqual(rejected(10 * SECOND, 'second', [second(0, SECOND)], true));
    expect(await backend.blockedFor(user())).toBe(10 * SECOND);
    // The rule's block of 10 s gives way to one of 2 s.
    await backend.block(user(), 2 * SECOND);
    expect(await backend.blockedFor(user())).toBe(2 * SECOND);

    at(1_000);
    // Sliding window: the previous second's request weighs a whole W at e = 0, so the unit waits
    // until the next window; the others have room, and only the block rejects.
    expect(await consume(q)).toEqual(
      per4({
        ...EVERY(blockedEarlier(SECOND, [second(1, SECOND)])),
        'sliding-window': blockedEarlier(SECOND, [second(0, SECOND)], 'second'),
        'token-bucket': blockedEarlier(SECOND, [second(1, 0)]),
      }),
    );
    at(2_000);
    expect(await backend.blockedFor(user())).toBe(0);
    expect(await consume(q)).toEqual(admitted(second(0, SECOND)));

    await backend.block(user(), MINUTE);
    expect(await backend.blockedFor(user())).toBe(MINUTE);
    expect(await backend.unblock(user())).toBe(true);
    expect(await backend.blockedFor(user())).toBe(0);
    expect(await backend.unblock(user())).toBe(false);
    expect(await consume(query({ hour: 2 }, counter('alice', 'zone:free')))).toEqual(
      admitted(
        unitState(
          'hour',
          2,
          1,
          per4({ ...EVERY(HOUR), 'sliding-window': HOUR - 2_000, 'token-bucket': 1_800_000 }),
        ),
      ),
    );
  });

  it('block and blockedFor keep users apart, braces and all', async () => {
    const { backend, consume, counter, query, user } = context();
    const names = ['{x}', '{x', 'x}', 'x', '%7Bx%7D', '{x}{'];
    await backend.block(user('{x}'), 3 * SECOND);
    for (const name of names) {
      expect([name, await backend.blockedFor(user(name))]).toEqual([
        name,
        name === '{x}' ? 3 * SECOND : 0,
      ]);
      const result = await consume(query({ minute: 1 }, counter(name, 'zone:{x}')));
      expect([name, result.allowed, result.blocked]).toEqual([
        name,
        name !== '{x}',
        name === '{x}',
      ]);
    }
  });

  it('block refuses a length that is not a whole number of milliseconds of at least 1', async () => {
    const { raw, backend, user } = context();
    for (const ms of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
      // Sync or async, as the backend throws it.
      await expect(Promise.resolve().then(() => raw.block(user(), ms))).rejects.toThrow(
        /block\(user, ms\) needs a whole number of milliseconds of at least 1/,
      );
    }
    expect(await backend.blockedFor(user())).toBe(0);
  });
}
