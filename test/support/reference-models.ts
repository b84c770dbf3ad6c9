/**
 * The oracle of the conformance suite: a pure, deliberately simple model of every algorithm and of
 * the block, written straight from the `RateLimitAlgorithm` JSDoc (lib/rules/rule-units.ts) and
 * the `RateLimitBackend` class JSDoc (lib/backends/rate-limit.backend.ts). Obvious correctness
 * matters here, not speed: the sliding log is an array of entry times, the sliding window a count
 * per aligned window, and all arithmetic that could exceed 2^53 or round is done in BigInt.
 *
 * Where the contract leaves a case open, the model picks one reading and says so (search for
 * "Reading:"); a backend that disagrees there points at the contract, not necessarily at itself.
 *
 * Time is passed in, in whole milliseconds; nothing here reads a clock.
 */
import type {
  ConsumeQuery,
  ConsumeResult,
  PeekResult,
  RateLimitCounter,
  UnitState,
} from '../../lib/backends/rate-limit.backend.js';
import type {
  RateLimitAlgorithm,
  RateLimitUnitName,
  UnitLimit,
} from '../../lib/rules/rule-units.js';

/** What one unit of one request sees, before anything is counted. */
interface UnitView {
  /** Whether the request's cost fits (the unit is not exhausted). */
  readonly fits: boolean;
  /** When it does not fit: the first later millisecond offset at which it would. */
  readonly wait: number;
  /** The unit as it stands: remaining and resetMs if nothing is counted. */
  readonly standing: UnitState;
  /** Counts the request and returns the unit's state after it. Only called when `fits`. */
  admit(): UnitState;
  /**
   * Gives back `cost` (`RateLimitBackend.release`), never below zero, and nothing once the window
   * the state last counted in no longer weighs.
   */
  release(): void;
}

/** The part of the model that knows one algorithm: a view of one unit of one counter at `now`. */
type UnitModel = (
  store: Map<string, unknown>,
  key: string,
  limit: UnitLimit,
  cost: number,
  burst: number | undefined,
  now: number,
) => UnitView;

const big = BigInt;

/** Floor division of BigInts (BigInt `/` truncates towards zero). */
function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

/** Ceiling division of BigInts. */
function ceilDiv(a: bigint, b: bigint): bigint {
  return -floorDiv(-a, b);
}

function state(limit: UnitLimit, remaining: number, resetMs: number): UnitState {
  return {
    unit: limit.unit,
    limit: limit.limit,
    windowMs: limit.windowMs,
    // `+ 0` turns a -0 into 0 (toEqual tells them apart); remaining is "0 or more".
    remaining: Math.max(0, remaining) + 0,
    resetMs: resetMs + 0,
  };
}

/**
 * A limit of 0 for the sliding log and the token bucket: never fits, the window as the wait, 0
 * remaining and the window as reset (the JSDoc's rule for a limit of 0, where the algorithm's own
 * formulas do not apply: the log's "until one fits" never comes, the bucket's `ceil(D / L)` would
 * divide by 0). The fixed and sliding windows report theirs as they stand (see each).
 */
function zeroLimit(limit: UnitLimit): UnitView {
  return {
    fits: false,
    wait: limit.windowMs,
    standing: state(limit, 0, limit.windowMs),
    admit: () => {
      throw new Error('a limit of 0 admits nothing');
    },
    release: () => {
      throw new Error('a limit of 0 has nothing of its own to give back');
    },
  };
}

// ---------------------------------------------------------------------------------------------
// fixed-window: a count and the window's start.
// ---------------------------------------------------------------------------------------------

interface FixedWindow {
  count: number;
  start: number;
}

const fixedWindow: UnitModel = (store, key, limit, cost, _burst, now) => {
  const L = limit.limit;
  const W = limit.windowMs;
  const stored = store.get(key) as FixedWindow | undefined;
  const live = stored !== undefined && now < stored.start + W;
  const count = live ? stored.count : 0;
  const timeLeft = live ? stored.start + W - now : W;
  const fits = L > 0 && cost <= L && count + cost <= L;
  return {
    fits,
    // A limit of 0 or a cost above L never fits: the window as the wait. Otherwise the window's
    // time left. (A limit of 0 reports the window as it stands, as the JSDoc says.)
    wait: L === 0 || cost > L ? W : timeLeft,
    standing: state(limit, L - count, timeLeft),
    admit() {
      if (live) {
        stored.count += cost;
        return state(limit, L - stored.count, timeLeft);
      }
      store.set(key, { count: cost, start: now } satisfies FixedWindow);
      return state(limit, L - cost, W);
    },
    // Reading: the running window, whichever request started it; an ended one has nothing left.
    release() {
      if (live) stored.count = Math.max(0, stored.count - cost);
    },
  };
};

