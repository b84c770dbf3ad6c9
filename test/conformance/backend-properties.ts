/**
 * Property tests of a {@link RateLimitBackend} (fast-check): random schedules of requests, clock
 * moves, releases, peeks, resets, blocks and unblocks, replayed against the backend and against
 * the reference model
 * (test/support/reference-models.ts), comparing every result exactly; and the documented bounds of
 * each algorithm, checked on what the backend admitted alone.
 *
 * A spec file calls {@link describeBackendProperties} once per backend. Every property runs on one
 * backend (one `it`), each run with user ids of its own, so runs never see each other's counters;
 * the clock only moves forward, from run to run too, which also varies where the aligned windows
 * of the sliding window fall. Seeds are fixed (override with `FC_SEED`, and `FC_RUNS` to scale the
 * run count); fast-check prints the seed and the shrunk schedule of a failure.
 *
 * @module
 */
import { describe, expect, it, afterEach } from '@jest/globals';
import fc from 'fast-check';
import type {
  ConsumeQuery,
  ConsumeResult,
  PeekResult,
  RateLimitBackend,
  RateLimitCounter,
} from '../../lib/backends/rate-limit.backend.js';
import type { RateLimitAlgorithm, UnitLimit } from '../../lib/rules/rule-units.js';
import { ReferenceBackend } from '../support/reference-models.js';
import type { VirtualClockBackend } from './backend-conformance.js';

/** How a spec file plugs one backend and its virtual clock into the properties. */
export interface PropertyFixture {
  /** Short name for test titles. */
  readonly name: string;
  /** The algorithms to test, each named in the queries. */
  readonly algorithms: readonly RateLimitAlgorithm[];
  /**
   * The backend's default algorithm, tested with queries that name none; undefined: every query
   * names its algorithm.
   */
  readonly defaultAlgorithm?: RateLimitAlgorithm;
  /**
   * The largest cost a request takes (default 4; costs above a unit's limit are part of the
   * schedules). 1 only for a backend written before costs existed.
   */
  readonly maxCost?: number;
  /** Runs per property (scaled by `FC_RUNS`, a factor). */
  readonly runs: number;
  /** A fresh backend on a virtual clock that only `advance` moves. */
  create(): Promise<VirtualClockBackend>;
}

/** One unit a counter's rules may carry (the same limit whichever rule carries it). */
interface UnitSpec {
  readonly unit: 'second' | 'minute' | 'day' | 'month' | 'window';
  readonly windowMs: number;
  readonly limit: number;
}

/** A counter of the schedule: its algorithm (fixed for it), bucket size and units. */
interface CounterSpec {
  /** undefined: the backend's default, named in no query. */
  readonly algorithm: RateLimitAlgorithm | undefined;
  readonly burst: number | undefined;
  readonly units: readonly UnitSpec[];
}

type Op =
  | {
      readonly kind: 'consume';
      readonly counter: number;
      /** Which of the counter's units this request's rule carries (a non-empty bit set). */
      readonly mask: number;
      readonly cost: number | undefined;
      readonly blockMs: number;
    }
  | {
      /**
       * Gives back a request: the last one admitted (as the module does, once its response shows
       * it does not count) when `lastAdmitted` and there is one, else the one drawn here.
       */
      readonly kind: 'release';
      readonly lastAdmitted: boolean;
      readonly counter: number;
      readonly mask: number;
      readonly cost: number | undefined;
    }
  | { readonly kind: 'peek'; readonly counter: number; readonly mask: number }
  | { readonly kind: 'advance'; readonly ms: number }
  | { readonly kind: 'reset'; readonly counter: number }
  | { readonly kind: 'block'; readonly user: number; readonly ms: number }
  | { readonly kind: 'blockedFor'; readonly user: number }
  | { readonly kind: 'unblock'; readonly user: number };

interface Schedule {
  /** Where the run's clock starts, after the fixture's origin. */
  readonly startMs: number;
  readonly counters: readonly CounterSpec[];
  readonly ops: readonly Op[];
}

