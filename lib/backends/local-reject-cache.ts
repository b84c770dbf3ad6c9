import {
  describeValue,
  optionFailure,
  rejectUnknownKeys,
  type FailOption,
} from '../config-validation.js';
import { RATE_LIMIT_ALGORITHMS, type RateLimitAlgorithm } from '../rules/rule-units.js';
import { counterKey } from './counter-key.js';
import type {
  ConsumeQuery,
  ConsumeResult,
  RateLimitCounter,
  UnitState,
} from './rate-limit.backend.js';

/** Options of {@link LocalRejectCache}. Every option is optional. */
export interface LocalRejectCacheOptions {
  /**
   * Most rejections remembered at once (one per counter and query shape). When a new one would
   * pass it, expired entries are dropped first, then the one remembered earliest: that only
   * costs its counter one more backend call. At most 16,777,216, the most a `Map` can hold.
   * @default 10_000
   */
  readonly maxEntries?: number;
  /**
   * The algorithm of queries that name none: pass the backend's own `algorithm`. How long a
   * rejection can be answered exactly depends on it (see {@link LocalRejectCache}); unset, a
   * query that names no algorithm is answered from the cache only within the millisecond of its
   * backend decision.
   * @default undefined
   */
  readonly algorithm?: RateLimitAlgorithm;
  /**
   * The time source, in milliseconds, read on every lookup; readings are truncated to whole
   * milliseconds. It must never go backwards; tests pass the virtual clock of their backend.
   * @default () => performance.now() (monotonic: a wall-clock step neither shortens nor
   * stretches a remembered rejection)
   */
  readonly now?: () => number;
}

/** The largest number of entries one `Map` can hold in V8. */
const MAX_MAP_ENTRIES = 2 ** 24;

const KNOWN_OPTIONS: ReadonlySet<string> = new Set(['maxEntries', 'algorithm', 'now']);
const OPTION_HINTS: Readonly<Record<string, string>> = {
  max: 'maxEntries',
  maxKeys: 'maxEntries',
  maxSize: 'maxEntries',
  size: 'maxEntries',
  clock: 'now',
  testClock: 'now',
  strategy: 'algorithm',
};

const defaultClock = (): number => performance.now();

/** How one unit of a remembered rejection moves with time, if nothing is counted. */
const STILL = 0; // exactly as reported, at every instant
const COUNTDOWN = 1; // remaining as reported, resetMs counting down
const FIXED_WINDOW = 2; // COUNTDOWN until the window ends, then a fresh window (limit, windowMs)
const SLIDING_RESET = 3; // remaining as reported, resetMs = time to the next aligned window
type UnitMotion = typeof STILL | typeof COUNTDOWN | typeof FIXED_WINDOW | typeof SLIDING_RESET;

/** For how long a rejection stands exactly, and how its units move meanwhile. */
interface Projection {
  /** Milliseconds from the decision during which the answer is known exactly (at least 1). */
  readonly lifeMs: number;
  /** Milliseconds from the decision after which `unit` is reported as none (Infinity: never). */
  readonly unitEndsMs: number;
  /**
   * Per unit of the result, how it moves; undefined when the answer is only kept within its
   * millisecond.
   */
  readonly motions: readonly UnitMotion[] | undefined;
}

/** Kept only within the millisecond of the decision, where nothing can have changed. */
const WITHIN_ITS_MILLISECOND: Projection = { lifeMs: 1, unitEndsMs: Infinity, motions: undefined };

/** A user with remembered rejections: the head of the list of its counters, and its blocks. */
class CachedUser {
  firstCounter: CachedCounter | undefined = undefined;
  /** Sequence number of the last blocked result remembered for this user (0: none). */
  blockSeq = 0;
  constructor(readonly name: string) {}
}

/** One counter with remembered rejections (one per query shape), in its user's list. */
class CachedCounter {
  readonly shapes = new Map<string, Entry>();
  previousOfUser: CachedCounter | undefined = undefined;
  nextOfUser: CachedCounter | undefined = undefined;
  constructor(
    /** `counterKey` of the counter. */
    readonly key: string,
    readonly user: CachedUser,
  ) {}
}

/** One remembered rejection. */
class Entry {
  /** Neighbours in the order entries were remembered, oldest first (for eviction). */
  older: Entry | undefined = undefined;
  newer: Entry | undefined = undefined;
  /** The last answer built, and the elapsed milliseconds it is for (a flood hits one ms often). */
  private lastElapsed = 0;
  private lastAnswer: ConsumeResult;

