/**
 * `LocalRejectCache` in front of real backends, driven as the service drives it: `lookup`, else
 * `now()`, `consume` and `remember` (see {@link decide}).
 *
 * 1. Exact: random schedules (fast-check) of requests under shapes that share counters (a zone
 *    under two rules, two costs, a block longer and one shorter than its window, a burst), clock
 *    moves that land on, just before and just after the deadlines and window ends the backend
 *    reported, resets and unblocks: every decision through the cache equals the reference model's
 *    (test/support/reference-models.ts, which the conformance suite holds every backend to) at the
 *    same virtual instant, on `MemoryBackend` and on `RedisBackend` on a real `redis-server`. The
 *    model also sees every request the cache answered, so a cache that skipped a block the backend
 *    would have started shows up at a later step.
 * 2. Safe across instances: two caches in front of one backend never reject what it would admit.
 * 3. Cheap: on Redis, a flood of 1,000 calls from one rejected or blocked user sends one script
 *    call per rejection period or block (counted by the server, `INFO commandstats`), per
 *    algorithm as the cache documents it.
 *
 * Time is virtual: the backend's clock (`MemoryBackend`'s `clock`, `RedisBackend`'s `testClock`)
 * is the cache's `now`, starting a fraction into a millisecond (readings are truncated).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { LocalRejectCache } from '../lib/backends/local-reject-cache.js';
import { MemoryBackend } from '../lib/backends/memory.backend.js';
import type {
  ConsumeQuery,
  ConsumeResult,
  RateLimitBackend,
  RateLimitCounter,
} from '../lib/backends/rate-limit.backend.js';
import { RedisBackend } from '../lib/backends/redis/redis.backend.js';
import {
  RATE_LIMIT_ALGORITHMS,
  type RateLimitAlgorithm,
  type UnitLimit,
} from '../lib/rules/rule-units.js';
import { commandCalls } from './support/command-stats.js';
import { startOwnedRedisServer, type OwnedRedisServerHandle } from './support/redis-harness.js';
import { ReferenceBackend } from './support/reference-models.js';

let server: OwnedRedisServerHandle;
/** The backends' client, and one that only reads the server's command counts. */
let client: Redis;
let observer: Redis;

beforeAll(async () => {
  server = await startOwnedRedisServer();
  [client, observer] = await Promise.all([connect(), connect()]);
}, 30_000);

afterAll(async () => {
  await Promise.allSettled([client?.quit(), observer?.quit()]);
  await server?.stop();
});

async function connect(): Promise<Redis> {
  const redis = new Redis({
    host: server.host,
    port: server.port,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    lazyConnect: true,
  });
  await redis.connect();
  return redis;
}

/** A backend, the cache in front of it and their shared virtual clock. */
interface Rig {
  readonly backend: RateLimitBackend;
  readonly cache: LocalRejectCache;
  /** The clock in whole ms, as the backend reads it. */
  now(): number;
  advance(ms: number): void;
  /** Decisions the cache answered, and those the backend made. */
  hits: number;
  backendCalls: number;
}

type BackendKind = 'memory' | 'redis';

let prefixes = 0;
const RUN = Math.random().toString(36).slice(2, 8);
/** Runs follow one another on one clock per kind, so aligned windows fall anywhere. */
const clocks: Record<BackendKind, number> = { memory: 2 ** 40 + 0.5, redis: 1.7e12 + 0.75 };

/**
 * A fresh backend of `kind` counting `algorithm` by default, and a cache that knows it. The
 * fixed window is the backends' default and named in no query; the others are named.
 */
function rig(kind: BackendKind, algorithm: RateLimitAlgorithm, maxEntries = 10_000): Rig {
  const clock = (): number => clocks[kind];
  const backend =
    kind === 'memory'
      ? new MemoryBackend({ clock, sweepIntervalMs: 0, algorithm })
      : new RedisBackend(client, {
          prefix: `lrc:${RUN}:${++prefixes}:`,
          testClock: clock,
          algorithm,
        });
  return {
    backend,
    cache: new LocalRejectCache({ now: clock, algorithm: backend.algorithm, maxEntries }),
    now: () => Math.floor(clock()),
    advance(ms) {
      clocks[kind] += ms;
    },
    hits: 0,
    backendCalls: 0,
  };
}

