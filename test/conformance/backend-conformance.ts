/**
 * One conformance suite for every {@link RateLimitBackend}: the decision scenarios of the backend
 * contract (lib/backends/rate-limit.backend.ts, SPEC 2.2, 2.3 and 2.5), with exact expected values,
 * run unchanged against any backend through a {@link BackendFixture}.
 *
 * A spec file calls {@link describeBackendConformance} once per fixture:
 *
 * ```ts
 * describeBackendConformance({ name: 'memory', algorithm: 'token-bucket', namesAlgorithm: true,
 *   create: async () => ... });
 * ```
 *
 * Time: every scenario starts at the fixture's time zero and moves time only through
 * `advance(ms)`, always forwards, in whole milliseconds. The expected numbers assume that time
 * stands still between two `advance` calls (a virtual clock), at millisecond resolution, so a
 * fixture must give its backend a clock that only `advance` moves: `MemoryBackend`'s `clock`, or
 * the Redis backends' `testClock`, which their scripts use instead of Redis's `TIME`. Batches of
 * concurrent calls only check decisions.
 *
 * Isolation: each test gets a fresh backend from `create()` and, on top of that, its own user ids
 * (a per-run random tag plus a per-test number), so fixtures may share one Redis server and key
 * prefix between tests and between spec files.
 *
 * Time zero is the first instant at or after the fixture's start that is a multiple of
 * {@link ALIGNMENT_MS} on the backend's clock, so that the sliding window's aligned windows start
 * at time zero for every unit the scenarios use.
 *
 * Algorithms (see `RateLimitAlgorithm`): every scenario runs for the fixture's algorithm, and
 * every call made one after the other is also compared, exactly, with the reference model
 * (test/support/reference-models.ts) fed the same calls at the same times. The first scenarios
 * were written for fixed-window and sliding-log (a fixed window covers `[start, start + window)`
 * from the first request after the previous window ended; a sliding log admits a request at `t`
 * when fewer than `limit` admitted requests have timestamps in `(t - window, t]`); their
 * hand-written numbers are asserted with `classicExpect`, for those two algorithms, while
 * sliding-window and token-bucket follow the model at every step of them. The scenarios that use
 * `per4` (the first one, limit 0, and those from "Costs" on) carry hand-computed numbers for
 * all four algorithms, which checks the model too.
 *
 * The scenarios of `peek`, `release`, `block` and `blockedFor` live in operation-scenarios.ts and
 * run inside each fixture's `describe`, with the same context; the expected values' builders are
 * in expectations.ts.
 *
 * @module
 */
import { describe, expect, it, beforeEach, afterEach } from '@jest/globals';
import type {
  ConsumeQuery,
  ConsumeResult,
  PeekResult,
  RateLimitBackend,
  RateLimitCounter,
  UnitState,
} from '../../lib/backends/rate-limit.backend.js';
import type { RateLimitAlgorithm, UnitLimit } from '../../lib/rules/rule-units.js';
import { ReferenceBackend } from '../support/reference-models.js';
import {
  admitted,
  blockedEarlier,
  EVERY,
  HOUR,
  limitsOf,
  MINUTE,
  rejected,
  SECOND,
  unitState,
  type PerAlgorithm,
  type Units,
} from './expectations.js';
import { describeOperationScenarios } from './operation-scenarios.js';

/** How a spec file plugs one backend (and its clock) into the suite. */
export interface BackendFixture {
  /** Short name for test titles, e.g. 'memory', 'redis (cluster)'. */
  readonly name: string;
  /** The algorithm every scenario counts with. */
  readonly algorithm: RateLimitAlgorithm;
  /**
   * Whether queries name {@link algorithm} (`ConsumeQuery.algorithm`); false: they name none,
   * and the backend's default must be that algorithm.
   */
  readonly namesAlgorithm: boolean;
  /** A fresh backend on a virtual clock that only `advance` moves. */
  create(): Promise<VirtualClockBackend>;
}

/** A backend under test with the virtual clock it runs on (what a fixture's `create()` gives). */
export interface VirtualClockBackend {
  readonly backend: RateLimitBackend;
  /** The backend's clock in ms (a fraction is fine: backends truncate it). */
  now(): number;
  advance(ms: number): void;
  close(): Promise<void>;
}

/**
 * Time zero is aligned to this, on the backend's clock: a 31-day month is a multiple of every
 * named unit's window and of the custom windows the scenarios use.
 */
const ALIGNMENT_MS = 2_678_400_000;

/** Random per module instance (spec file), so spec files sharing a Redis server stay apart. */
const RUN = Math.random().toString(36).slice(2, 10);
let testNumber = 0;

/**
 * The backend's methods besides `consume`, each also run on the model and compared with it
 * (queries get the fixture's algorithm as for `consume`).
 */
export interface Admin {
  reset(counter: RateLimitCounter): Promise<boolean>;
  unblock(user: string): Promise<boolean>;
  peek(query: ConsumeQuery): Promise<PeekResult>;
  release(query: ConsumeQuery): Promise<void>;
  block(user: string, ms: number): Promise<void>;
  blockedFor(user: string): Promise<number>;
}

/** What one test works with. */
export interface Context {
  readonly backend: Admin;
  /** The backend itself, for calls the model has no answer to (bad arguments). */
  readonly raw: RateLimitBackend;
  /** A user id no other test (of any fixture, in any spec file of this run) uses. */
  user(name?: string): string;
  /** A counter of `user(name)`. */
  counter(name?: string, scope?: string, method?: string): RateLimitCounter;
  /** A query for `counter`, with the units of a rule. */
  query(units: Units, counter: RateLimitCounter, blockMs?: number): ConsumeQuery;
  /** A query for `counter` with hand-built units, a cost, a burst. */
  queryOf(
    limits: readonly UnitLimit[],
    counter: RateLimitCounter,
    options?: { blockMs?: number; cost?: number; burst?: number },
  ): ConsumeQuery;
  /** Moves the clock to `t` ms after time zero (never backwards). */
  at(t: number): void;
  /**
   * The backend's decision, whether it returns a value or a Promise, compared with the model's.
   * The query gets the fixture's algorithm when it names none and the fixture names it.
   */
  consume(query: ConsumeQuery): Promise<ConsumeResult>;
  /** `consume` for each query in order, one after the other. */
  consumeEach(queries: readonly ConsumeQuery[]): Promise<ConsumeResult[]>;
  /**
   * Every query at once: the model counts them in the order given, and as the backend may
   * decide them in any order, only their number of admissions is compared with it.
   */
  consumeAtOnce(queries: readonly ConsumeQuery[]): Promise<ConsumeResult[]>;
}

/** Matchers that check nothing, for {@link classicExpect} under the other algorithms. */
const NOTHING: unknown = new Proxy(() => undefined, {
  get: (_target, property) => (property === 'then' ? undefined : NOTHING),
  apply: () => undefined,
});

/**
 * Registers the conformance scenarios for one backend fixture: one `describe` named after it, one
 * `it` per scenario, each with a fresh backend from `fixture.create()` closed after the test.
 */