// ---------------------------------------------------------------------------------------------
// sliding-window: the admitted cost of every aligned window, by window number.
// ---------------------------------------------------------------------------------------------

const slidingWindow: UnitModel = (store, key, limit, cost, _burst, now) => {
  let counts = store.get(key) as Map<number, number> | undefined;
  const W = big(limit.windowMs);
  const L = big(limit.limit);
  const c = big(cost);
  const k = Math.floor(now / limit.windowMs);
  const e = big(now) - big(k) * W;
  const p = big(counts?.get(k - 1) ?? 0);
  const q = big(counts?.get(k) ?? 0);
  const remaining = (qAfter: bigint): number =>
    Number(floorDiv(L * W - p * (W - e) - qAfter * W, W));
  const fits = L > 0n && c <= L && p * (W - e) + (q + c) * W <= L * W;

  let wait = Number(W);
  if (!fits && L > 0n && c <= L) {
    // The first later e' in this window at which p × (W − e') + (q + c) × W ≤ L × W, if any;
    // else in the next window, where this window's q is the previous count and nothing is current.
    let inThisWindow: bigint | undefined;
    if (q + c <= L) {
      const e1 = W - floorDiv((L - q - c) * W, p);
      if (e1 < W) inThisWindow = e1 - e;
    }
    if (inThisWindow !== undefined) wait = Number(inThisWindow);
    else {
      const e2 = q === 0n ? 0n : W - floorDiv((L - c) * W, q);
      wait = Number(W - e + (e2 > 0n ? e2 : 0n));
    }
  }
  const resetMs = Number(W - e);
  return {
    fits,
    wait,
    standing: state(limit, remaining(q), resetMs),
    admit() {
      if (counts === undefined) {
        counts = new Map();
        store.set(key, counts);
      }
      counts.set(k, Number(q + c));
      return state(limit, remaining(q + c), resetMs);
    },
    // Reading: the last window anything was counted in, while it weighs (this one or the one
    // before); older windows no longer count.
    release() {
      const last = lastCounted(counts);
      if (last === k || last === k - 1) counts!.set(last, Math.max(0, counts!.get(last)! - cost));
    },
  };
};

/** The last window a sliding-window counter counted anything in; undefined for none. */
function lastCounted(counts: Map<number, number> | undefined): number | undefined {
  return counts === undefined || counts.size === 0 ? undefined : Math.max(...counts.keys());
}

// ---------------------------------------------------------------------------------------------
// sliding-log: every admitted unit of cost as an entry stamped with its time.
// ---------------------------------------------------------------------------------------------

const slidingLog: UnitModel = (store, key, limit, cost, _burst, now) => {
  if (limit.limit === 0) return zeroLimit(limit);
  const L = limit.limit;
  const W = limit.windowMs;
  let log = store.get(key) as number[] | undefined;
  /** The entries that count at `now`, oldest first, and when each stops counting. */
  const counting = (entries: readonly number[]): number[] =>
    entries
      .filter((t) => now < t + W)
      .sort((a, b) => a - b)
      .map((t) => t + W - now);
  const reset = (leaving: readonly number[]): number => {
    const n = leaving.length;
    // No request of cost 1 fits: until one does, when the (n + 1 − L)-th oldest entry leaves.
    if (n + 1 > L) return leaving[n + 1 - L - 1]!;
    return n > 0 ? leaving[0]! : W;
  };
  const before = counting(log ?? []);
  const n = before.length;
  const fits = cost <= L && n + cost <= L;
  return {
    fits,
    // Until the (n + c − L)-th oldest entry stops counting.
    wait: cost > L ? W : fits ? 0 : before[n + cost - L - 1]!,
    standing: state(limit, L - n, reset(before)),
    admit() {
      if (log === undefined) {
        log = [];
        store.set(key, log);
      }
      for (let i = 0; i < cost; i++) log.push(now);
      const after = counting(log);
      return state(limit, L - after.length, reset(after));
    },
    // Reading: the newest entries that count; an entry that left the window gives nothing.
    release() {
      if (log === undefined) return;
      log.sort((a, b) => a - b);
      for (let i = Math.min(cost, n); i > 0; i--) log.pop();
    },
  };
};