/** What the service does with one query: the cache's answer, else the backend's, remembered. */
async function decide(rig: Rig, query: ConsumeQuery): Promise<ConsumeResult> {
  const cached = rig.cache.lookup(query);
  if (cached !== undefined) {
    rig.hits++;
    return cached;
  }
  const askedAt = rig.cache.now();
  const result = await rig.backend.consume(query);
  rig.backendCalls++;
  rig.cache.remember(query, result, askedAt);
  return result;
}

const unit = (name: UnitLimit['unit'], limit: number, windowMs: number): UnitLimit => ({
  unit: name,
  limit,
  windowMs,
});

/** A rule's shape: its units (one array per rule, as the module passes them), cost and block. */
interface Shape {
  readonly limits: readonly UnitLimit[];
  readonly cost?: number;
  readonly blockMs: number;
  /** Token bucket only. */
  readonly burst?: number;
}

const THREE_PER_SECOND = [unit('second', 3, 1_000)];
const SHAPES: readonly Shape[] = [
  { limits: THREE_PER_SECOND, blockMs: 0 },
  { limits: THREE_PER_SECOND, blockMs: 0, cost: 2 }, // the same rule, another cost
  { limits: [unit('second', 5, 1_000), unit('window', 7, 2_500)], blockMs: 0 },
  { limits: [unit('second', 2, 1_000)], blockMs: 1_500 }, // a block longer than its window
  { limits: [unit('second', 4, 1_000)], blockMs: 400 }, // a block shorter than its window
  { limits: [unit('minute', 4, 60_000)], blockMs: 0, cost: 3 },
  { limits: [unit('window', 2, 300), unit('minute', 9, 60_000)], blockMs: 700 },
  { limits: [unit('second', 4, 1_000)], blockMs: 0 }, // a dynamic limit's other value
  { limits: [unit('second', 5, 1_000)], blockMs: 300, cost: 2 },
];
const BUCKET_SHAPES: readonly Shape[] = [
  { limits: THREE_PER_SECOND, blockMs: 0, burst: 6 },
  { limits: [unit('second', 2, 1_000), unit('window', 3, 2_500)], blockMs: 900, burst: 4 },
  { limits: [unit('second', 2, 1_000)], blockMs: 2_000, burst: 5, cost: 3 },
];

/** Counters: user 0 on a zone (which several rules share) and a path, user 1 on the zone. */
const COUNTERS = 3;
const counterOf = (tag: string, i: number): RateLimitCounter =>
  i === 1
    ? { user: `${tag}u0`, scope: 'path:/p', method: 'GET' }
    : { user: `${tag}u${i === 0 ? 0 : 1}`, scope: 'zone:z', method: '*' };

function queryOf(
  counter: RateLimitCounter,
  shape: Shape,
  algorithm: RateLimitAlgorithm,
): ConsumeQuery {
  return {
    counter,
    limits: shape.limits,
    blockMs: shape.blockMs,
    ...(algorithm === 'fixed-window' ? {} : { algorithm }),
    ...(shape.cost === undefined ? {} : { cost: shape.cost }),
    ...(shape.burst === undefined ? {} : { burst: shape.burst }),
  };
}

type Op =
  | { readonly kind: 'consume'; readonly counter: number; readonly shape: number }
  /** The last consume again, as a client that retries does. */
  | { readonly kind: 'again' }
  | { readonly kind: 'advance'; readonly ms: number }
  /** To one of the last deadlines reported (a retry, a window end), give or take 1 ms. */
  | { readonly kind: 'deadline'; readonly back: number; readonly offset: -1 | 0 | 1 }
  | { readonly kind: 'reset'; readonly counter: number }
  | { readonly kind: 'unblock'; readonly user: number };