export function describeBackendConformance(fixture: BackendFixture): void {
  const algorithm = fixture.algorithm;
  const sliding = algorithm === 'sliding-log';
  /** Whether the scenarios' hand-written numbers of fixed-window and sliding-log apply. */
  const classic = sliding || algorithm === 'fixed-window';
  /**
   * `expect` for the numbers of the scenarios written for fixed-window and sliding-log; under the
   * other algorithms it checks nothing, as the model check of every call covers those steps.
   */
  const classicExpect = (classic ? expect : () => NOTHING) as typeof expect;
  /** The expectation for this fixture's algorithm, among fixed-window and sliding-log. */
  const per = <T>(expected: { fixed: T; sliding: T }): T =>
    sliding ? expected.sliding : expected.fixed;
  /** The expectation for this fixture's algorithm. */
  const per4 = <T>(expected: PerAlgorithm<T>): T => expected[algorithm];

  describe(`RateLimitBackend conformance: ${fixture.name} (${algorithm})`, () => {
    let made: Awaited<ReturnType<BackendFixture['create']>> | undefined;
    let ctx: Context;

    beforeEach(async () => {
      testNumber += 1;
      const tag = `cf-${RUN}-${testNumber}-`;
      const current = await fixture.create();
      made = current;
      const start = Math.floor(current.now());
      current.advance((ALIGNMENT_MS - (start % ALIGNMENT_MS)) % ALIGNMENT_MS);
      const model = new ReferenceBackend(algorithm);
      const modelNow = (): number => Math.floor(current.now());
      let calls = 0;
      let now = 0;
      const user = (name = 'alice'): string => `${tag}${name}`;
      const counter = (name = 'alice', scope = 'path:/conformance', method = '*') => ({
        user: user(name),
        scope,
        method,
      });
      const withAlgorithm = (query: ConsumeQuery): ConsumeQuery =>
        fixture.namesAlgorithm && query.algorithm === undefined ? { ...query, algorithm } : query;
      /** The backend's and the model's answers to one call, compared when `compare`. */
      async function both<T>(
        what: string,
        onModel: () => T,
        onBackend: () => T | Promise<T>,
      ): Promise<T> {
        calls += 1;
        const call = calls;
        const expected = onModel();
        const got = await onBackend();
        expect({ call, what, result: got, versus: 'the reference model' }).toEqual({
          call,
          what,
          result: expected,
          versus: 'the reference model',
        });
        return got;
      }
      const consume = (query: ConsumeQuery): Promise<ConsumeResult> => {
        const q = withAlgorithm(query);
        return both(
          'consume',
          () => model.consume(q, modelNow()),
          () => current.backend.consume(q),
        );
      };
      ctx = {
        raw: current.backend,
        backend: {
          reset: (target) =>
            both(
              'reset',
              () => model.reset(target, modelNow()),
              () => current.backend.reset(target),
            ),
          unblock: (name) =>
            both(
              'unblock',
              () => model.unblock(name, modelNow()),
              () => current.backend.unblock(name),
            ),
          peek: (query) => {
            const q = withAlgorithm(query);
            return both(
              'peek',
              () => model.peek(q, modelNow()),
              () => current.backend.peek(q),
            );
          },
          release: (query) => {
            const q = withAlgorithm(query);
            return both(
              'release',
              () => model.release(q, modelNow()),
              () => current.backend.release(q),
            );
          },
          block: (name, ms) =>
            both(
              'block',
              () => model.block(name, ms, modelNow()),
              () => current.backend.block(name, ms),
            ),
          blockedFor: (name) =>
            both(
              'blockedFor',
              () => model.blockedFor(name, modelNow()),
              () => current.backend.blockedFor(name),
            ),
        },
        user,
        counter,
        query: (units, target, blockMs = 0) => ({
          counter: target,
          limits: limitsOf(units),
          blockMs,
        }),
        queryOf: (limits, target, { blockMs = 0, cost, burst } = {}) => ({
          counter: target,
          limits,
          blockMs,
          ...(cost === undefined ? {} : { cost }),
          ...(burst === undefined ? {} : { burst }),
        }),
        at(t) {
          if (t < now) throw new Error(`the clock cannot go back from ${now} ms to ${t} ms`);
          if (t > now) current.advance(t - now);
          now = t;
        },
        consume,
        async consumeEach(queries) {
          const results: ConsumeResult[] = [];
          for (const query of queries) results.push(await consume(query));
          return results;
        },
        async consumeAtOnce(queries) {
          const expected: ConsumeResult[] = [];
          const results = await Promise.all(
            queries.map(async (query) => {
              const q = withAlgorithm(query);
              expected.push(model.consume(q, modelNow()));
              return await current.backend.consume(q);
            }),
          );
          const admittedCount = (list: readonly ConsumeResult[]): number =>
            list.filter((r) => r.allowed).length;
          expect({ admitted: admittedCount(results) }).toEqual({
            admitted: admittedCount(expected),
          });
          return results;
        },
      };
    });

    afterEach(async () => {
      const current = made;
      made = undefined;
      await current?.close();
    });

    // -------------------------------------------------------------------------------------------
    // Admission and waits
    // -------------------------------------------------------------------------------------------

    it('admits up to the limit, then rejects with the exact time left', async () => {
      const { at, consume, counter, query } = ctx;
      const q = query({ minute: 3 }, counter());
      const minute = (remaining: number, resetMs: number): UnitState =>
        unitState('minute', 3, remaining, resetMs);
      // Token bucket: each request is 20 s of debt (3 per minute).
      expect(await consume(q)).toEqual(
        admitted(minute(2, per4({ ...EVERY(MINUTE), 'token-bucket': 20_000 }))),
      );
      expect(await consume(q)).toEqual(
        admitted(minute(1, per4({ ...EVERY(MINUTE), 'token-bucket': 40_000 }))),
      );
      expect(await consume(q)).toEqual(admitted(minute(0, MINUTE)));
      at(10 * SECOND);
      // Sliding window: in the next window, once 3 × (W − e) ≤ 2 × W (e = 20 s); token bucket:
      // one token back at 20 s.
      expect(await consume(q)).toEqual(
        rejected(
          per4({ ...EVERY(50 * SECOND), 'sliding-window': 70_000, 'token-bucket': 10_000 }),
          'minute',
          [minute(0, 50 * SECOND)],
        ),
      );
      at(MINUTE - 1);
      expect(await consume(q)).toEqual(
        per4({
          ...EVERY(rejected(1, 'minute', [minute(0, 1)])),
          'sliding-window': rejected(20_001, 'minute', [minute(0, 1)]),
          // A debt of 3 units (1 ms at 3 per minute is 3 of 60,000): room for one.
          'token-bucket': admitted(minute(1, 20_001)),
        }),
      );
      // Every admitted request was at 0, so the fixed window and the log start afresh at 60 s.
      at(MINUTE);
      expect(await consume(q)).toEqual(
        per4({
          ...EVERY(admitted(minute(2, MINUTE))),
          // 3 × W of the previous window at e = 0: one fits from e = 20 s.
          'sliding-window': rejected(20_000, 'minute', [minute(0, MINUTE)]),
          'token-bucket': admitted(minute(1, 40_000)),
        }),
      );
    });

    it('counts nothing for rejected requests (test_multiple: second=1, minute=3)', async () => {
      const { at, consume, counter, query } = ctx;
      const q = query({ second: 1, minute: 3 }, counter());
      classicExpect(await consume(q)).toEqual(
        admitted(unitState('second', 1, 0, SECOND), unitState('minute', 3, 2, MINUTE)),
      );
      classicExpect(await consume(q)).toEqual(
        rejected(SECOND, 'second', [
          unitState('second', 1, 0, SECOND),
          unitState('minute', 3, 2, MINUTE),
        ]),
      );
      at(1_000);
      // Admitted: the rejected request counted in neither unit.
      classicExpect(await consume(q)).toEqual(
        admitted(unitState('second', 1, 0, SECOND), unitState('minute', 3, 1, 59_000)),
      );
      classicExpect(await consume(q)).toMatchObject({
        allowed: false,
        unit: 'second',
        retryAfterMs: SECOND,
      });
      at(3_000);
      classicExpect(await consume(q)).toEqual(
        admitted(unitState('second', 1, 0, SECOND), unitState('minute', 3, 0, 57_000)),
      );
      // Both units exhausted: the minute's wait is the longer one.
      classicExpect(await consume(q)).toEqual(
        rejected(57_000, 'minute', [
          unitState('second', 1, 0, SECOND),
          unitState('minute', 3, 0, 57_000),
        ]),
      );
      at(4_000);
      classicExpect(await consume(q)).toEqual(
        rejected(56_000, 'minute', [
          unitState('second', 1, 1, SECOND),
          unitState('minute', 3, 0, 56_000),
        ]),
      );
      // Past the first minute the algorithms part: the fixed window starts over, while the
      // sliding log still holds the requests of 1 s and 3 s.
      at(MINUTE);
      classicExpect(await consume(q)).toEqual(
        admitted(
          unitState('second', 1, 0, SECOND),
          per({
            fixed: unitState('minute', 3, 2, MINUTE),
            sliding: unitState('minute', 3, 0, 1_000), // log 1 s, 3 s, 60 s: 1 s leaves at 61 s
          }),
        ),
      );
      at(MINUTE + 1_000);
      classicExpect(await consume(q)).toEqual(
        admitted(
          unitState('second', 1, 0, SECOND),
          per({
            fixed: unitState('minute', 3, 1, 59_000),
            sliding: unitState('minute', 3, 0, 2_000), // log 3 s, 60 s, 61 s: 3 s leaves at 63 s
          }),
        ),
      );
      at(MINUTE + 2_000);
      classicExpect(await consume(q)).toEqual(
        per({
          fixed: admitted(unitState('second', 1, 0, SECOND), unitState('minute', 3, 0, 58_000)),
          sliding: rejected(1_000, 'minute', [
            unitState('second', 1, 1, SECOND),
            unitState('minute', 3, 0, 1_000),
          ]),
        }),
      );
    });

    it('gives no free request at the end of a window', async () => {
      const { at, consume, counter, query } = ctx;
      const perSecond = query({ second: 1 }, counter('a'));
      classicExpect((await consume(perSecond)).allowed).toBe(true);
      at(999);
      classicExpect(await consume(perSecond)).toEqual(
        rejected(1, 'second', [unitState('second', 1, 0, 1)]),
      );
      at(1_000);
      classicExpect(await consume(perSecond)).toEqual(admitted(unitState('second', 1, 0, SECOND)));

      const perMinute = query({ minute: 1 }, counter('b'));
      at(10_000);
      classicExpect((await consume(perMinute)).allowed).toBe(true);
      at(10_000 + MINUTE - 1);
      classicExpect(await consume(perMinute)).toMatchObject({ allowed: false, retryAfterMs: 1 });
      at(10_000 + MINUTE);
      classicExpect((await consume(perMinute)).allowed).toBe(true);
    });

    it('frees capacity at the window end (fixed) or as each entry leaves (sliding)', async () => {
      const { at, consume, consumeEach, counter, query } = ctx;
      const q = query({ second: 2 }, counter());
      await consume(q); // 0
      at(400);
      await consume(q); // 400
      at(999);
      // Both: the fixed window ends at 1000; the sliding entry of 0 leaves at 1000.
      classicExpect(await consume(q)).toEqual(
        rejected(1, 'second', [unitState('second', 2, 0, 1)]),
      );
      at(1_000);
      const [first, second] = await consumeEach([q, q]);
      classicExpect(first).toEqual(
        per({
          fixed: admitted(unitState('second', 2, 1, SECOND)),
          sliding: admitted(unitState('second', 2, 0, 400)), // log 400, 1000: 400 leaves at 1400
        }),
      );
      classicExpect(second).toEqual(
        per({
          fixed: admitted(unitState('second', 2, 0, SECOND)),
          sliding: rejected(400, 'second', [unitState('second', 2, 0, 400)]),
        }),
      );
      at(1_399);
      classicExpect(await consume(q)).toEqual(
        per({
          fixed: rejected(601, 'second', [unitState('second', 2, 0, 601)]),
          sliding: rejected(1, 'second', [unitState('second', 2, 0, 1)]),
        }),
      );
      at(1_400);
      classicExpect(await consume(q)).toEqual(
        per({
          fixed: rejected(600, 'second', [unitState('second', 2, 0, 600)]),
          // log 1000, 1400: 1000 leaves at 2000
          sliding: admitted(unitState('second', 2, 0, 600)),
        }),
      );
    });

    it('after a full window, admits a new window (fixed) or one request per old entry (sliding)', async () => {
      const { at, consume, consumeEach, counter, query } = ctx;
      const q = query({ second: 3 }, counter());
      for (const t of [0, 600, 900]) {
        at(t);
        classicExpect((await consume(q)).allowed).toBe(true);
      }
      at(999);
      classicExpect(await consume(q)).toEqual(
        rejected(1, 'second', [unitState('second', 3, 0, 1)]),
      );
      at(1_000);
      const results = await consumeEach([q, q, q, q]);
      classicExpect(results.map((r) => r.allowed)).toEqual(
        per({ fixed: [true, true, true, false], sliding: [true, false, false, false] }),
      );
      classicExpect(results[3]).toEqual(
        per({
          fixed: rejected(SECOND, 'second', [unitState('second', 3, 0, SECOND)]),
          sliding: rejected(600, 'second', [unitState('second', 3, 0, 600)]), // 600 leaves at 1600
        }),
      );
      at(1_600);
      classicExpect(await consume(q)).toEqual(
        per({
          fixed: rejected(400, 'second', [unitState('second', 3, 0, 400)]),
          sliding: admitted(unitState('second', 3, 0, 300)), // log 900, 1000, 1600
        }),
      );
      at(1_900);
      classicExpect(await consume(q)).toEqual(
        per({
          fixed: rejected(100, 'second', [unitState('second', 3, 0, 100)]),
          sliding: admitted(unitState('second', 3, 0, 100)), // log 1000, 1600, 1900
        }),
      );
      at(2_000);
      classicExpect(await consume(q)).toEqual(
        per({
          fixed: admitted(unitState('second', 3, 2, SECOND)),
          sliding: admitted(unitState('second', 3, 0, 600)), // log 1600, 1900, 2000
        }),
      );
    });

    it('counts retryAfterMs down, and a client retrying does not extend its wait', async () => {
      const { at, consume, counter, query } = ctx;
      const q = query({ minute: 1 }, counter());
      await consume(q);
      classicExpect((await consume(q)).retryAfterMs).toBe(MINUTE);
      at(2_000);
      classicExpect((await consume(q)).retryAfterMs).toBe(58_000);
      for (let t = 10_000; t < MINUTE; t += 10_000) {
        at(t);
        classicExpect(await consume(q)).toEqual(
          rejected(MINUTE - t, 'minute', [unitState('minute', 1, 0, MINUTE - t)]),
        );
      }
      at(MINUTE - 1);
      classicExpect((await consume(q)).retryAfterMs).toBe(1);
      at(MINUTE);
      classicExpect((await consume(q)).allowed).toBe(true);
    });

    it('reports the longest wait among the exhausted units, and names that unit', async () => {
      const { at, consume, counter, query } = ctx;
      const both = query({ second: 1, minute: 1 }, counter('a'));
      await consume(both);
      at(500);
      classicExpect(await consume(both)).toEqual(
        rejected(59_500, 'minute', [
          unitState('second', 1, 0, 500),
          unitState('minute', 1, 0, 59_500),
        ]),
      );

      const onlySecond = query({ second: 1, minute: 5 }, counter('b'));
      at(1_000);
      await consume(onlySecond);
      at(1_200);
      classicExpect(await consume(onlySecond)).toEqual(
        rejected(800, 'second', [
          unitState('second', 1, 0, 800),
          unitState('minute', 5, 4, 59_800),
        ]),
      );

      // The shorter unit can have the longer wait: at 59.5 s the minute frees up in 0.5 s, the
      // second (used at 59.5 s) only in 1 s.
      const shorterWaitsLonger = query({ second: 1, minute: 2 }, counter('c'));
      at(2_000);
      await consume(shorterWaitsLonger);
      at(2_000 + 59_500);
      classicExpect((await consume(shorterWaitsLonger)).allowed).toBe(true);
      classicExpect(await consume(shorterWaitsLonger)).toEqual(
        rejected(SECOND, 'second', [
          unitState('second', 1, 0, SECOND),
          unitState('minute', 2, 0, 500),
        ]),
      );
    });

    it('always rejects a limit of 0, with the unit window as the wait, counting nothing', async () => {
      const { at, consume, counter, query } = ctx;
      const target = counter();
      const q = query({ second: 5, hour: 0 }, target);
      for (const t of [0, 10 * SECOND, 5 * HOUR]) {
        at(t);
        // The other unit as it stands: a full bucket resets in 0; the sliding window's aligned
        // hour has W − e left.
        expect(await consume(q)).toEqual(
          rejected(HOUR, 'hour', [
            unitState('second', 5, 5, per4({ ...EVERY(SECOND), 'token-bucket': 0 })),
            unitState('hour', 0, 0, per4({ ...EVERY(HOUR), 'sliding-window': HOUR - (t % HOUR) })),
          ]),
        );
      }
      // The second unit of the same counter was never counted.
      expect(await consume(query({ second: 5 }, target))).toEqual(
        admitted(unitState('second', 5, 4, per4({ ...EVERY(SECOND), 'token-bucket': 200 }))),
      );
      expect(await consume(query({ minute: 0 }, counter('b')))).toEqual(
        rejected(MINUTE, 'minute', [unitState('minute', 0, 0, MINUTE)]),
      );
    });

    it('decides all units together: a request one unit rejects counts in none', async () => {
      const { consume, counter, query } = ctx;
      const target = counter();
      const q = query({ second: 3, minute: 2 }, target);
      classicExpect(await consume(q)).toEqual(
        admitted(unitState('second', 3, 2, SECOND), unitState('minute', 2, 1, MINUTE)),
      );
      classicExpect(await consume(q)).toEqual(
        admitted(unitState('second', 3, 1, SECOND), unitState('minute', 2, 0, MINUTE)),
      );
      for (let i = 0; i < 3; i++) {
        classicExpect(await consume(q)).toEqual(
          rejected(MINUTE, 'minute', [
            unitState('second', 3, 1, SECOND),
            unitState('minute', 2, 0, MINUTE),
          ]),
        );
      }
      // Another rule on the same counter sees the second unit at 2 of 3: one more, then full.
      const secondOnly = query({ second: 3 }, target);
      classicExpect(await consume(secondOnly)).toEqual(admitted(unitState('second', 3, 0, SECOND)));
      classicExpect(await consume(secondOnly)).toEqual(
        rejected(SECOND, 'second', [unitState('second', 3, 0, SECOND)]),
      );
    });

    it('reports remaining and resetMs for every unit, in rule order, after admits and rejects', async () => {
      const { at, consume, counter, query } = ctx;
      const q = query({ second: 2, hour: 4 }, counter('a'));
      classicExpect(await consume(q)).toEqual(
        admitted(unitState('second', 2, 1, SECOND), unitState('hour', 4, 3, HOUR)),
      );
      at(500);
      classicExpect(await consume(q)).toEqual(
        admitted(unitState('second', 2, 0, 500), unitState('hour', 4, 2, HOUR - 500)),
      );
      at(700);
      classicExpect(await consume(q)).toEqual(
        rejected(300, 'second', [
          unitState('second', 2, 0, 300),
          unitState('hour', 4, 2, HOUR - 700),
        ]),
      );

      const m = query({ minute: 3 }, counter('b'));
      at(MINUTE);
      classicExpect(await consume(m)).toEqual(admitted(unitState('minute', 3, 2, MINUTE)));
      at(MINUTE + 10_000);
      classicExpect(await consume(m)).toEqual(admitted(unitState('minute', 3, 1, 50_000)));
      at(MINUTE + 20_000);
      classicExpect(await consume(m)).toEqual(admitted(unitState('minute', 3, 0, 40_000)));
      at(MINUTE + 30_000);
      classicExpect(await consume(m)).toEqual(
        rejected(30_000, 'minute', [unitState('minute', 3, 0, 30_000)]),
      );
      at(2 * MINUTE);
      classicExpect(await consume(m)).toEqual(
        per({
          fixed: admitted(unitState('minute', 3, 2, MINUTE)),
          // log +10 s, +20 s, +60 s: the entry of +10 s leaves in 10 s
          sliding: admitted(unitState('minute', 3, 0, 10_000)),
        }),
      );
      at(2 * MINUTE + 5_000);
      classicExpect(await consume(m)).toEqual(
        per({
          fixed: admitted(unitState('minute', 3, 1, 55_000)),
          sliding: rejected(5_000, 'minute', [unitState('minute', 3, 0, 5_000)]),
        }),
      );
    });

    it('keeps a hand-built unit with a non-standard window apart from the standard one', async () => {
      const { at, consume, counter } = ctx;
      const target = counter();
      const short: ConsumeQuery = {
        counter: target,
        limits: [{ unit: 'second', limit: 1, windowMs: 250 }],
        blockMs: 0,
      };
      const standard: ConsumeQuery = {
        counter: target,
        limits: limitsOf({ second: 1 }),
        blockMs: 0,
      };
      classicExpect(await consume(short)).toEqual({
        ...admitted(),
        units: [{ unit: 'second', limit: 1, windowMs: 250, remaining: 0, resetMs: 250 }],
      });
      classicExpect((await consume(standard)).allowed).toBe(true);
      at(249);
      classicExpect(await consume(short)).toMatchObject({
        allowed: false,
        unit: 'second',
        retryAfterMs: 1,
      });
      at(250);
      classicExpect((await consume(short)).allowed).toBe(true);
      classicExpect(await consume(standard)).toMatchObject({ allowed: false, retryAfterMs: 750 });
    });

    // -------------------------------------------------------------------------------------------
    // Blocks
    // -------------------------------------------------------------------------------------------

    it('starts a block when a unit is exceeded, reporting the block as the wait', async () => {
      const { consume, counter, query } = ctx;
      const q = query({ second: 1 }, counter(), 5 * SECOND);
      classicExpect(await consume(q)).toEqual(admitted(unitState('second', 1, 0, SECOND)));
      classicExpect(await consume(q)).toEqual(
        rejected(5 * SECOND, 'second', [unitState('second', 1, 0, SECOND)], true),
      );
    });

    it('reports the longer of the block and the unit wait, and blocks again after the block', async () => {
      const { at, consume, counter, query } = ctx;
      const q = query({ minute: 1 }, counter(), 2 * SECOND);
      await consume(q);
      classicExpect(await consume(q)).toEqual(
        rejected(MINUTE, 'minute', [unitState('minute', 1, 0, MINUTE)], true),
      );
      at(1_000); // during the block: the minute's wait, the longer one
      classicExpect(await consume(q)).toEqual(
        blockedEarlier(59_000, [unitState('minute', 1, 0, 59_000)], 'minute'),
      );
      // A client that came back before its Retry-After: block over, minute still exhausted, so
      // the unit rejects it, which blocks again.
      at(2_000);
      classicExpect(await consume(q)).toEqual(
        rejected(58_000, 'minute', [unitState('minute', 1, 0, 58_000)], true),
      );
      at(3_000);
      classicExpect(await consume(q)).toEqual(
        blockedEarlier(57_000, [unitState('minute', 1, 0, 57_000)], 'minute'),
      );
    });

    it('during a block shorter than a unit wait, gives the unit wait; obeying it admits, no new block', async () => {
      const { at, consume, counter, query } = ctx;
      const q = query({ minute: 2 }, counter(), SECOND);
      await consume(q);
      await consume(q);
      classicExpect(await consume(q)).toEqual(
        rejected(MINUTE, 'minute', [unitState('minute', 2, 0, MINUTE)], true),
      );
      // The block has 500 ms left, the minute 59.5 s: a client told 500 ms would come back to an
      // exhausted minute and start a new block.
      at(500);
      const during = await consume(q);
      classicExpect(during).toEqual(
        blockedEarlier(59_500, [unitState('minute', 2, 0, 59_500)], 'minute'),
      );
      // Exactly Retry-After later: admitted, and no block started (every request below passes).
      at(500 + during.retryAfterMs);
      classicExpect(await consume(q)).toEqual(admitted(unitState('minute', 2, 1, MINUTE)));
      classicExpect(await consume(q)).toEqual(admitted(unitState('minute', 2, 0, MINUTE)));
      classicExpect(await consume(query({ hour: 5 }, counter('alice', 'zone:after')))).toEqual(
        admitted(unitState('hour', 5, 4, HOUR)),
      );
    });

    it('during a block longer than every unit wait, gives the block remainder; obeying it admits', async () => {
      const { at, consume, counter, query } = ctx;
      const q = query({ second: 1 }, counter(), 5 * SECOND);
      await consume(q);
      await consume(q);
      at(200); // the second is exhausted for 800 ms more, the block for 4.8 s
      classicExpect(await consume(q)).toEqual(
        blockedEarlier(4_800, [unitState('second', 1, 0, 800)], 'second'),
      );
      at(1_000); // the second has room again: only the block rejects, and no unit is named
      const during = await consume(q);
      classicExpect(during).toEqual(blockedEarlier(4_000, [unitState('second', 1, 1, SECOND)]));
      at(1_000 + during.retryAfterMs);
      classicExpect(await consume(q)).toEqual(admitted(unitState('second', 1, 0, SECOND)));
    });

    it('during a block, gives the longest wait of several units, and names that unit', async () => {
      const { at, consume, counter, query } = ctx;
      // Three exhausted units, each with its own wait; the hour's is the longest.
      const three = query({ second: 1, minute: 2, hour: 2 }, counter('a'), 2 * SECOND);
      await consume(three);
      at(1_000);
      await consume(three);
      classicExpect((await consume(three)).blocked).toBe(true); // blocked until 3 s
      at(1_500);
      classicExpect(await consume(three)).toEqual(
        blockedEarlier(
          HOUR - 1_500,
          [
            unitState('second', 1, 0, 500),
            unitState('minute', 2, 0, 58_500),
            unitState('hour', 2, 0, HOUR - 1_500),
          ],
          'hour',
        ),
      );

      // One exhausted unit out of three: its wait beats the block's, the others do not count.
      const one = query({ second: 1, minute: 2, hour: 10 }, counter('b'), 500);
      at(2_000);
      await consume(one);
      classicExpect(await consume(one)).toEqual(
        rejected(
          SECOND,
          'second',
          [
            unitState('second', 1, 0, SECOND),
            unitState('minute', 2, 1, MINUTE),
            unitState('hour', 10, 9, HOUR),
          ],
          true,
        ),
      );
      at(2_200); // 300 ms of block left, 800 ms of the second
      const during = await consume(one);
      classicExpect(during).toEqual(
        blockedEarlier(
          800,
          [
            unitState('second', 1, 0, 800),
            unitState('minute', 2, 1, 59_800),
            unitState('hour', 10, 9, HOUR - 200),
          ],
          'second',
        ),
      );
      at(2_200 + during.retryAfterMs);
      classicExpect(await consume(one)).toEqual(
        admitted(
          unitState('second', 1, 0, SECOND),
          unitState('minute', 2, 0, 59_000),
          unitState('hour', 10, 8, HOUR - 1_000),
        ),
      );
    });

    it('during a block, reports the exhausted units of whichever counter of the user asks', async () => {
      const { at, consume, counter, query } = ctx;
      const minute = query({ minute: 1 }, counter('alice', 'zone:minute'), 3 * SECOND);
      classicExpect((await consume(minute)).allowed).toBe(true); // exhausts that counter's minute
      const second = query({ second: 1 }, counter('alice'), 5 * SECOND);
      await consume(second);
      await consume(second); // blocks alice until 5 s, from another counter
      at(100);
      // The block is the user's, the exhausted minute this counter's: the longer wait wins.
      classicExpect(await consume(minute)).toEqual(
        blockedEarlier(59_900, [unitState('minute', 1, 0, 59_900)], 'minute'),
      );
      // A fresh counter: only the block rejects it.
      const fresh = query({ hour: 3 }, counter('alice', 'zone:fresh', 'GET'), 5 * SECOND);
      classicExpect(await consume(fresh)).toEqual(
        blockedEarlier(4_900, [unitState('hour', 3, 3, HOUR)]),
      );
      // A limit of 0 waits its whole window, block or not.
      classicExpect(await consume(query({ minute: 0 }, counter('alice', 'zone:zero')))).toEqual(
        blockedEarlier(MINUTE, [unitState('minute', 0, 0, MINUTE)], 'minute'),
      );
      // None of these restarted or extended the block (each rule has one): it ends at 5 s.
      at(5_000);
      classicExpect(await consume(fresh)).toEqual(admitted(unitState('hour', 3, 2, HOUR)));
    });

    it('applies the block to every counter of the user, and to no other user', async () => {
      const { at, consume, counter, query } = ctx;
      const q = query({ second: 1 }, counter('alice'), 5 * SECOND);
      await consume(q);
      await consume(q);
      at(100);
      const elsewhere = query({ hour: 1_000 }, counter('alice', 'zone:other', 'GET'));
      classicExpect(await consume(elsewhere)).toEqual(
        blockedEarlier(4_900, [unitState('hour', 1_000, 1_000, HOUR)]),
      );
      const sameScope = query({ second: 1 }, counter('bob'), 5 * SECOND);
      classicExpect(await consume(sameScope)).toEqual(admitted(unitState('second', 1, 0, SECOND)));
      // A user whose id merely starts with the blocked one's is not blocked either.
      classicExpect((await consume(query({ hour: 1 }, counter('alice2')))).allowed).toBe(true);
      at(5_000);
      // Requests refused by the block counted nowhere.
      classicExpect(await consume(elsewhere)).toEqual(
        admitted(unitState('hour', 1_000, 999, HOUR)),
      );
    });

    it('is not extended by requests made while blocked, and ends exactly at its end', async () => {
      const { at, consume, counter, query } = ctx;
      const q = query({ second: 1 }, counter(), 5 * SECOND);
      await consume(q);
      await consume(q);
      classicExpect(await consume(q)).toEqual(
        blockedEarlier(5_000, [unitState('second', 1, 0, SECOND)], 'second'),
      );
      // From 1 s on the second has room: the block alone rejects, counting nothing.
      for (const t of [1_000, 2_500, 4_000]) {
        at(t);
        classicExpect(await consume(q)).toEqual(
          blockedEarlier(5_000 - t, [unitState('second', 1, 1, SECOND)]),
        );
      }
      at(4_999);
      classicExpect(await consume(q)).toEqual(
        blockedEarlier(1, [unitState('second', 1, 1, SECOND)]),
      );
      at(5_000);
      classicExpect(await consume(q)).toEqual(admitted(unitState('second', 1, 0, SECOND)));
    });

    it('does not start a block for a request that is admitted', async () => {
      const { consume, counter, query } = ctx;
      const q = query({ second: 2 }, counter(), 5 * SECOND);
      classicExpect((await consume(q)).blocked).toBe(false);
      classicExpect((await consume(q)).blocked).toBe(false);
      classicExpect(await consume(query({ hour: 5 }, counter('alice', 'zone:z')))).toEqual(
        admitted(unitState('hour', 5, 4, HOUR)),
      );
    });

    // -------------------------------------------------------------------------------------------
    // unblock and reset
    // -------------------------------------------------------------------------------------------

    it('unblock lifts an active block only, leaves the counters, and says whether there was one', async () => {
      const { at, backend, consume, counter, query, user } = ctx;
      classicExpect(await backend.unblock(user('alice'))).toBe(false);
      const alice = query({ second: 1 }, counter('alice'), 5 * SECOND);
      const bob = query({ second: 1 }, counter('bob'), 5 * SECOND);
      await consume(alice);
      await consume(alice); // blocks alice until 5 s
      await consume(bob);
      await consume(bob); // blocks bob until 5 s
      classicExpect(await backend.unblock(user('alice'))).toBe(true);
      classicExpect(await backend.unblock(user('alice'))).toBe(false);
      // The counter is untouched: the second is still used up (and, with blockMs 0, no new block).
      const aliceNoBlock = query({ second: 1 }, counter('alice'));
      classicExpect(await consume(aliceNoBlock)).toEqual(
        rejected(SECOND, 'second', [unitState('second', 1, 0, SECOND)]),
      );
      classicExpect(await consume(bob)).toEqual(
        blockedEarlier(5 * SECOND, [unitState('second', 1, 0, SECOND)], 'second'),
      );
      at(1_000);
      classicExpect(await consume(alice)).toEqual(admitted(unitState('second', 1, 0, SECOND)));
      classicExpect(await consume(bob)).toEqual(
        blockedEarlier(4 * SECOND, [unitState('second', 1, 1, SECOND)]),
      );
      at(5_000); // bob's block has just ended: nothing left to lift
      classicExpect(await backend.unblock(user('bob'))).toBe(false);
      classicExpect((await consume(bob)).allowed).toBe(true);
    });

    it('reset forgets every unit of one counter only, and says whether a live window existed', async () => {
      const { at, backend, consume, counter, query } = ctx;
      const units = { second: 1, minute: 2 };
      const mine = query(units, counter('alice'));
      const otherScope = query(units, counter('alice', 'path:/other'));
      const otherMethod = query(units, counter('alice', 'path:/conformance', 'GET'));
      const otherUser = query(units, counter('bob'));
      classicExpect(await backend.reset(mine.counter)).toBe(false);
      for (const q of [mine, otherScope, otherMethod, otherUser]) await consume(q);
      classicExpect((await consume(mine)).allowed).toBe(false);
      classicExpect(await backend.reset(mine.counter)).toBe(true);
      classicExpect(await backend.reset(mine.counter)).toBe(false);
      classicExpect(await consume(mine)).toEqual(
        admitted(unitState('second', 1, 0, SECOND), unitState('minute', 2, 1, MINUTE)),
      );
      for (const q of [otherScope, otherMethod, otherUser]) {
        classicExpect(await consume(q)).toEqual(
          rejected(SECOND, 'second', [
            unitState('second', 1, 0, SECOND),
            unitState('minute', 2, 1, MINUTE),
          ]),
        );
      }
      at(1_000); // the second has expired, the minute is live
      classicExpect(await backend.reset(otherScope.counter)).toBe(true);
      classicExpect(await consume(otherScope)).toEqual(
        admitted(unitState('second', 1, 0, SECOND), unitState('minute', 2, 1, MINUTE)),
      );
    });

    it('reset of a counter whose windows have all expired returns false', async () => {
      const { at, backend, consume, counter, query } = ctx;
      const q = query({ second: 1 }, counter());
      await consume(q);
      at(1_000);
      classicExpect(await backend.reset(q.counter)).toBe(false);
      classicExpect(await consume(q)).toEqual(admitted(unitState('second', 1, 0, SECOND)));
    });

    it('reset does not lift the block', async () => {
      const { backend, consume, counter, query, user } = ctx;
      const q = query({ second: 1 }, counter(), 5 * SECOND);
      await consume(q);
      await consume(q);
      classicExpect(await backend.reset(q.counter)).toBe(true);
      classicExpect(await consume(q)).toEqual(
        blockedEarlier(5 * SECOND, [unitState('second', 1, 1, SECOND)]),
      );
      classicExpect(await backend.unblock(user())).toBe(true);
      classicExpect(await consume(q)).toEqual(admitted(unitState('second', 1, 0, SECOND)));
    });

    // -------------------------------------------------------------------------------------------
    // Costs, bursts, custom windows, blocks: hand-computed numbers for every algorithm
    // -------------------------------------------------------------------------------------------

    it('takes the cost from the unit, rejects whole a cost that does not fit, and a cost above the limit waits the window', async () => {
      const { at, consume, counter, queryOf } = ctx;
      const minute5 = limitsOf({ minute: 5 });
      const cost = (c: number | undefined): ConsumeQuery =>
        queryOf(minute5, counter(), { cost: c });
      const minute = (remaining: number, resetMs: number): UnitState =>
        unitState('minute', 5, remaining, resetMs);
      // Token bucket: a debt of 2 W, refilled at 5 per minute, is full again in 24 s.
      expect(await consume(cost(2))).toEqual(
        admitted(minute(3, per4({ ...EVERY(MINUTE), 'token-bucket': 24_000 }))),
      );
      expect(await consume(cost(2))).toEqual(
        admitted(minute(1, per4({ ...EVERY(MINUTE), 'token-bucket': 48_000 }))),
      );
      // 4 + 2 > 5: rejected whole, nothing counted. Sliding window: in the next window, where
      // 4 × (W − e) + 2 × W ≤ 5 × W from e = 15 s; token bucket: 2 tokens more in 12 s.
      const standing = minute(1, per4({ ...EVERY(MINUTE), 'token-bucket': 48_000 }));
      expect(await consume(cost(2))).toEqual(
        rejected(
          per4({ ...EVERY(MINUTE), 'sliding-window': 75_000, 'token-bucket': 12_000 }),
          'minute',
          [standing],
        ),
      );
      // The rejected cost took nothing: one more fits.
      expect(await consume(cost(undefined))).toEqual(admitted(minute(0, MINUTE)));
      // Above the limit: never fits, the window as the wait.
      expect(await consume(cost(6))).toEqual(rejected(MINUTE, 'minute', [minute(0, MINUTE)]));

      at(30_000);
      // Token bucket: 2.5 tokens back after 30 s; the others are full until 60 s, and the sliding
      // window then carries 5 × (W − e) into the next window (one fits from e = 12 s).
      const full = minute(0, 30_000);
      expect(await consume(cost(1))).toEqual(
        per4({
          'fixed-window': rejected(30_000, 'minute', [full]),
          'sliding-window': rejected(42_000, 'minute', [full]),
          'sliding-log': rejected(30_000, 'minute', [full]),
          'token-bucket': admitted(minute(1, 42_000)),
        }),
      );
      const now = per4({ ...EVERY(full), 'token-bucket': minute(1, 42_000) });
      expect(await consume(cost(2))).toEqual(
        rejected(
          per4({ ...EVERY(30_000), 'sliding-window': 54_000, 'token-bucket': 6_000 }),
          'minute',
          [now],
        ),
      );
      expect(await consume(cost(6))).toEqual(rejected(MINUTE, 'minute', [now]));
    });

    if (algorithm === 'token-bucket') {
      it('token-bucket: admits a burst at once, then the steady rate; a cost up to the burst fits', async () => {
        const { at, consume, counter, queryOf } = ctx;
        const second2 = limitsOf({ second: 2 });
        const big = (c?: number): ConsumeQuery =>
          queryOf(second2, counter('big'), { burst: 5, ...(c === undefined ? {} : { cost: c }) });
        const second = (remaining: number, resetMs: number): UnitState =>
          unitState('second', 2, remaining, resetMs);
        // 5 at once; each token comes back in 500 ms.
        for (const [remaining, resetMs] of [
          [4, 500],
          [3, 1_000],
          [2, 1_500],
          [1, 2_000],
          [0, 2_500],
        ] as const) {
          expect(await consume(big())).toEqual(admitted(second(remaining, resetMs)));
        }
        expect(await consume(big())).toEqual(rejected(500, 'second', [second(0, 2_500)]));
        expect(await consume(big(6))).toEqual(rejected(SECOND, 'second', [second(0, 2_500)]));
        at(500);
        expect(await consume(big())).toEqual(admitted(second(0, 2_500)));
        at(600);
        expect(await consume(big())).toEqual(rejected(400, 'second', [second(0, 2_400)]));
        // Full again at 3 s: a cost of 5, above the limit of 2 but within the burst, fits.
        at(3_100);
        expect(await consume(big(5))).toEqual(admitted(second(0, 2_500)));

        // A burst below the limit: 1 at once, then one every 250 ms; a cost of 2 never fits.
        const small = (c?: number): ConsumeQuery =>
          queryOf(limitsOf({ second: 4 }), counter('small'), {
            burst: 1,
            ...(c === undefined ? {} : { cost: c }),
          });
        const four = (resetMs: number): UnitState => unitState('second', 4, 0, resetMs);
        expect(await consume(small())).toEqual(admitted(four(250)));
        expect(await consume(small())).toEqual(rejected(250, 'second', [four(250)]));
        expect(await consume(small(2))).toEqual(rejected(SECOND, 'second', [four(250)]));
        at(3_350);
        expect(await consume(small())).toEqual(admitted(four(250)));
      });
    }

    it('counts a custom window (unit "window") and a named unit together, each by its own length', async () => {
      const { at, consume, counter, queryOf } = ctx;
      const FIFTEEN_MINUTES = 900_000;
      const q = queryOf(
        [
          { unit: 'minute', limit: 1, windowMs: MINUTE },
          { unit: 'window', limit: 2, windowMs: FIFTEEN_MINUTES },
        ],
        counter(),
      );
      const minute = (remaining: number, resetMs: number): UnitState =>
        unitState('minute', 1, remaining, resetMs);
      const window = (remaining: number, resetMs: number): UnitState =>
        unitState('window', 2, remaining, resetMs, FIFTEEN_MINUTES);
      expect(await consume(q)).toEqual(
        admitted(
          minute(0, MINUTE),
          window(1, per4({ ...EVERY(FIFTEEN_MINUTES), 'token-bucket': 450_000 })),
        ),
      );
      at(MINUTE);
      // Sliding window: the previous minute's request weighs its full W at e = 0.
      expect(await consume(q)).toEqual(
        per4({
          ...EVERY(admitted(minute(0, MINUTE), window(0, 840_000))),
          'sliding-window': rejected(MINUTE, 'minute', [minute(0, MINUTE), window(1, 840_000)]),
        }),
      );
      at(2 * MINUTE);
      // Fixed window and log: the 15 minutes hold 2 until the first request's 15 minutes end;
      // token bucket: 1.56 of 2 tokens still owed, one more in 330 s.
      expect(await consume(q)).toEqual(
        per4({
          'fixed-window': rejected(780_000, 'window', [minute(1, MINUTE), window(0, 780_000)]),
          'sliding-window': admitted(minute(0, MINUTE), window(0, 780_000)),
          'sliding-log': rejected(780_000, 'window', [minute(1, MINUTE), window(0, 780_000)]),
          'token-bucket': rejected(330_000, 'window', [minute(1, 0), window(0, 780_000)]),
        }),
      );
    });

    it('blocks the same way with every algorithm, reporting each algorithm’s units', async () => {
      const { at, consume, counter, query } = ctx;
      const q = query({ second: 2 }, counter(), 5 * SECOND);
      const second = (remaining: number, resetMs: number): UnitState =>
        unitState('second', 2, remaining, resetMs);
      expect(await consume(q)).toEqual(
        admitted(second(1, per4({ ...EVERY(SECOND), 'token-bucket': 500 }))),
      );
      expect(await consume(q)).toEqual(admitted(second(0, SECOND)));
      // Every algorithm's own wait is shorter than the block (sliding window 1.5 s, token bucket
      // 0.5 s): the block's 5 s.
      expect(await consume(q)).toEqual(rejected(5 * SECOND, 'second', [second(0, SECOND)], true));
      at(1_000);
      // Only the sliding window is still exhausted (2 × W of the previous second at e = 0).
      expect(await consume(q)).toEqual(
        per4({
          ...EVERY(blockedEarlier(4_000, [second(2, SECOND)])),
          'sliding-window': blockedEarlier(4_000, [second(0, SECOND)], 'second'),
          'token-bucket': blockedEarlier(4_000, [second(2, 0)]),
        }),
      );
      at(4_999);
      expect(await consume(q)).toEqual(
        blockedEarlier(1, [
          second(2, per4({ ...EVERY(SECOND), 'sliding-window': 1, 'token-bucket': 0 })),
        ]),
      );
      at(5_000); // the block ended, and nothing it rejected was counted
      expect(await consume(q)).toEqual(
        admitted(second(1, per4({ ...EVERY(SECOND), 'token-bucket': 500 }))),
      );
    });

    it('keeps to each algorithm’s bound across a window end: sliding window 2L − 1, token bucket burst + L × d / W', async () => {
      const { at, consume, counter, query } = ctx;
      const q = query({ second: 2 }, counter());
      const decisions: boolean[] = [];
      for (const t of [999, 999, 999, 1_000, 1_500, 1_999]) {
        at(t);
        decisions.push((await consume(q)).allowed);
      }
      expect(decisions).toEqual(
        per4({
          // A window from 999 ms to 1999 ms: 2 in it.
          'fixed-window': [true, true, false, false, false, true],
          // Aligned windows: 2 in [0, 1000), 1 in [1000, 2000); 3 = 2L − 1 in [999, 1999).
          'sliding-window': [true, true, false, false, true, false],
          // 2 in any second.
          'sliding-log': [true, true, false, false, false, true],
          // 4 = burst + L × 1000 / W in [999, 1999].
          'token-bucket': [true, true, false, false, true, true],
        }),
      );
    });

    // -------------------------------------------------------------------------------------------
    // Counter identity
    // -------------------------------------------------------------------------------------------

    /** Every query admitted once (fresh counters), then rejected (each counted only itself). */
    async function expectSeparate(queries: readonly ConsumeQuery[]): Promise<void> {
      const { consumeEach } = ctx;
      const first = await consumeEach(queries);
      expect(first.map((r) => r.allowed)).toEqual(queries.map(() => true));
      const second = await consumeEach(queries);
      expect(second.map((r) => r.allowed)).toEqual(queries.map(() => false));
    }

    it('keeps counters apart by user, by scope and by method', async () => {
      const { counter, query } = ctx;
      await expectSeparate(
        [
          counter('alice', 'path:/a', '*'),
          counter('bob', 'path:/a', '*'),
          counter('alice', 'path:/b', '*'),
          counter('alice', 'zone:/a', '*'),
          counter('alice', 'handler:/a', '*'),
          counter('alice', 'path:/user/1', '*'),
          counter('alice', 'path:/user/2', '*'),
          counter('alice', 'path:/a', 'GET'),
          counter('alice', 'path:/a', 'POST'),
        ].map((c) => query({ minute: 1 }, c)),
      );
    });

    it('keeps counters apart that a naive concatenation of the parts would merge', async () => {
      const { query, user } = ctx;
      const c = (u: string, scope: string, method: string): ConsumeQuery =>
        query({ minute: 1 }, { user: user(u), scope, method });
      await expectSeparate([
        // user:scope:method
        c('a:b', 'c', '*'),
        c('a', 'b:c', '*'),
        // scope:method:user
        c('d', 'zone:a:b', 'c'),
        c('d', 'zone:a', 'b:c'),
        // method:user, and length prefixes that a sloppy reader could misparse
        c('x:y', 'zone:m', 'GET'),
        c('y', 'zone:m', 'GET:x'),
        c('d', '1:x', '*'),
        c('d', '1', ':x1:*'),
        c('1:*d', '3:1:x', ''),
        // no separator at all
        c('ab', 'path:/x', 'GET'),
        c('b', 'path:/x', 'GETa'),
        c('b', 'path:/xGET', 'a'),
      ]);
    });

    it('keeps every combination of awkward parts apart', async () => {
      const { query, user } = ctx;
      const parts = ['', ':', '1:', 'a:', ':a', '{x}', '}{', '*'];
      const queries: ConsumeQuery[] = [];
      for (const scope of parts) {
        for (const method of parts) {
          for (const u of parts) queries.push(query({ hour: 1 }, { user: user(u), scope, method }));
        }
      }
      const first = await Promise.all(queries.map((q) => ctx.consume(q)));
      expect(first.filter((r) => !r.allowed)).toEqual([]);
      const second = await Promise.all(queries.map((q) => ctx.consume(q)));
      expect(second.filter((r) => r.allowed)).toEqual([]);
    });

    it('keeps users with braces apart, for counters and for blocks', async () => {
      const { backend, consume, counter, query, user } = ctx;
      const names = ['{', '}', '{}', '}{', '{x}', 'x}', '{x', 'x', '%7B', '%7Bx%7D', '{{x}}'];
      await expectSeparate(names.map((name) => query({ minute: 1 }, counter(name))));
      // Block '{x}' only: every other brace variant (and plain 'x') stays unblocked.
      const blockMe = query({ minute: 1 }, counter('{x}', 'zone:block'), 10 * SECOND);
      await consume(blockMe);
      expect(await consume(blockMe)).toMatchObject({ allowed: false, blocked: true });
      for (const name of names) {
        const result = await consume(query({ hour: 1 }, counter(name, 'zone:check')));
        expect([name, result.allowed]).toEqual([name, name !== '{x}']);
      }
      for (const name of names) {
        expect([name, await backend.unblock(user(name))]).toEqual([name, name === '{x}']);
      }
    });

    it('handles a 10,000-character user id, apart from one a character shorter', async () => {
      const { backend, consume, counter, query, user } = ctx;
      const long = 'x'.repeat(10_000);
      const shorter = 'x'.repeat(9_999);
      const q = query({ minute: 1 }, counter(long), 5 * SECOND);
      classicExpect(await consume(q)).toEqual(admitted(unitState('minute', 1, 0, MINUTE)));
      classicExpect(await consume(q)).toEqual(
        rejected(MINUTE, 'minute', [unitState('minute', 1, 0, MINUTE)], true),
      );
      classicExpect(await consume(query({ minute: 1 }, counter(shorter)))).toEqual(
        admitted(unitState('minute', 1, 0, MINUTE)),
      );
      classicExpect(await consume(query({ hour: 1 }, counter(long, 'zone:other')))).toEqual(
        blockedEarlier(5 * SECOND, [unitState('hour', 1, 1, HOUR)]),
      );
      expect(await backend.unblock(user(shorter))).toBe(false);
      expect(await backend.unblock(user(long))).toBe(true);
      expect(await backend.reset(q.counter)).toBe(true);
      expect((await consume(q)).allowed).toBe(true);
      // Long scopes and methods too.
      await expectSeparate([
        query({ minute: 1 }, counter('s', `path:/${'y'.repeat(10_000)}`)),
        query({ minute: 1 }, counter('s', `path:/${'y'.repeat(9_999)}`)),
        query({ minute: 1 }, counter('s', 'path:/y', `M${'z'.repeat(5_000)}`)),
      ]);
    });

    it('handles user ids with newlines, control characters and unicode, never merging them', async () => {
      const { backend, consume, counter, query, user } = ctx;
      const names = [
        'a\nb',
        'a\r\nb',
        'a\rb',
        'a b',
        'a\tb',
        'a\u0000b',
        'ab',
        '\u00e9', // é, precomposed
        'e\u0301', // é, decomposed: a different string, so a different user
        'Ünïcødé ☃',
        'عربى',
        '用户',
        '😀',
        '😀😀',
        '\u2028',
        '\ud800', // lone surrogates: UTF-8 cannot carry them, yet they are different users
        '\ud801',
        '\udc00',
        '\ufffd',
      ];
      await expectSeparate(names.map((name) => query({ minute: 1 }, counter(name))));
      const q = query({ second: 1 }, counter('a\nb', 'zone:block'), 3 * SECOND);
      await consume(q);
      expect(await consume(q)).toMatchObject({ allowed: false, blocked: true });
      expect((await consume(query({ hour: 1 }, counter('a\r\nb', 'zone:check')))).allowed).toBe(
        true,
      );
      expect(await backend.unblock(user('\ud800'))).toBe(false);
      expect(await backend.unblock(user('a\nb'))).toBe(true);
      expect(await backend.reset(counter('\ud801'))).toBe(true);
      expect(await backend.reset(counter('\ud801'))).toBe(false);
      expect(await consume(query({ minute: 1 }, counter('\ud800')))).toMatchObject({
        allowed: false,
        unit: 'minute',
      });
    });

    it('keeps 200 users independent', async () => {
      const { at, backend, consume, counter, query } = ctx;
      const users = Array.from({ length: 200 }, (_, i) => `user-${i}`);
      const queries = users.map((name) => query({ minute: 2 }, counter(name)));
      // All users at once. Only the decisions are compared here (the waits are checked exactly
      // elsewhere): with a real clock, 200 calls in flight do not all land in one millisecond.
      const round = async (): Promise<string[]> =>
        (await Promise.all(queries.map((q) => consume(q)))).map(
          (r) =>
            `${r.allowed ? 'admitted' : `rejected by ${r.unit}`}, ${r.units[0]?.remaining} left`,
        );
      expect(await round()).toEqual(users.map(() => 'admitted, 1 left'));
      at(1_000);
      expect(await round()).toEqual(users.map(() => 'admitted, 0 left'));
      at(2_000);
      expect(await round()).toEqual(users.map(() => 'rejected by minute, 0 left'));
      expect(await backend.reset(queries[123]!.counter)).toBe(true);
      const after = await round();
      expect(
        after.map((r, i) => (r.startsWith('admitted') ? i : -1)).filter((i) => i >= 0),
      ).toEqual([123]);
    });

    // -------------------------------------------------------------------------------------------
    // Atomicity
    // -------------------------------------------------------------------------------------------

    it('admits exactly the limit out of 50 concurrent requests for one counter', async () => {
      const { consume, consumeAtOnce, counter, query } = ctx;
      const q = query({ minute: 10 }, counter());
      const results = await consumeAtOnce(Array.from({ length: 50 }, () => q));
      const admittedOnes = results.filter((r) => r.allowed);
      expect(admittedOnes).toHaveLength(10);
      // Each admitted request saw its own count: remaining 9, 8, ... 0, each once.
      expect(admittedOnes.map((r) => r.units[0]!.remaining).sort((a, b) => a - b)).toEqual([
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
      ]);
      for (const r of results.filter((r) => !r.allowed)) {
        expect(r).toMatchObject({ allowed: false, blocked: false, unit: 'minute' });
        expect(r.retryAfterMs).toBeGreaterThan(0);
        expect(r.units).toMatchObject([{ unit: 'minute', limit: 10, remaining: 0 }]);
      }
      expect((await consume(q)).allowed).toBe(false);
    });

    it('admits one of 20 concurrent requests with limit 1 and a block, blocking the rest', async () => {
      const { consume, consumeAtOnce, counter, query } = ctx;
      const q = query({ second: 1, minute: 5 }, counter(), 5 * SECOND);
      const results = await consumeAtOnce(Array.from({ length: 20 }, () => q));
      expect(results.filter((r) => r.allowed)).toHaveLength(1);
      for (const r of results.filter((r) => !r.allowed)) {
        expect(r).toMatchObject({ allowed: false, blocked: true });
        expect(r.retryAfterMs).toBeGreaterThan(0);
      }
      expect(await consume(query({ hour: 1 }, counter('alice', 'zone:other')))).toMatchObject({
        allowed: false,
        blocked: true,
      });
    });

    describeOperationScenarios(algorithm, () => ctx);
  });
}