  constructor(
    readonly counter: CachedCounter,
    readonly shape: string,
    readonly seq: number,
    /** When the backend was asked, in whole ms of the cache's clock. */
    readonly askedAt: number,
    readonly result: ConsumeResult,
    readonly projection: Projection,
  ) {
    this.lastAnswer = result;
  }

  /** The backend's answer `elapsed` ms after it decided (`0 ≤ elapsed < lifeMs`). */
  answerAt(elapsed: number): ConsumeResult {
    if (elapsed === this.lastElapsed) return this.lastAnswer;
    const { result, projection } = this;
    const motions = projection.motions!; // lifeMs > 1 only with motions
    const reported = result.units;
    const units = new Array<UnitState>(reported.length);
    for (let i = 0; i < reported.length; i++) units[i] = moved(reported[i]!, motions[i]!, elapsed);
    const answer: ConsumeResult = {
      allowed: false,
      retryAfterMs: result.retryAfterMs - elapsed,
      blocked: result.blocked,
      unit: elapsed < projection.unitEndsMs ? result.unit : undefined,
      units,
    };
    this.lastElapsed = elapsed;
    this.lastAnswer = answer;
    return answer;
  }
}

/** A unit `elapsed` ms after the decision, as `motion` says it moves. */
function moved(state: UnitState, motion: UnitMotion, elapsed: number): UnitState {
  const { unit, limit, windowMs, remaining, resetMs } = state;
  switch (motion) {
    case STILL:
      return state;
    case COUNTDOWN:
      return { unit, limit, windowMs, remaining, resetMs: resetMs - elapsed };
    case FIXED_WINDOW:
      return elapsed < resetMs
        ? { unit, limit, windowMs, remaining, resetMs: resetMs - elapsed }
        : { unit, limit, windowMs, remaining: limit, resetMs: windowMs };
    case SLIDING_RESET:
      return {
        unit,
        limit,
        windowMs,
        remaining,
        resetMs: windowMs - ((windowMs - resetMs + elapsed) % windowMs),
      };
  }
}

/** The last shape string built for one `limits` array, with what else went into it. */
interface ShapeMemo {
  readonly algorithm: RateLimitAlgorithm | undefined;
  readonly burst: number | undefined;
  readonly cost: number;
  readonly blockMs: number;
  readonly shape: string;
}