function ops(shapes: number): fc.Arbitrary<Op[]> {
  const op: fc.Arbitrary<Op> = fc.oneof(
    {
      weight: 12,
      arbitrary: fc.record({
        kind: fc.constant('consume' as const),
        counter: fc.integer({ min: 0, max: COUNTERS - 1 }),
        shape: fc.integer({ min: 0, max: shapes - 1 }),
      }),
    },
    { weight: 10, arbitrary: fc.constant({ kind: 'again' as const }) },
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant('advance' as const),
        ms: fc.constantFrom(0, 1, 2, 9, 50, 149, 401, 999, 2_400),
      }),
    },
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant('deadline' as const),
        back: fc.integer({ min: 0, max: 5 }),
        offset: fc.constantFrom(-1 as const, 0 as const, 1 as const),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('reset' as const),
        counter: fc.integer({ min: 0, max: COUNTERS - 1 }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('unblock' as const),
        user: fc.integer({ min: 0, max: 1 }),
      }),
    },
  );
  return fc.array(op, { minLength: 20, maxLength: 160 });
}

const shapesFor = (algorithm: RateLimitAlgorithm): readonly Shape[] =>
  algorithm === 'token-bucket' ? [...SHAPES, ...BUCKET_SHAPES] : SHAPES;

let runs = 0;

/**
 * Replays `schedule` through the cache on a fresh `kind` backend and on the model, comparing
 * every step; returns the rig for its counts.
 */
async function replay(
  kind: BackendKind,
  algorithm: RateLimitAlgorithm,
  schedule: { startMs: number; maxEntries: number; ops: Op[] },
): Promise<Rig> {
  const run = rig(kind, algorithm, schedule.maxEntries);
  run.advance(schedule.startMs);
  const model = new ReferenceBackend(algorithm);
  const tag = `${RUN}-${kind}-${++runs}-`;
  const shapes = shapesFor(algorithm);
  /** Instants the backend named: rejections' ends and units' resets, latest last. */
  const deadlines: number[] = [];
  let last: Op | undefined;
  try {
    for (const [step, scheduled] of schedule.ops.entries()) {
      const op = scheduled.kind === 'again' ? last : scheduled;
      if (op === undefined) continue;
      const now = run.now();
      if (op.kind === 'again') continue; // never stored as `last`
      if (op.kind === 'advance') run.advance(op.ms);
      else if (op.kind === 'deadline') {
        const target = deadlines[deadlines.length - 1 - op.back];
        if (target !== undefined && target + op.offset > now) run.advance(target + op.offset - now);
      } else if (op.kind === 'consume') {
        last = op;
        const query = queryOf(counterOf(tag, op.counter), shapes[op.shape]!, algorithm);
        const expected = model.consume(query, now);
        const got = await decide(run, query);
        expect({ step, op, result: got }).toEqual({ step, op, result: expected });
        if (!expected.allowed) deadlines.push(now + expected.retryAfterMs);
        for (const state of expected.units) deadlines.push(now + state.resetMs);
        if (deadlines.length > 24) deadlines.splice(0, deadlines.length - 24);
      } else if (op.kind === 'reset') {
        const counter = counterOf(tag, op.counter);
        model.reset(counter, now);
        await run.backend.reset(counter);
        run.cache.forgetCounter(counter);
      } else {
        const user = `${tag}u${op.user}`;
        model.unblock(user, now);
        await run.backend.unblock(user);
        run.cache.forgetUser(user);
      }
    }
  } finally {
    await run.backend.close();
  }
  return run;
}

const schedules = (algorithm: RateLimitAlgorithm) =>
  fc.record({
    startMs: fc.integer({ min: 0, max: 5_000 }),
    maxEntries: fc.constantFrom(2, 10_000),
    ops: ops(shapesFor(algorithm).length),
  });