/** Where a run's clock starts: anywhere in the first two minutes after the fixture's origin. */
const START_MS = fc.integer({ min: 0, max: 120_000 });

/** Counters per schedule: two users with two scopes each, so blocks cross counters. */
const COUNTERS = 4;
const userOf = (counter: number): number => counter % 2;

/** Limits: mostly small, so that schedules reach them; 0 now and then. */
const limit = (maxLimit: number): fc.Arbitrary<number> =>
  fc.oneof(
    { weight: 1, arbitrary: fc.constant(0) },
    { weight: 8, arbitrary: fc.integer({ min: 1, max: 3 }) },
    { weight: 2, arbitrary: fc.integer({ min: 1, max: maxLimit }) },
  );

const unitSpec = (maxLimit: number): fc.Arbitrary<UnitSpec> =>
  fc.oneof(
    fc.record({
      unit: fc.constant('second' as const),
      windowMs: fc.constant(1_000),
      limit: limit(maxLimit),
    }),
    fc.record({
      unit: fc.constant('minute' as const),
      windowMs: fc.constant(60_000),
      limit: limit(maxLimit),
    }),
    fc.record({
      unit: fc.constant('window' as const),
      // Short custom windows cross many window ends; a few seconds meet the named units.
      windowMs: fc.oneof(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 51, max: 5_000 })),
      limit: limit(maxLimit),
    }),
  );

function counterSpec(fixture: PropertyFixture, maxLimit: number): fc.Arbitrary<CounterSpec> {
  const algorithms: (RateLimitAlgorithm | undefined)[] = [...fixture.algorithms];
  if (fixture.defaultAlgorithm !== undefined) algorithms.push(undefined);
  return fc.record({
    algorithm: fc.constantFrom(...algorithms),
    burst: fc.option(fc.integer({ min: 1, max: maxLimit + 3 }), { nil: undefined }),
    // Distinct window lengths, shortest first, as a rule orders its units.
    units: fc
      .uniqueArray(unitSpec(maxLimit), { minLength: 1, maxLength: 3, selector: (u) => u.windowMs })
      .map((units) => [...units].sort((a, b) => a.windowMs - b.windowMs)),
  });
}

const advance = fc.record({
  kind: fc.constant('advance' as const),
  ms: fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 0, max: 30 }) },
    { weight: 3, arbitrary: fc.integer({ min: 0, max: 1_500 }) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 70_000 }) },
  ),
});

const consume = (maxCost: number): fc.Arbitrary<Op> =>
  fc.record({
    kind: fc.constant('consume' as const),
    counter: fc.integer({ min: 0, max: COUNTERS - 1 }),
    mask: fc.integer({ min: 1, max: 7 }),
    // An explicit cost of 1 too, which must decide as no cost at all.
    cost: fc.option(fc.integer({ min: 1, max: maxCost }), { nil: undefined, freq: 2 }),
    blockMs: fc.oneof(
      { weight: 5, arbitrary: fc.constant(0) },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: 3_000 }) },
    ),
  });

/**
 * The largest limit (or burst) the rules accept for a window (lib/rules/exact-arithmetic.ts):
 * four times limit × window at most `Number.MAX_SAFE_INTEGER`.
 */
const mostFor = (windowMs: number): number => Math.floor(Number.MAX_SAFE_INTEGER / 4 / windowMs);

/** A limit up to the exact-arithmetic bound of its window, often right at it. */
const bigLimit = (windowMs: number): fc.Arbitrary<number> =>
  fc.oneof(
    fc.integer({ min: 0, max: 3 }).map((below) => mostFor(windowMs) - below),
    fc.integer({ min: 1, max: mostFor(windowMs) }),
  );