/**
 * Rejections this instance remembers, so that a counter the backend rejected until a time `t` is
 * rejected here until `t` without asking the backend again: the `localRejectCache` module option
 * (SPEC 7, "hot-key shortcut"). A flood from one user over a one-unit rule of cost 1 then costs
 * the backend one call per rejection (until `t`) on every algorithm, and a blocked user one call
 * per block on a fixed window; on the other algorithms a blocked user costs one call per change of
 * its units (each entry that leaves a log, each token a bucket gets back, each millisecond of a
 * sliding window until its two windows hold nothing), then none until the block ends. See below
 * for why, and for what the result cannot tell.
 *
 * Use: {@link lookup} before asking the backend (a hit is the decision); otherwise read
 * {@link now}, ask the backend, and pass its result to {@link remember} with that reading. An
 * admin `reset` calls {@link forgetCounter}, an `unblock` or `block` {@link forgetUser}, once the
 * backend has done it.
 *
 * **What is remembered, under which key.** Only rejections (an admitted result forgets every
 * rejection of its counter, since it changed the counter's state), under the counter (user,
 * scope, method, encoded by `counterKey`, so no two counters share a key) and the query's shape:
 * every unit's name, limit and window, the algorithm, the burst, the cost and the block time.
 * Two rules sharing a zone's counter with different limits, a dynamic limit that differs per
 * caller, or two costs are different shapes. A rejection of one cost is never used for another:
 * a higher cost is rejected too until `t`, but its wait is longer, so the cache would not give
 * the backend's answer. Likewise a block is only used for the query it was returned for: on the
 * user's other counters the backend would report those counters' own units and waits.
 *
 * **Why a remembered rejection stands.** A rejection counts nothing and, apart from starting a
 * block, changes no state (the backend contract). Until `t`, what the backend would answer to the
 * same query changes only through: time; requests admitted on the same counter (under another
 * shape: the same shape is rejected until `t`); a block started on the user; and `reset`,
 * `unblock`, `block`, `release` or state the backend loses (a `MemoryBackend` at `maxKeys`, a
 * Redis eviction or failover). Admissions and blocks only add to what the counter holds, which
 * never lets a request in earlier. So, whatever other instances do, a remembered rejection never
 * rejects a request the backend would admit, except after a reset, unblock, block or release on
 * another instance (or lost state): this instance does not see those until the entry ends. What
 * can differ when other instances count on the same user is the rest of the answer: a longer
 * `retryAfterMs`, `blocked`, other units' `remaining`. Two exceptions the caller must keep out of
 * the cache: a counter of a rule that counts only some responses (`count: 'failures'` or
 * `'successes'`), and every counter such a rule shares (a zone), since a `release` on any
 * instance frees capacity before `t`; and, across instances, token buckets that rules of
 * different rates share (an admission at one rate can refill the bucket as the other rate reads
 * it).
 *
 * **Exact.** While this instance is the only one changing the user's counters and block, every
 * answer from the cache equals, field by field, what the backend would answer at that instant,
 * to the millisecond: admissions here forget the counter's entries, a blocked result here makes
 * the user's unblocked entries stale, and the local admin calls forget (this takes the backend to
 * decide one user's requests in the order they were asked, as `MemoryBackend` does, and
 * `RedisBackend` over the one connection to the user's node). Each entry is kept exactly
 * as long as the result says how it moves with time; past that the backend is asked again. Time
 * is local: the entry starts when the backend was asked (the reading passed to `remember`, which
 * is no later than the backend's decision) and lasts a duration, since the backend's clock (Redis
 * `TIME`) need not agree with this one; between two machines that is exact up to the phase of
 * their milliseconds. Entries end at the time they are known until, never later, and below,
 * "until `t`" means until `retryAfterMs` after the decision. `L` is a unit's limit, `W` its
 * window, `c` the cost; a unit is exhausted when its `remaining` is below `c`.
 *
 * - Every algorithm: within the decision's own millisecond nothing has changed, so any rejection
 *   is kept for that millisecond (a flood costs at most one call per millisecond). A unit with a
 *   limit of 0 or a cost above its capacity has the whole window as its wait at every instant
 *   (it never counts down), so its rejections are kept only that long.
 * - `'fixed-window'`: a window's count only changes by admissions; an exhausted unit's wait is
 *   its window's time left, which is its `resetMs`. So every unit keeps its `remaining` while its
 *   `resetMs` counts down, and once its window ends it stands fresh (`L` remaining, `W` reset)
 *   because nothing is admitted. Every unit is known at every instant: kept until `t`.
 * - `'sliding-log'`: entries only stop counting, oldest first, and the first of them leaves at the
 *   unit's `resetMs` (whether or not it is full); before that nothing changes but the countdown.
 *   An empty log stays empty. Kept until `t` or until the first `resetMs` of a unit that holds
 *   entries, whichever comes first (for one unit and cost 1 that is `t`).
 * - `'token-bucket'`: the debt only falls, by `L` per ms: `resetMs` (until full) counts down, and
 *   `remaining` grows by one at instants the result does not give exactly (it gives the debt only
 *   to within a token and a millisecond). Kept until `t` or until the earliest instant a unit's
 *   `remaining` can grow, computed from its `remaining` and `resetMs` (the next token): for the
 *   exhausted unit of an unblocked rejection with `c − 1` remaining, that instant is `t` itself.
 *   A full bucket stays full.
 * - `'sliding-window'`: the estimate falls as the previous window fades, by steps that depend on
 *   that window's count, which the result does not carry; `resetMs` is the time to the next
 *   aligned window. An unblocked rejection whose exhausted unit has `c − 1` remaining keeps it
 *   until `t` (the estimate only falls, and reaching `c` is `t`), and a unit that holds nothing
 *   stays so; any other unit is known only within the millisecond. So a one-unit rule of cost 1
 *   is kept until `t`.
 * - A block (`blocked`): it ends at `t` when no unit is exhausted (`unit` undefined), or when the
 *   exhausted unit's wait is known to end before `t` (at the latest at a fixed window's, a cost-1
 *   log's or a bucket's `resetMs`, or a log's window). Then it is kept as above but never past
 *   the block, during which no new block can start; for a fixed window, `unit` turns to none when
 *   its window ends. Otherwise (and for a sliding window's exhausted unit, known only within its
 *   millisecond anyway) the block's end is unknown: it may end before `t`, and then the backend
 *   would start a new block or stop reporting one, so it is kept only within its millisecond.
 *
 * Memory: at most {@link LocalRejectCacheOptions.maxEntries} entries, no timer. Lookups, and
 * remembering, are O(1) (amortised: a full pass over the entries, dropping expired ones, runs at
 * most once per `maxEntries / 2` insertions when the cache is full); a lookup for a user with
 * nothing remembered allocates nothing, one for a remembered user builds the counter's key.
 */