// ---------------------------------------------------------------------------------------------
// token-bucket: GCRA, stored as the JSDoc says, as the end of the debt and a remainder.
// ---------------------------------------------------------------------------------------------

interface Bucket {
  /** When the debt `D` reaches 0. */
  end: number;
  /** `ceil(D / L) × L − D` at the time it was stored. */
  r: bigint;
}

const tokenBucket: UnitModel = (store, key, limit, cost, burst, now) => {
  if (limit.limit === 0) return zeroLimit(limit);
  const L = big(limit.limit);
  const W = big(limit.windowMs);
  const B = big(burst ?? limit.limit);
  const c = big(cost);
  const stored = store.get(key) as Bucket | undefined;
  const debt = (): bigint => {
    if (stored === undefined || stored.end <= now) return 0n;
    const D = big(stored.end - now) * L - stored.r;
    return D > 0n ? D : 0n;
  };
  const D = debt();
  const fits = c <= B && D + c * W <= B * W;
  const view = (d: bigint): UnitState =>
    state(limit, Number(floorDiv(B * W - d, W)), Number(ceilDiv(d, L)));
  return {
    fits,
    wait: c > B ? Number(W) : Number(ceilDiv(D + c * W - B * W, L)),
    standing: view(D),
    admit() {
      const after = D + c * W;
      const toFull = ceilDiv(after, L);
      store.set(key, { end: now + Number(toFull), r: toFull * L - after } satisfies Bucket);
      return view(after);
    },
    // The theoretical arrival time back by c × W / L, never before now: a full bucket is no key.
    release() {
      if (D === 0n) return;
      const after = D - c * W;
      if (after <= 0n) {
        store.delete(key);
        return;
      }
      const toFull = ceilDiv(after, L);
      store.set(key, { end: now + Number(toFull), r: toFull * L - after } satisfies Bucket);
    },
  };
};

const MODELS: Readonly<Record<RateLimitAlgorithm, UnitModel>> = {
  'fixed-window': fixedWindow,
  'sliding-window': slidingWindow,
  'sliding-log': slidingLog,
  'token-bucket': tokenBucket,
};

/**
 * The whole backend contract in memory: counters per (counter, algorithm, unit, window length),
 * blocks per user. One instance stands for one backend; pass each call's time.
 */
export class ReferenceBackend {
  /** Every unit's state; keys are JSON arrays, so no two parts can merge. */
  private readonly units = new Map<string, unknown>();
  /** Per algorithm, the keys of `units` of each counter, for `reset`. */
  private readonly blocks = new Map<string, number>();

  /** @param algorithm what a query that names none counts with (the backend's default) */
  constructor(readonly algorithm: RateLimitAlgorithm = 'fixed-window') {}

  /** The decision of one query at `now`, counted when admitted. */
  consume(query: ConsumeQuery, now: number): ConsumeResult {
    const algorithm = query.algorithm ?? this.algorithm;
    const cost = query.cost ?? 1;
    const model = MODELS[algorithm];
    const views = query.limits.map((limit) =>
      model(this.units, this.keyOf(query.counter, algorithm, limit), limit, cost, query.burst, now),
    );

    // The exhausted unit with the longest wait. Reading: on a tie, the first in rule order.
    let unit: RateLimitUnitName | undefined;
    let wait = 0;
    views.forEach((view, i) => {
      if (!view.fits && (unit === undefined || view.wait > wait)) {
        unit = query.limits[i]!.unit;
        wait = view.wait;
      }
    });
    const standing = views.map((view) => view.standing);

    const until = this.blocks.get(query.counter.user);
    if (until !== undefined && now < until) {
      return {
        allowed: false,
        retryAfterMs: Math.max(until - now, wait),
        blocked: true,
        unit,
        units: standing,
      };
    }
    if (unit !== undefined) {
      if (query.blockMs > 0) {
        this.blocks.set(query.counter.user, now + query.blockMs);
        return {
          allowed: false,
          retryAfterMs: Math.max(query.blockMs, wait),
          blocked: true,
          unit,
          units: standing,
        };
      }
      return { allowed: false, retryAfterMs: wait, blocked: false, unit, units: standing };
    }
    return {
      allowed: true,
      retryAfterMs: 0,
      blocked: false,
      unit: undefined,
      units: views.map((view) => view.admit()),
    };
  }