/** Long windows (a day, a month, up to three months) with limits up to their bound. */
const bigUnitSpec: fc.Arbitrary<UnitSpec> = fc.oneof(
  bigLimit(86_400_000).map((limit) => ({ unit: 'day' as const, windowMs: 86_400_000, limit })),
  bigLimit(2_678_400_000).map((limit) => ({
    unit: 'month' as const,
    windowMs: 2_678_400_000,
    limit,
  })),
  fc
    .integer({ min: 1_000_000, max: 3 * 2_678_400_000 })
    .chain((windowMs) =>
      bigLimit(windowMs).map((limit) => ({ unit: 'window' as const, windowMs, limit })),
    ),
);

/**
 * A counter at the bound: its burst, if any, within the bound of its longest window. Not the
 * sliding log, whose memory grows with the limit (an entry per unit of cost): O(1) algorithms only.
 */
function bigCounterSpec(fixture: PropertyFixture): fc.Arbitrary<CounterSpec> {
  const algorithms: (RateLimitAlgorithm | undefined)[] = fixture.algorithms.filter(
    (algorithm) => algorithm !== 'sliding-log',
  );
  if (fixture.defaultAlgorithm !== undefined && fixture.defaultAlgorithm !== 'sliding-log') {
    algorithms.push(undefined);
  }
  return fc
    .record({
      algorithm: fc.constantFrom(...algorithms),
      units: fc
        .uniqueArray(bigUnitSpec, { minLength: 1, maxLength: 2, selector: (u) => u.windowMs })
        .map((units) => [...units].sort((a, b) => a.windowMs - b.windowMs)),
    })
    .chain(({ algorithm, units }) =>
      fc
        .option(
          bigLimit(units[units.length - 1]!.windowMs).filter((b) => b >= 1),
          {
            nil: undefined,
          },
        )
        .map((burst) => ({ algorithm, burst, units })),
    );
}

/** The steps besides consume and advance, with the largest cost and block length to draw. */
function otherOps(maxCost: number, maxBlockMs: number): fc.Arbitrary<Op> {
  const counter = fc.integer({ min: 0, max: COUNTERS - 1 });
  const user = fc.integer({ min: 0, max: 1 });
  return fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant('release' as const),
        lastAdmitted: fc.boolean(),
        counter,
        mask: fc.integer({ min: 1, max: 7 }),
        cost: fc.option(fc.integer({ min: 1, max: maxCost }), { nil: undefined, freq: 2 }),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('peek' as const),
        counter,
        mask: fc.integer({ min: 1, max: 7 }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('reset' as const), counter }) },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('block' as const),
        user,
        ms: fc.integer({ min: 1, max: maxBlockMs }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('blockedFor' as const), user }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('unblock' as const), user }) },
  );
}

/** A random schedule: the comparison with the model. */
function schedule(fixture: PropertyFixture): fc.Arbitrary<Schedule> {
  const maxCost = fixture.maxCost ?? 4;
  return scheduleOf(counterSpec(fixture, 6), consume(maxCost), advance, otherOps(maxCost, 3_000));
}

/**
 * A random schedule at the exact-arithmetic bound: limits, bursts and costs in the hundreds of
 * thousands to millions, windows of days and months, clock moves of up to two months.
 */
function bigSchedule(fixture: PropertyFixture): fc.Arbitrary<Schedule> {
  return scheduleOf(
    bigCounterSpec(fixture),
    fc.record({
      kind: fc.constant('consume' as const),
      counter: fc.integer({ min: 0, max: COUNTERS - 1 }),
      mask: fc.integer({ min: 1, max: 3 }),
      cost: fc.oneof(
        fc.constant(undefined),
        fc.integer({ min: 1, max: 1_000 }),
        fc.integer({ min: 1, max: mostFor(86_400_000) }),
      ),
      blockMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 2_678_400_000 })),
    }),
    fc.record({
      kind: fc.constant('advance' as const),
      ms: fc.oneof(
        fc.integer({ min: 0, max: 1_000 }),
        fc.integer({ min: 0, max: 86_400_000 }),
        fc.integer({ min: 0, max: 2 * 2_678_400_000 }),
      ),
    }),
    otherOps(mostFor(86_400_000), 2_678_400_000),
  );
}