describe.each(RATE_LIMIT_ALGORITHMS.map((algorithm) => [algorithm]))('%s', (algorithm) => {
  it.each<[BackendKind, number]>([
    ['memory', 300],
    ['redis', 25],
  ])(
    'answers exactly as the backend alone would, at every step (%s)',
    async (kind, numRuns) => {
      let hits = 0;
      await fc.assert(
        fc.asyncProperty(schedules(algorithm), async (schedule) => {
          hits += (await replay(kind, algorithm, schedule)).hits;
        }),
        { numRuns, seed: 15_06 },
      );
      // The cache did answer, more than once per schedule on average.
      expect(hits).toBeGreaterThan(numRuns);
    },
    120_000,
  );

  it('never rejects what the backend would admit, with two instances in front of one backend', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            instance: fc.integer({ min: 0, max: 1 }),
            counter: fc.integer({ min: 0, max: COUNTERS - 1 }),
            shape: fc.integer({ min: 0, max: shapesFor(algorithm).length - 1 }),
            advance: fc.constantFrom(0, 0, 1, 37, 250, 999),
          }),
          { minLength: 20, maxLength: 200 },
        ),
        async (steps) => {
          const first = rig('memory', algorithm);
          const second = {
            ...first,
            cache: new LocalRejectCache({ now: () => clocks.memory, algorithm }),
          };
          const model = new ReferenceBackend(algorithm);
          const tag = `${RUN}-two-${++runs}-`;
          for (const step of steps) {
            first.advance(step.advance);
            const query = queryOf(
              counterOf(tag, step.counter),
              shapesFor(algorithm)[step.shape]!,
              algorithm,
            );
            const alone = model.consume(query, first.now());
            const got = await decide(step.instance === 0 ? first : second, query);
            // Either instance may answer a rejection staler than the backend's, never an
            // admission it would not give nor a rejection where it would admit.
            expect(got.allowed).toBe(alone.allowed);
          }
        },
      ),
      { numRuns: 100, seed: 15_16 },
    );
  });
});

/** Script calls the server ran (EVALSHA, and EVAL for a first load), read from its counters. */
async function scriptCalls(): Promise<number> {
  const calls = await commandCalls(observer);
  return ['evalsha', 'evalsha_ro', 'eval', 'eval_ro'].reduce(
    (sum, name) => sum + (calls.get(name) ?? 0),
    0,
  );
}

/** One call of a flood: when, what was decided and whether the backend was asked. */
interface FloodCall {
  readonly at: number;
  readonly result: ConsumeResult;
  readonly fromBackend: boolean;
}

/**
 * 1,000 calls of `shape` from one user on Redis, one every `stepMs` of virtual time, through the
 * cache: checks every decision against the model and that the server ran exactly one script call
 * per backend call, and returns the calls.
 */
async function flood(algorithm: RateLimitAlgorithm, shape: Shape, stepMs: number) {
  const run = rig('redis', algorithm);
  const model = new ReferenceBackend(algorithm);
  const query = queryOf(counterOf(`${RUN}-flood-${++runs}-`, 0), shape, algorithm);
  // Loads the script, so that the flood itself runs EVALSHA only.
  await run.backend.consume(queryOf(counterOf(`${RUN}-warm-${runs}-`, 0), shape, algorithm));
  const calls: FloodCall[] = [];
  const before = await scriptCalls();
  for (let i = 0; i < 1_000; i++) {
    if (i > 0) run.advance(stepMs);
    const backendCalls = run.backendCalls;
    const result = await decide(run, query);
    calls.push({ at: run.now(), result, fromBackend: run.backendCalls > backendCalls });
  }
  const scripts = (await scriptCalls()) - before;
  await run.backend.close();

  for (const [i, call] of calls.entries()) {
    expect({ i, result: call.result }).toEqual({ i, result: model.consume(query, call.at) });
  }
  expect(scripts).toBe(run.backendCalls);
  return { calls, scripts };
}

/** The backend's rejections in each stretch of calls between two admissions. */
function rejectionsPerPeriod(calls: readonly FloodCall[]): number[] {
  const periods: number[] = [];
  let current: number | undefined;
  for (const call of calls) {
    if (call.result.allowed) {
      if (current !== undefined) periods.push(current);
      current = undefined;
    } else {
      current = (current ?? 0) + (call.fromBackend ? 1 : 0);
    }
  }
  if (current !== undefined) periods.push(current);
  return periods;
}