  /** Every unit of the query's counter as a rejected request at `now` sees it, and the block. */
  peek(query: ConsumeQuery, now: number): PeekResult {
    const algorithm = query.algorithm ?? this.algorithm;
    const model = MODELS[algorithm];
    return {
      blockedMs: this.blockedFor(query.counter.user, now),
      units: query.limits.map(
        (limit) =>
          model(this.units, this.keyOf(query.counter, algorithm, limit), limit, 1, query.burst, now)
            .standing,
      ),
    };
  }

  /**
   * Gives back the query's cost in every unit at `now` (see each algorithm's `release`). Reading:
   * a unit with a limit of 0 never admitted anything under this query, so it gives nothing back.
   */
  release(query: ConsumeQuery, now: number): void {
    const algorithm = query.algorithm ?? this.algorithm;
    const cost = query.cost ?? 1;
    for (const limit of query.limits) {
      if (limit.limit === 0) continue;
      const key = this.keyOf(query.counter, algorithm, limit);
      MODELS[algorithm](this.units, key, limit, cost, query.burst, now).release();
    }
  }

  /** Blocks the user for `ms` from `now`, replacing any block. */
  block(user: string, ms: number, now: number): void {
    this.blocks.set(user, now + ms);
  }

  /** The ms left of the user's block at `now`; 0 for none. */
  blockedFor(user: string, now: number): number {
    const until = this.blocks.get(user);
    return until === undefined || until <= now ? 0 : until - now;
  }

  /** Lifts the user's block; whether one was active at `now`. */
  unblock(user: string, now: number): boolean {
    const until = this.blocks.get(user);
    this.blocks.delete(user);
    return until !== undefined && now < until;
  }

  /**
   * Forgets every unit of `counter`, for every algorithm and window. Whether any unit still held
   * something at `now`. Reading: a fixed window while `now` is inside it, a sliding window while
   * the last window it counted in is the current or the previous one, a log while an entry
   * counts, a bucket while its debt is above 0. (A window whose count a release took back to 0
   * still runs, so it still "holds" its window: the backends keep its end, as they must.)
   */
  reset(counter: RateLimitCounter, now: number): boolean {
    const prefix = JSON.stringify([counter.user, counter.scope, counter.method]).slice(0, -1) + ',';
    let existed = false;
    for (const [key, value] of [...this.units]) {
      if (!key.startsWith(prefix)) continue;
      const [, , , algorithm, , windowMs] = JSON.parse(key) as [
        string,
        string,
        string,
        RateLimitAlgorithm,
        string,
        number,
      ];
      existed ||= holdsSomething(algorithm, value, windowMs, now);
      this.units.delete(key);
    }
    return existed;
  }

  private keyOf(
    counter: RateLimitCounter,
    algorithm: RateLimitAlgorithm,
    limit: UnitLimit,
  ): string {
    return JSON.stringify([
      counter.user,
      counter.scope,
      counter.method,
      algorithm,
      limit.unit,
      limit.windowMs,
    ]);
  }
}

function holdsSomething(
  algorithm: RateLimitAlgorithm,
  value: unknown,
  windowMs: number,
  now: number,
): boolean {
  switch (algorithm) {
    case 'fixed-window':
      return now < (value as FixedWindow).start + windowMs;
    case 'sliding-window': {
      const k = Math.floor(now / windowMs);
      const last = lastCounted(value as Map<number, number>);
      return last !== undefined && last >= k - 1;
    }
    case 'sliding-log':
      return (value as number[]).some((t) => now < t + windowMs);
    case 'token-bucket':
      return (value as Bucket).end > now;
  }
}