function scheduleOf(
  counter: fc.Arbitrary<CounterSpec>,
  consumeOp: fc.Arbitrary<Op>,
  advanceOp: fc.Arbitrary<Op>,
  otherOp: fc.Arbitrary<Op>,
): fc.Arbitrary<Schedule> {
  return fc.record({
    startMs: START_MS,
    counters: fc.array(counter, { minLength: COUNTERS, maxLength: COUNTERS }),
    ops: fc.array(
      fc.oneof(
        { weight: 10, arbitrary: consumeOp },
        { weight: 4, arbitrary: advanceOp },
        { weight: 4, arbitrary: otherOp },
      ),
      { minLength: 1, maxLength: 80 },
    ),
  });
}

/** The units of one request's rule: the counter's units its mask selects (at least one). */
function limitsOf(spec: CounterSpec, mask: number): UnitLimit[] {
  const chosen = spec.units.filter((_, i) => (mask & (1 << i)) !== 0);
  const units = chosen.length > 0 ? chosen : [spec.units[0]!];
  return units.map(({ unit, windowMs, limit }) => ({ unit, windowMs, limit }));
}

function queryOf(
  spec: CounterSpec,
  target: RateLimitCounter,
  limits: readonly UnitLimit[],
  cost: number | undefined,
  blockMs: number,
): ConsumeQuery {
  return {
    counter: target,
    limits,
    blockMs,
    ...(spec.algorithm === undefined ? {} : { algorithm: spec.algorithm }),
    ...(spec.algorithm === 'token-bucket' && spec.burst !== undefined ? { burst: spec.burst } : {}),
    ...(cost === undefined ? {} : { cost }),
  };
}

/** An admitted request, for the bounds. */
interface Admission {
  readonly at: number;
  readonly cost: number;
}

/** The cost admitted in `[start, start + windowMs)`. */
function costWithin(admitted: readonly Admission[], start: number, windowMs: number): number {
  return admitted
    .filter(({ at }) => at >= start && at < start + windowMs)
    .reduce((sum, a) => sum + a.cost, 0);
}

const RUN = Math.random().toString(36).slice(2, 8);
let runNumber = 0;

const runsScale = Number(process.env['FC_RUNS'] ?? 1);
const seedOverride =
  process.env['FC_SEED'] === undefined ? undefined : Number(process.env['FC_SEED']);

/**
 * Registers the properties for one backend fixture: one `describe` named after it, the backend
 * created once in `beforeAll` and closed in `afterAll`.
 */