describe('a flood on Redis, counted by the server', () => {
  it.each(RATE_LIMIT_ALGORITHMS.map((algorithm) => [algorithm]))(
    '%s: 1,000 calls from a user over its limit cost one script call per rejection period',
    async (algorithm) => {
      // 5 a second, a call every 10 ms for 10 s.
      const { calls, scripts } = await flood(
        algorithm,
        { limits: [unit('second', 5, 1_000)], blockMs: 0 },
        10,
      );
      const admitted = calls.filter((call) => call.result.allowed).length;
      const periods = rejectionsPerPeriod(calls);
      expect(periods.length).toBeGreaterThanOrEqual(10);
      expect(periods.every((backendRejections) => backendRejections === 1)).toBe(true);
      // Every script call is an admission or the one rejection of a period (without the cache:
      // 1,000).
      expect(scripts).toBe(admitted + periods.length);
    },
    60_000,
  );

  it('fixed-window: 1,000 calls from a blocked user cost one script call per block', async () => {
    // 5 a second, blocked for 3 s on the 6th: a call every 10 ms for 10 s.
    const { calls, scripts } = await flood(
      'fixed-window',
      { limits: [unit('second', 5, 1_000)], blockMs: 3_000 },
      10,
    );
    const blocks = rejectionsPerPeriod(calls);
    expect(blocks.length).toBeGreaterThanOrEqual(3);
    expect(blocks.every((backendRejections) => backendRejections === 1)).toBe(true);
    expect(calls.filter((call) => call.result.blocked).length).toBeGreaterThan(900);
    expect(scripts).toBe(calls.filter((call) => call.result.allowed).length + blocks.length);
  }, 60_000);

  it.each<[RateLimitAlgorithm, string]>([
    ['sliding-log', 'until each of its entries has left: one per entry and one'],
    ['token-bucket', 'until its bucket is full: one per token and one'],
  ])(
    '%s: a blocked user costs one script call per change of its units (%s), then none until the block ends',
    async (algorithm) => {
      const limit = 5;
      const { calls } = await flood(
        algorithm,
        { limits: [unit('second', limit, 1_000)], blockMs: 3_000 },
        10,
      );
      const blocks = rejectionsPerPeriod(calls);
      expect(blocks.length).toBeGreaterThanOrEqual(3);
      for (const backendRejections of blocks) {
        expect(backendRejections).toBeGreaterThanOrEqual(1);
        expect(backendRejections).toBeLessThanOrEqual(limit + 1);
      }
      // The last 2 s of each 3-second block (the unit then holds nothing) cost nothing.
      expect(callsFromBackendDuringBlocks(calls, 1_000)).toBe(0);
    },
    60_000,
  );

  it('sliding-window: a blocked user costs one script call per millisecond until both windows hold nothing, then none until the block ends', async () => {
    const { calls } = await flood(
      'sliding-window',
      { limits: [unit('second', 5, 1_000)], blockMs: 3_000 },
      10,
    );
    expect(rejectionsPerPeriod(calls).length).toBeGreaterThanOrEqual(3);
    // Aligned windows: from 2 s into a block on, both windows of the unit hold nothing.
    expect(callsFromBackendDuringBlocks(calls, 2_000)).toBe(0);
  }, 60_000);

  it('1,000 concurrent calls from a blocked user: no script call once its block is remembered', async () => {
    const run = rig('redis', 'fixed-window');
    const query = queryOf(
      counterOf(`${RUN}-burst-`, 0),
      { limits: [unit('second', 1, 1_000)], blockMs: 60_000 },
      'fixed-window',
    );
    await decide(run, query); // admitted
    // All miss before any answer comes back: the backend batches them (64 to a script call).
    const first = await Promise.all(Array.from({ length: 1_000 }, () => decide(run, query)));
    const before = await scriptCalls();
    const second = await Promise.all(Array.from({ length: 1_000 }, () => decide(run, query)));
    const scripts = (await scriptCalls()) - before;
    await run.backend.close();
    expect(first.every((result) => !result.allowed && result.blocked)).toBe(true);
    expect(second).toEqual(first);
    expect(scripts).toBe(0);
    expect(run.hits).toBe(1_000);
  }, 60_000);
});

/**
 * Calls the backend answered during a block, `afterMs` or more after the block's first rejection
 * (a block is a stretch of blocked rejections).
 */
function callsFromBackendDuringBlocks(calls: readonly FloodCall[], afterMs: number): number {
  let count = 0;
  let blockStart: number | undefined;
  for (const call of calls) {
    if (!call.result.blocked) {
      blockStart = undefined;
      continue;
    }
    blockStart ??= call.at;
    if (call.fromBackend && call.at - blockStart >= afterMs) count++;
  }
  return count;
}