export class LocalRejectCache {
  private readonly maxEntries: number;
  private readonly defaultAlgorithm: RateLimitAlgorithm | undefined;
  private readonly clock: () => number;
  private readonly users = new Map<string, CachedUser>();
  private readonly counters = new Map<string, CachedCounter>();
  private readonly shapes = new WeakMap<ConsumeQuery['limits'], ShapeMemo>();
  private oldest: Entry | undefined = undefined;
  private newest: Entry | undefined = undefined;
  private entries = 0;
  /** Increases with every entry and every blocked result remembered. */
  private seq = 0;
  private insertsSinceSweep = 0;
  /** When forget* last ran (whole ms): results asked for until then are not remembered. */
  private forgottenAt = -Infinity;

  /**
   * @param options the size bound, the algorithm of queries that name none, and the clock
   * @throws RateLimitConfigError (`RATE_LIMIT_INVALID_OPTION`) when an option is invalid
   */
  constructor(options: LocalRejectCacheOptions = {}) {
    const fail: FailOption = optionFailure('LocalRejectCache');
    const given: unknown = options ?? {};
    if (typeof given !== 'object' || given === null || Array.isArray(given)) {
      fail(
        'options',
        `must be an object such as { maxEntries: 10_000 }, got ${describeValue(given)}.`,
      );
    }
    rejectUnknownKeys(given, KNOWN_OPTIONS, OPTION_HINTS, 'a LocalRejectCache option', fail);
    const { maxEntries = 10_000, algorithm, now = defaultClock } = options ?? {};
    if (
      typeof maxEntries !== 'number' ||
      !Number.isInteger(maxEntries) ||
      maxEntries < 1 ||
      maxEntries > MAX_MAP_ENTRIES
    ) {
      fail(
        'maxEntries',
        `must be a whole number from 1 to ${MAX_MAP_ENTRIES}; leave it unset for the default ` +
          `of 10000. Got ${describeValue(maxEntries)}.`,
      );
    }
    if (
      algorithm !== undefined &&
      !(RATE_LIMIT_ALGORITHMS as readonly unknown[]).includes(algorithm)
    ) {
      fail(
        'algorithm',
        `must be one of ${RATE_LIMIT_ALGORITHMS.map((name) => `'${name}'`).join(', ')}: the ` +
          `backend's own algorithm. Got ${describeValue(algorithm)}.`,
      );
    }
    if (typeof now !== 'function') {
      fail(
        'now',
        `must be a function returning the time in milliseconds, such as () => performance.now(). ` +
          `Got ${describeValue(now)}.`,
      );
    }
    this.maxEntries = maxEntries;
    this.defaultAlgorithm = algorithm;
    this.clock = now;
  }

  /** Number of entries, expired ones not reclaimed yet included. Never more than `maxEntries`. */
  get size(): number {
    return this.entries;
  }

  /** The cache's clock, in ms: read it right before asking the backend, for {@link remember}. */
  now(): number {
    return this.clock();
  }

  /**
   * A rejection that still stands for this query, as the backend would report it now
   * (`retryAfterMs` and each unit's `resetMs` reduced by the time elapsed, and what else time
   * changes), or undefined: then ask the backend.
   */
  lookup(query: ConsumeQuery): ConsumeResult | undefined {
    if (this.entries === 0) return undefined;
    const user = this.users.get(query.counter.user);
    if (user === undefined) return undefined;
    const counter = this.counters.get(counterKey(query.counter));
    if (counter === undefined) return undefined;
    const entry = counter.shapes.get(this.shapeOf(query));
    if (entry === undefined) return undefined;
    const elapsed = Math.floor(this.clock()) - entry.askedAt;
    if (
      elapsed >= entry.projection.lifeMs ||
      elapsed < 0 ||
      // A block was remembered after this unblocked rejection: the backend would report it.
      (!entry.result.blocked && entry.seq < user.blockSeq)
    ) {
      this.remove(entry);
      return undefined;
    }
    return entry.answerAt(elapsed);
  }