export function describeBackendProperties(fixture: PropertyFixture): void {
  describe(`RateLimitBackend properties: ${fixture.name}`, () => {
    /** The backend of the run in progress, closed however the run ends. */
    let made: Awaited<ReturnType<PropertyFixture['create']>> | undefined;
    async function closeRun(): Promise<void> {
      const closing = made;
      made = undefined;
      await closing?.close();
    }
    afterEach(closeRun);

    const params = <T>(seed: number): fc.Parameters<[T]> => ({
      numRuns: Math.max(1, Math.round(fixture.runs * runsScale)),
      seed: seedOverride ?? seed,
    });

    /**
     * A fresh run: a fresh backend (so a backend may remember a bounded set of window lengths, as
     * a real application uses a few), its clock moved by `startMs` so that aligned windows fall
     * anywhere, its own users and its own model.
     */
    async function startRun(startMs: number): Promise<{
      counterOf(i: number): RateLimitCounter;
      userName(i: number): string;
      model: ReferenceBackend;
      now(): number;
      backend: RateLimitBackend;
      advance(ms: number): void;
    }> {
      await closeRun();
      const current = await fixture.create();
      made = current;
      current.advance(startMs);
      runNumber += 1;
      const tag = `pp-${RUN}-${runNumber}-`;
      return {
        counterOf: (i) => ({ user: `${tag}u${userOf(i)}`, scope: `zone:c${i}`, method: '*' }),
        userName: (u) => `${tag}u${u}`,
        model: new ReferenceBackend(fixture.defaultAlgorithm ?? 'fixed-window'),
        now: () => Math.floor(current.now()),
        backend: current.backend,
        advance: (ms) => current.advance(ms),
      };
    }

    /** Replays each schedule on the backend and the model, comparing every step. */
    async function replaysLikeTheModel(schedules: fc.Arbitrary<Schedule>, seed: number) {
      await fc.assert(
        fc.asyncProperty(schedules, async ({ startMs, counters, ops }) => {
          const run = await startRun(startMs);
          const { backend } = run;
          let lastAdmitted: ConsumeQuery | undefined;
          for (const [step, op] of ops.entries()) {
            const now = run.now();
            let expected: ConsumeResult | PeekResult | boolean | number | undefined;
            let got: ConsumeResult | PeekResult | boolean | number | undefined;
            const queryFor = (
              counter: number,
              mask: number,
              cost: number | undefined,
              blockMs: number,
            ): ConsumeQuery => {
              const spec = counters[counter]!;
              return queryOf(spec, run.counterOf(counter), limitsOf(spec, mask), cost, blockMs);
            };
            if (op.kind === 'advance') {
              run.advance(op.ms);
              continue;
            } else if (op.kind === 'consume') {
              const query = queryFor(op.counter, op.mask, op.cost, op.blockMs);
              expected = run.model.consume(query, now);
              got = await backend.consume(query);
              if (got.allowed) lastAdmitted = query;
            } else if (op.kind === 'release') {
              // Nothing to compare but what the later steps see.
              const query =
                op.lastAdmitted && lastAdmitted !== undefined
                  ? lastAdmitted
                  : queryFor(op.counter, op.mask, op.cost, 0);
              run.model.release(query, now);
              await backend.release(query);
              expected = undefined;
              got = undefined;
            } else if (op.kind === 'peek') {
              const query = queryFor(op.counter, op.mask, undefined, 0);
              expected = run.model.peek(query, now);
              got = await backend.peek(query);
            } else if (op.kind === 'reset') {
              expected = run.model.reset(run.counterOf(op.counter), now);
              got = await backend.reset(run.counterOf(op.counter));
            } else if (op.kind === 'block') {
              run.model.block(run.userName(op.user), op.ms, now);
              await backend.block(run.userName(op.user), op.ms);
              expected = undefined;
              got = undefined;
            } else if (op.kind === 'blockedFor') {
              expected = run.model.blockedFor(run.userName(op.user), now);
              got = await backend.blockedFor(run.userName(op.user));
            } else {
              expected = run.model.unblock(run.userName(op.user), now);
              got = await backend.unblock(run.userName(op.user));
            }
            // The step and the op in both, so a failure shows where the schedule went apart.
            expect({ step, op, result: got }).toEqual({ step, op, result: expected });
          }
        }),
        params(seed),
      );
    }

    it('gives the reference model’s result for every step of a random schedule', async () => {
      await replaysLikeTheModel(schedule(fixture), 14_03);
    });

    if (fixture.algorithms.some((algorithm) => algorithm !== 'sliding-log')) {
      it('gives the reference model’s result at the exact-arithmetic bound (limits, costs, months)', async () => {
        await replaysLikeTheModel(bigSchedule(fixture), 14_53);
      });
    }

    /**
     * Heavy traffic on one counter with one unit of `limit` per `windowMs` (no blocks, no
     * resets): what the bounds are about. Starts a run at `startMs` and returns the backend's
     * admissions.
     */
    async function admissions(
      algorithm: RateLimitAlgorithm,
      bound: {
        readonly startMs: number;
        readonly windowMs: number;
        readonly limit: number;
        readonly burst?: number | undefined;
        readonly steps: readonly { readonly advanceMs: number; readonly cost: number }[];
      },
    ): Promise<Admission[]> {
      const { startMs, windowMs, burst, steps } = bound;
      const run = await startRun(startMs);
      const limit: UnitLimit = { unit: 'window', limit: bound.limit, windowMs };
      const admitted: Admission[] = [];
      const query = (cost: number): ConsumeQuery => ({
        counter: run.counterOf(0),
        limits: [limit],
        blockMs: 0,
        algorithm,
        cost,
        ...(burst === undefined ? {} : { burst }),
      });
      for (const { advanceMs, cost } of steps) {
        run.advance(advanceMs);
        const result = await run.backend.consume(query(cost));
        if (result.allowed) admitted.push({ at: run.now(), cost });
      }
      return admitted;
    }

    const traffic = (maxAdvance: number) =>
      fc.array(
        fc.record({
          advanceMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: maxAdvance })),
          cost: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: fixture.maxCost ?? 3 })),
        }),
        { minLength: 1, maxLength: 80 },
      );

    const boundParams = {
      startMs: START_MS,
      windowMs: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 41, max: 2_000 })),
      limit: fc.integer({ min: 1, max: 6 }),
    };

    if (fixture.algorithms.includes('sliding-window')) {
      it('sliding-window: never more than L in an aligned window, fewer than 2L in any W-long interval', async () => {
        await fc.assert(
          fc.asyncProperty(fc.record({ ...boundParams, steps: traffic(300) }), async (bound) => {
            const { windowMs: W, limit: L } = bound;
            const admitted = await admissions('sliding-window', bound);
            const perWindow = new Map<number, number>();
            for (const { at, cost } of admitted) {
              const k = Math.floor(at / W);
              perWindow.set(k, (perWindow.get(k) ?? 0) + cost);
            }
            for (const [k, total] of perWindow) {
              expect({ window: k, total, atMost: L }).toEqual({
                window: k,
                total: Math.min(total, L),
                atMost: L,
              });
            }
            // Any W-long interval [t, t + W): the worst ones start at an admission.
            for (const { at: start } of admitted) {
              const total = costWithin(admitted, start, W);
              expect({ from: start, total, below: 2 * L }).toEqual({
                from: start,
                total: Math.min(total, 2 * L - 1),
                below: 2 * L,
              });
            }
          }),
          params(14_31),
        );
      });
    }

    if (fixture.algorithms.includes('token-bucket')) {
      it('token-bucket: never more than burst + L × d / W in any d-long interval', async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.record({
              ...boundParams,
              burst: fc.option(fc.integer({ min: 1, max: 9 }), { nil: undefined }),
              steps: traffic(300),
            }),
            async (bound) => {
              const { windowMs: W, limit: L, burst } = bound;
              const admitted = await admissions('token-bucket', bound);
              const B = burst ?? L;
              // Every interval [a, b] between two admissions (the worst ones): exact integers,
              // total × W ≤ B × W + L × (b − a).
              for (const [i, first] of admitted.entries()) {
                let total = 0;
                for (const last of admitted.slice(i)) {
                  total += last.cost;
                  const d = last.at - first.at;
                  const allowance = B * W + L * d;
                  expect({
                    from: first.at,
                    to: last.at,
                    total,
                    fits: total * W <= allowance,
                  }).toEqual({ from: first.at, to: last.at, total, fits: true });
                }
              }
            },
          ),
          params(14_41),
        );
      });
    }

    if (fixture.algorithms.includes('sliding-log')) {
      it('sliding-log: never more than L in any W-long interval', async () => {
        await fc.assert(
          fc.asyncProperty(fc.record({ ...boundParams, steps: traffic(300) }), async (bound) => {
            const { windowMs: W, limit: L } = bound;
            const admitted = await admissions('sliding-log', bound);
            for (const { at: start } of admitted) {
              const total = costWithin(admitted, start, W);
              expect({ from: start, total }).toEqual({ from: start, total: Math.min(total, L) });
            }
          }),
          params(14_21),
        );
      });
    }
  });
}