  /**
   * Called with every backend result of a consume: remembers a rejection for as long as it is
   * exact to (see the class description); an admitted result forgets its counter's rejections.
   * Never call it with a decision of the failure policy, only with what the backend returned.
   * @param askedAt {@link now}, read right before the backend was asked: the rejection is timed
   *   from it, so it never outlasts the backend's own, and a result that arrives late or out of
   *   order is timed right
   */
  remember(query: ConsumeQuery, result: ConsumeResult, askedAt: number): void {
    const user = this.users.get(query.counter.user);
    if (result.allowed) {
      if (user === undefined) return;
      const counter = this.counters.get(counterKey(query.counter));
      if (counter !== undefined) this.removeCounter(counter);
      return;
    }
    // The user's unblocked entries do not know of this block: lookups drop them.
    if (result.blocked && user !== undefined) user.blockSeq = ++this.seq;
    const key = counterKey(query.counter);
    const shape = this.shapeOf(query);
    let counter = this.counters.get(key);
    const previous = counter?.shapes.get(shape);
    if (previous !== undefined) this.remove(previous);

    const asked = Math.floor(askedAt);
    const now = Math.floor(this.clock());
    if (!(asked > this.forgottenAt) || asked > now) return;
    const projection = project(query, result, query.algorithm ?? this.defaultAlgorithm);
    if (projection === undefined || now - asked >= projection.lifeMs) return;

    if (this.entries >= this.maxEntries) this.makeRoom(now);
    counter = this.counters.get(key); // makeRoom may have removed it
    if (counter === undefined) counter = this.addCounter(key, query.counter);
    const entry = new Entry(counter, shape, ++this.seq, asked, result, projection);
    counter.shapes.set(shape, entry);
    entry.older = this.newest;
    if (this.newest === undefined) this.oldest = entry;
    else this.newest.newer = entry;
    this.newest = entry;
    this.entries++;
    this.insertsSinceSweep++;
  }

  /** Forgets the counter's remembered rejections (`RateLimitAdmin.reset` calls it). */
  forgetCounter(counter: RateLimitCounter): void {
    this.forgottenAt = Math.floor(this.clock());
    if (this.entries === 0) return;
    const cached = this.counters.get(counterKey(counter));
    if (cached !== undefined) this.removeCounter(cached);
  }

  /** Forgets every remembered rejection of the user (`RateLimitAdmin.unblock` and `block` call it). */
  forgetUser(user: string): void {
    this.forgottenAt = Math.floor(this.clock());
    const cached = this.users.get(user);
    if (cached === undefined) return;
    while (cached.firstCounter !== undefined) this.removeCounter(cached.firstCounter);
  }

  /** The query's shape: everything but the counter that decides its outcome. */
  private shapeOf(query: ConsumeQuery): string {
    const { limits, algorithm, burst, blockMs } = query;
    const cost = query.cost ?? 1;
    const memo = this.shapes.get(limits);
    if (
      memo !== undefined &&
      memo.algorithm === algorithm &&
      memo.burst === burst &&
      memo.cost === cost &&
      memo.blockMs === blockMs
    ) {
      return memo.shape;
    }
    // Fields are numbers, unit names and algorithm names: none contains '|' or ','.
    const parts: (string | number)[] = [algorithm ?? '', burst ?? '', cost, blockMs];
    for (const { unit, limit, windowMs } of limits) parts.push(`${unit},${limit},${windowMs}`);
    const shape = parts.join('|');
    this.shapes.set(limits, { algorithm, burst, cost, blockMs, shape });
    return shape;
  }

  private addCounter(key: string, counter: RateLimitCounter): CachedCounter {
    let user = this.users.get(counter.user);
    if (user === undefined) {
      user = new CachedUser(counter.user);
      this.users.set(counter.user, user);
    }
    const cached = new CachedCounter(key, user);
    cached.nextOfUser = user.firstCounter;
    if (user.firstCounter !== undefined) user.firstCounter.previousOfUser = cached;
    user.firstCounter = cached;
    this.counters.set(key, cached);
    return cached;
  }

  private removeCounter(counter: CachedCounter): void {
    // Removing its last entry removes the counter.
    for (const entry of [...counter.shapes.values()]) this.remove(entry);
  }

  private remove(entry: Entry): void {
    if (entry.older === undefined) this.oldest = entry.newer;
    else entry.older.newer = entry.newer;
    if (entry.newer === undefined) this.newest = entry.older;
    else entry.newer.older = entry.older;
    entry.older = entry.newer = undefined;
    this.entries--;
    const counter = entry.counter;
    counter.shapes.delete(entry.shape);
    if (counter.shapes.size !== 0) return;
    this.counters.delete(counter.key);
    const user = counter.user;
    if (counter.previousOfUser === undefined) user.firstCounter = counter.nextOfUser;
    else counter.previousOfUser.nextOfUser = counter.nextOfUser;
    if (counter.nextOfUser !== undefined)
      counter.nextOfUser.previousOfUser = counter.previousOfUser;
    if (user.firstCounter === undefined) this.users.delete(user.name);
  }

  /** Frees one entry at least: expired ones (a full pass at most every maxEntries / 2 insertions), else the oldest. */
  private makeRoom(now: number): void {
    if (this.insertsSinceSweep * 2 >= this.maxEntries) {
      this.insertsSinceSweep = 0;
      for (let entry = this.oldest; entry !== undefined;) {
        const next = entry.newer;
        if (this.expired(entry, now)) this.remove(entry);
        entry = next;
      }
    }
    while (this.entries >= this.maxEntries) this.remove(this.oldest!);
  }

  private expired(entry: Entry, now: number): boolean {
    const elapsed = now - entry.askedAt;
    return (
      elapsed >= entry.projection.lifeMs ||
      elapsed < 0 ||
      (!entry.result.blocked && entry.seq < entry.counter.user.blockSeq)
    );
  }
}

/**
 * For how long `result` stays the backend's exact answer to `query` if nothing else is counted
 * for its user, and how its units move meanwhile; undefined for what is not remembered at all.
 * The reasons are in the {@link LocalRejectCache} description, per algorithm.
 */
function project(
  query: ConsumeQuery,
  result: ConsumeResult,
  algorithm: RateLimitAlgorithm | undefined,
): Projection | undefined {
  const retry = result.retryAfterMs;
  if (result.allowed || !isWholeMs(retry) || retry < 1) return undefined;
  const { limits } = query;
  const units = result.units;
  const cost = query.cost ?? 1;
  if (algorithm === undefined || units.length !== limits.length) return WITHIN_ITS_MILLISECOND;

  // The result must be what the contract says, unit by unit, for the reasoning to apply.
  let exhausted = -1;
  for (let i = 0; i < units.length; i++) {
    const state = units[i]!;
    const limit = limits[i]!;
    const capacity = algorithm === 'token-bucket' ? (query.burst ?? limit.limit) : limit.limit;
    if (
      state.unit !== limit.unit ||
      state.limit !== limit.limit ||
      state.windowMs !== limit.windowMs ||
      !isWholeMs(state.remaining) ||
      !isWholeMs(state.resetMs) ||
      !isWholeMs(limit.windowMs) ||
      limit.windowMs < 1 ||
      // A wait of the whole window at every instant: it never counts down.
      limit.limit < 1 ||
      cost > capacity
    ) {
      return WITHIN_ITS_MILLISECOND;
    }
    // Exhausted means the cost does not fit: the reported unit must be, and without one, none.
    if (state.unit === result.unit) {
      if (state.remaining >= cost) return WITHIN_ITS_MILLISECOND;
      exhausted = i;
    } else if (result.unit === undefined && state.remaining < cost) {
      return WITHIN_ITS_MILLISECOND;
    }
  }
  if (result.unit === undefined ? !result.blocked : exhausted < 0) return WITHIN_ITS_MILLISECOND;
  if (!result.blocked && query.blockMs > 0) return WITHIN_ITS_MILLISECOND;

  let lifeMs = retry;
  let unitEndsMs = Infinity;
  if (result.blocked && exhausted >= 0) {
    // retry is the longer of the block's end and the unit's wait: the block ends at `retry`
    // only when the wait is known to end sooner.
    const state = units[exhausted]!;
    const known = exactWait(algorithm, state, cost);
    const latest = latestWait(algorithm, state, cost);
    if (latest === undefined || !(latest < retry)) return WITHIN_ITS_MILLISECOND;
    // Past the wait the unit is no longer exhausted: `unit` becomes none where that instant is
    // known; elsewhere the units' own bounds below end the entry before it.
    if (known !== undefined) unitEndsMs = known;
  }

  const motions = new Array<UnitMotion>(units.length);
  for (let i = 0; i < units.length; i++) {
    const state = units[i]!;
    const isTheExhausted = i === exhausted && !result.blocked;
    const [motion, horizon] = unitMotion(algorithm, state, query, cost, isTheExhausted, retry);
    motions[i] = motion;
    if (horizon < lifeMs) lifeMs = horizon;
  }
  return { lifeMs: Math.max(1, lifeMs), unitEndsMs, motions };
}

/**
 * How one unit moves with time if nothing is counted, and for how many ms from the decision that
 * is known (Infinity: always). `isTheExhausted`: it is the unit whose wait is `retry` (`t`).
 */
function unitMotion(
  algorithm: RateLimitAlgorithm,
  state: UnitState,
  query: ConsumeQuery,
  cost: number,
  isTheExhausted: boolean,
  retry: number,
): [UnitMotion, number] {
  const { limit, windowMs, remaining, resetMs } = state;
  switch (algorithm) {
    case 'fixed-window':
      // Full and a whole window to go: no window runs (a running one holds an admission).
      return remaining === limit && resetMs === windowMs
        ? [STILL, Infinity]
        : [FIXED_WINDOW, Infinity];
    case 'sliding-log':
      // An empty log; else the first entry leaves at resetMs.
      return remaining === limit && resetMs === windowMs ? [STILL, Infinity] : [COUNTDOWN, resetMs];
    case 'token-bucket': {
      if (resetMs === 0) return [STILL, Infinity]; // full
      if (isTheExhausted && remaining === cost - 1) return [COUNTDOWN, retry];
      return [COUNTDOWN, nextTokenAtLeast(state, query.burst ?? limit)];
    }
    case 'sliding-window':
      // Nothing held in this window nor the previous one stays so; the exhausted unit one short
      // of the cost stays so until it fits, at `t`.
      if (remaining === limit) return [SLIDING_RESET, Infinity];
      if (isTheExhausted && remaining === cost - 1) return [SLIDING_RESET, retry];
      return [SLIDING_RESET, 1];
  }
}

/** The exhausted unit's wait, where the result gives it exactly. */
function exactWait(
  algorithm: RateLimitAlgorithm,
  state: UnitState,
  cost: number,
): number | undefined {
  if (algorithm === 'fixed-window') return state.resetMs;
  if (algorithm === 'sliding-log' && cost === 1) return state.resetMs;
  return undefined;
}

/**
 * The longest the exhausted unit's wait can be, from what the result gives; undefined where it
 * would not matter (a sliding window's exhausted unit is known only within its millisecond).
 */
function latestWait(
  algorithm: RateLimitAlgorithm,
  state: UnitState,
  cost: number,
): number | undefined {
  switch (algorithm) {
    case 'fixed-window':
      return state.resetMs;
    case 'sliding-log':
      // Until some entry leaves; every entry leaves within a window.
      return cost === 1 ? state.resetMs : state.windowMs;
    case 'token-bucket':
      // Enough tokens come no later than a full bucket.
      return state.resetMs;
    case 'sliding-window':
      return undefined;
  }
}

/**
 * The earliest instant (ms from the decision, at least 1) at which a bucket's `remaining` can
 * grow, from what the result gives: with `B` the burst, `D` the debt, `r` the remaining and `R`
 * the reset, `r = floor((B × W − D) / W)` (or 0 when a rule with a larger burst filled it past
 * this one) and `R = ceil(D / L)`, so `D > max(B × W − (r + 1) × W, (R − 1) × L)`, and `remaining`
 * reaches `r + 1` at `ceil((D − B × W + (r + 1) × W) / L)`. In BigInt: `B × W` may pass 2^53.
 */
function nextTokenAtLeast(state: UnitState, burst: number): number {
  const L = BigInt(state.limit);
  const W = BigInt(state.windowMs);
  const B = BigInt(burst);
  const r = BigInt(state.remaining);
  const R = BigInt(state.resetMs);
  const below = B * W - (r + 1n) * W;
  const lowest = (below > (R - 1n) * L ? below : (R - 1n) * L) + 1n; // the least D can be
  const over = lowest - below;
  const at = (over + L - 1n) / L; // ceil: over > 0
  return Number(at < 1n ? 1n : at);
}

function isWholeMs(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}
