import {
  closestMatch,
  describeValue,
  optionFailure,
  rejectUnknownKeys,
  type FailOption,
} from '../config-validation.js';
import {
  RATE_LIMIT_ALGORITHMS,
  type RateLimitAlgorithm,
  type RateLimitUnitName,
  type UnitLimit,
} from '../rules/rule-units.js';
import { counterKey } from './counter-key.js';
import { AlgorithmStores } from './memory/algorithm-stores.js';
import type { EntryStore } from './memory/entry-store.js';
import { FIXED_WINDOW_COUNTER } from './memory/fixed-window.counter.js';
import { FrontCursor } from './memory/front-cursor.js';
import { SLIDING_LOG_COUNTER } from './memory/sliding-log.counter.js';
import { SLIDING_WINDOW_COUNTER } from './memory/sliding-window.counter.js';
import { TOKEN_BUCKET_COUNTER } from './memory/token-bucket.counter.js';
import type { UnitCounter } from './memory/unit-counter.js';
import { checkBlockLength } from './block-length.js';
import {
  RateLimitBackend,
  type ConsumeQuery,
  type ConsumeResult,
  type PeekResult,
  type RateLimitCounter,
  type UnitState,
} from './rate-limit.backend.js';

/** Options of {@link MemoryBackend}. Every option is optional. */
export interface MemoryBackendOptions {
  /**
   * How every query that names no algorithm (a rule without `algorithm`) is counted; see
   * `RateLimitAlgorithm` for what each one admits. Every algorithm is available to every rule
   * whatever this says.
   * @default 'fixed-window'
   */
  readonly algorithm?: RateLimitAlgorithm;
  /**
   * Most entries kept at once: one entry per (counter, unit, algorithm) plus one per blocked user.
   * It bounds memory whatever the traffic (many distinct users, paths or IPv6 addresses). When a
   * new entry would pass it, expired entries are dropped first, then the entry placed earliest
   * (for a fixed window, the window that started earliest) is evicted (see {@link MemoryBackend}
   * for what that means for its user). At most 16,777,216, the most entries a JavaScript `Map`
   * can hold.
   * @default 1_000_000
   */
  readonly maxKeys?: number;
  /**
   * How often, in milliseconds, one background sweep drops expired entries and blocks, so memory
   * is given back even when no new request arrives. The timer is unref'd (it never keeps the
   * process alive) and starts with the first request. `0` turns it off; call
   * {@link MemoryBackend.sweep} yourself then (expired entries are still replaced when their
   * counter is used again, and dropped when `maxKeys` is reached).
   * @default 10_000
   */
  readonly sweepIntervalMs?: number;
  /**
   * The time source, in milliseconds; readings are truncated to whole milliseconds. It must never
   * go backwards; tests pass a function returning a variable they advance by hand.
   * @default () => performance.now() (monotonic: wall-clock changes neither shorten nor stretch a window)
   */
  readonly clock?: () => number;
}

/** The largest number of entries one `Map` can hold in V8; a larger `maxKeys` would throw later. */
const MAX_MAP_ENTRIES = 2 ** 24;

/** The largest delay `setInterval` accepts; above it Node silently fires every millisecond. */
const MAX_TIMER_DELAY = 2 ** 31 - 1;

const KNOWN_OPTIONS: ReadonlySet<string> = new Set([
  'algorithm',
  'maxKeys',
  'sweepIntervalMs',
  'clock',
]);
/** Names other stores use for the same options, with the option meant. */
const OPTION_HINTS: Readonly<Record<string, string>> = {
  strategy: 'algorithm',
  algorithms: 'algorithm',
  max: 'maxKeys',
  maxSize: 'maxKeys',
  maxEntries: 'maxKeys',
  sweepInterval: 'sweepIntervalMs',
  cleanupInterval: 'sweepIntervalMs',
  cleanupIntervalMs: 'sweepIntervalMs',
  now: 'clock',
  testClock: 'clock',
};

/**
 * Blocks examined per sweep. Blocks of different lengths do not expire in insertion order, so
 * they are walked with a cursor that resumes on the next sweep; the budget keeps one tick short
 * however many users are blocked (which `maxKeys` bounds anyway).
 */
const BLOCK_SWEEP_BUDGET = 10_000;

const defaultClock = (): number => performance.now();

/** Every algorithm, as {@link MemoryBackend.algorithms} reports them. */
const ALL_ALGORITHMS: readonly RateLimitAlgorithm[] = Object.freeze([...RATE_LIMIT_ALGORITHMS]);

/** Each algorithm's counter, by name. */
const COUNTERS: Readonly<Record<RateLimitAlgorithm, UnitCounter<unknown>>> = Object.freeze({
  'fixed-window': FIXED_WINDOW_COUNTER,
  'sliding-window': SLIDING_WINDOW_COUNTER,
  'sliding-log': SLIDING_LOG_COUNTER,
  'token-bucket': TOKEN_BUCKET_COUNTER,
});

/**
 * Counters in this process's memory: fast and atomic (every call is synchronous), but not shared
 * between processes or hosts; use `RedisBackend` for that.
 *
 * Algorithms: all four (`RateLimitAlgorithm` defines each one exactly), the query's or else the
 * backend's {@link MemoryBackendOptions.algorithm} (a fixed window by default, which starts with
 * the first request after the previous window ended and covers `[start, start + windowMs)`). A
 * rejected request counts in no unit. A block belongs to the user, across every counter and
 * algorithm, and is not extended by requests made while blocked; their wait is the longer of the
 * block's remainder and their own rule's exhausted units.
 *
 * Memory: one small entry per (counter, unit, algorithm) and one per blocked user: two numbers for
 * a fixed window, three for a two-window counter and for a token bucket, and a log that grows with
 * the limit for a sliding log. There is no timer per entry: one unref'd interval per backend
 * ({@link MemoryBackendOptions.sweepIntervalMs}) drops expired entries without waiting for
 * traffic. Each unit of each algorithm keeps its entries in the order they were placed, and a
 * sweep only touches the expired entries at the front, stopping at the first live one. For fixed
 * and sliding windows that order is the order of expiry, so every expired entry goes at the next
 * sweep; a log or bucket is placed again at most once per window (see its counter), so an expired
 * one may wait behind a live one: at most one window for a log, one window plus the longest
 * refill time (`burst / limit` windows) of its unit for a bucket (a {@link release} can end an
 * entry earlier: a log's wait is then at most two windows). Blocks are walked with a resumable
 * cursor, a bounded number per sweep.
 *
 * Eviction when {@link MemoryBackendOptions.maxKeys} is reached: expired entries are dropped
 * first. If every entry is live, the entry placed earliest (across all units and algorithms) is
 * evicted: for a fixed window, the window that started earliest; for a two-window counter, the one
 * whose last window started earliest; for a log or bucket, the one placed earliest. That user's
 * next request on that counter and unit starts afresh, so it may get up to one extra window's
 * worth of requests (a full bucket for a token bucket). Blocks are evicted last, oldest first and
 * only when no entry is left, because releasing a blocked user early is worse than resetting a
 * counter. Each store and the blocks are read from the front by a cursor kept between calls, so
 * finding what to drop costs amortised O(1) however many entries are held: a flood of new
 * identities at `maxKeys` costs each request a constant, not a scan. Size `maxKeys` well above
 * (active counters x units) so eviction stays exceptional.
 */
export class MemoryBackend extends RateLimitBackend {
  private readonly clock: () => number;
  private readonly maxKeys: number;
  private readonly sweepIntervalMs: number;
  private readonly defaultAlgorithm: RateLimitAlgorithm;

  /** Every store of every algorithm, for loops that run often (sweep, size, reset). */
  private readonly storeList: EntryStore<unknown>[] = [];
  private readonly fixedWindows: AlgorithmStores;
  private readonly slidingWindows: AlgorithmStores;
  private readonly slidingLogs: AlgorithmStores;
  private readonly tokenBuckets: AlgorithmStores;
  /** The stores of {@link defaultAlgorithm}: a query without `algorithm` finds them at once. */
  private readonly defaultStores: AlgorithmStores;
  /** Blocked users and when their block ends. Re-inserted on every new block: ordered by start. */
  private readonly blocks = new Map<string, number>();
  /** Reads {@link blocks} from the front for eviction; every block it returns is deleted at once. */
  private readonly blockEvictor = new FrontCursor(this.blocks);
  /** Where the last sweep stopped in {@link blocks}; undefined to start a new pass. */
  private blockCursor: Iterator<[string, number]> | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;

  /**
   * @param options the default algorithm, limits on memory, the sweep interval and the clock
   * @throws RateLimitConfigError (`RATE_LIMIT_INVALID_OPTION`) when an option is invalid
   */
  constructor(options: MemoryBackendOptions = {}) {
    super();
    const fail: FailOption = optionFailure('MemoryBackend');
    // Checked because JavaScript callers (or `as` casts) can pass anything.
    const given: unknown = options ?? {};
    if (typeof given !== 'object' || given === null || Array.isArray(given)) {
      fail(
        'options',
        `must be an object such as { maxKeys: 100_000 }, got ${describeValue(given)}.`,
      );
    }
    rejectUnknownKeys(given, KNOWN_OPTIONS, OPTION_HINTS, 'a MemoryBackend option', fail);
    const {
      algorithm = 'fixed-window',
      maxKeys = 1_000_000,
      sweepIntervalMs = 10_000,
      clock = defaultClock,
    } = options ?? {};
    if (!(RATE_LIMIT_ALGORITHMS as readonly unknown[]).includes(algorithm)) {
      const meant =
        typeof algorithm === 'string' ? closestMatch(algorithm, ALL_ALGORITHMS) : undefined;
      fail(
        'algorithm',
        `must be one of ${ALL_ALGORITHMS.map((name) => `'${name}'`).join(', ')}` +
          `${meant === undefined ? '' : `; did you mean '${meant}'?`} ` +
          `Leave it unset for the default, 'fixed-window'. Got ${describeValue(algorithm)}.`,
      );
    }
    if (
      typeof maxKeys !== 'number' ||
      !Number.isInteger(maxKeys) ||
      maxKeys < 1 ||
      maxKeys > MAX_MAP_ENTRIES
    ) {
      fail(
        'maxKeys',
        `must be a whole number of entries from 1 to ${MAX_MAP_ENTRIES} (the most a Map can hold); ` +
          `leave it unset for the default of 1000000. Got ${describeValue(maxKeys)}.`,
      );
    }
    if (
      typeof sweepIntervalMs !== 'number' ||
      !Number.isFinite(sweepIntervalMs) ||
      sweepIntervalMs < 0 ||
      sweepIntervalMs > MAX_TIMER_DELAY
    ) {
      fail(
        'sweepIntervalMs',
        `must be a number of milliseconds from 0 to ${MAX_TIMER_DELAY}; use 0 to turn the ` +
          `periodic sweep off and call sweep() yourself. Got ${describeValue(sweepIntervalMs)}.`,
      );
    }
    if (typeof clock !== 'function') {
      fail(
        'clock',
        `must be a function returning the time in milliseconds, such as () => performance.now(); ` +
          `leave it unset for that default. Got ${describeValue(clock)}.`,
      );
    }
    this.defaultAlgorithm = algorithm;
    this.maxKeys = maxKeys;
    this.sweepIntervalMs = sweepIntervalMs;
    this.clock = clock;
    const created = (store: EntryStore<unknown>): void => {
      this.storeList.push(store);
    };
    const beforeNewEntry = (now: number): void => {
      if (this.size >= this.maxKeys) this.makeRoom(now);
    };
    const storesOf = (algorithm: RateLimitAlgorithm): AlgorithmStores =>
      new AlgorithmStores(COUNTERS[algorithm], created, beforeNewEntry);
    this.fixedWindows = storesOf('fixed-window');
    this.slidingWindows = storesOf('sliding-window');
    this.slidingLogs = storesOf('sliding-log');
    this.tokenBuckets = storesOf('token-bucket');
    this.defaultStores = this.storesOf(algorithm);
  }

  /** The algorithm of queries that name none: the `algorithm` option. */
  override get algorithm(): RateLimitAlgorithm {
    return this.defaultAlgorithm;
  }

  /** All four: `'fixed-window'`, `'sliding-window'`, `'sliding-log'`, `'token-bucket'`. */
  override get algorithms(): readonly RateLimitAlgorithm[] {
    return ALL_ALGORITHMS;
  }

  /**
   * Decides one request, synchronously (no Promise, so the hot path allocates none). See
   * {@link RateLimitBackend} for the contract.
   */
  override consume(query: ConsumeQuery): ConsumeResult {
    const now = this.now();
    const user = query.counter.user;
    const stores =
      query.algorithm === undefined ? this.defaultStores : this.storesOf(query.algorithm);

    // 1. The user's block, from this or any other counter. Rejected, but the rule's units are
    // read (never counted): the wait must cover them too, or a client that obeys it comes back
    // to an exhausted unit that blocks it again.
    if (this.blocks.size !== 0) {
      const until = this.blocks.get(user);
      if (until !== undefined) {
        if (now < until) {
          return this.consumeMany(query, stores, counterKey(query.counter), now, until - now);
        }
        this.blocks.delete(user); // expired: reclaim it now rather than at the next sweep
      }
    }
    if (this.timer === undefined && this.sweepIntervalMs > 0) this.startTimer();

    const key = counterKey(query.counter);
    return query.limits.length === 1
      ? this.consumeOne(query, stores, key, now)
      : this.consumeMany(query, stores, key, now);
  }

  /**
   * {@link consume} for a rule of one unit, by far the most common: the same decision as
   * {@link consumeMany}, without its per-call arrays.
   */
  private consumeOne(
    query: ConsumeQuery,
    stores: AlgorithmStores,
    key: string,
    now: number,
  ): ConsumeResult {
    const limit = query.limits[0]!;
    const counter = stores.counter;
    const store = stores.storeFor(limit);
    const entry = store.entries.get(key);
    const cost = query.cost ?? 1;
    const capacity = counter.capacity(limit.limit, query.burst);
    const wait =
      limit.limit === 0 || cost > capacity
        ? limit.windowMs
        : counter.wait(entry, limit, capacity, cost, now);
    if (wait > 0) return this.rejectOne(query, counter, entry, capacity, now, wait);
    return admitted([counter.admit(store, key, entry, limit, capacity, cost, now)]);
  }

  /**
   * {@link consumeOne}'s rejection, apart so that the admitted path, which runs most, is small
   * enough for V8 to inline everything it calls (measured: some 5% of a decision otherwise).
   */
  private rejectOne(
    query: ConsumeQuery,
    counter: UnitCounter<unknown>,
    entry: unknown,
    capacity: number,
    now: number,
    wait: number,
  ): ConsumeResult {
    const limit = query.limits[0]!;
    const state = counter.stateOf(entry, limit, capacity, now);
    return this.reject(query, now, wait, limit.unit, [state]);
  }

  /**
   * {@link consume} for a rule of several units, and for any rule while the user is blocked
   * (`blockLeft` ms of the block left; 0 when not blocked), which rejects whatever the units say.
   */
  private consumeMany(
    query: ConsumeQuery,
    stores: AlgorithmStores,
    key: string,
    now: number,
    blockLeft = 0,
  ): ConsumeResult {
    // Look at every unit before touching any, so a rejection counts nothing.
    const counter = stores.counter;
    const limits = query.limits;
    const cost = query.cost ?? 1;
    const burst = query.burst;
    const n = limits.length;
    const unitStores = new Array<EntryStore<unknown>>(n);
    const entries = new Array<unknown>(n);
    let exhausted: UnitLimit | undefined;
    let wait = 0;
    for (let i = 0; i < n; i++) {
      const limit = limits[i]!;
      const store = stores.storeFor(limit);
      const entry = store.entries.get(key);
      unitStores[i] = store;
      entries[i] = entry;
      const capacity = counter.capacity(limit.limit, burst);
      const unitWait =
        limit.limit === 0 || cost > capacity
          ? limit.windowMs
          : counter.wait(entry, limit, capacity, cost, now);
      if (unitWait > 0 && (exhausted === undefined || unitWait > wait)) {
        exhausted = limit;
        wait = unitWait;
      }
    }

    const units = new Array<UnitState>(n);
    if (exhausted !== undefined || blockLeft > 0) {
      for (let i = 0; i < n; i++) {
        const limit = limits[i]!;
        units[i] = counter.stateOf(entries[i], limit, counter.capacity(limit.limit, burst), now);
      }
      return this.reject(query, now, wait, exhausted?.unit, units, blockLeft);
    }

    // Admitted: count it in every unit.
    for (let i = 0; i < n; i++) {
      const limit = limits[i]!;
      const capacity = counter.capacity(limit.limit, burst);
      units[i] = counter.admit(unitStores[i]!, key, entries[i], limit, capacity, cost, now);
    }
    return admitted(units);
  }

  /**
   * A rejection (which counted nothing) with the exhausted `unit` waiting `wait` ms (none: 0).
   * During an earlier block, `blockLeft` ms of it left: the block stays as it is, and the wait is
   * the longer of the two. Otherwise it starts the user's block when the rule has one.
   */
  private reject(
    query: ConsumeQuery,
    now: number,
    wait: number,
    unit: RateLimitUnitName | undefined,
    units: readonly UnitState[],
    blockLeft = 0,
  ): ConsumeResult {
    if (blockLeft > 0) {
      return {
        allowed: false,
        retryAfterMs: Math.max(wait, blockLeft),
        blocked: true,
        unit,
        units,
      };
    }
    let blocked = false;
    if (query.blockMs > 0) {
      this.startBlock(query.counter.user, now + query.blockMs, now);
      blocked = true;
      if (query.blockMs > wait) wait = query.blockMs;
    }
    return { allowed: false, retryAfterMs: wait, blocked, unit, units };
  }

  /**
   * Every unit of the query's counter as it stands, and the user's block, synchronously: each
   * unit exactly as a rejected {@link consume} at this instant reports it. Counts nothing, starts
   * no block, and creates no entry. See `RateLimitBackend.peek`.
   */
  override peek(query: ConsumeQuery): PeekResult {
    const now = this.now();
    const stores =
      query.algorithm === undefined ? this.defaultStores : this.storesOf(query.algorithm);
    const counter = stores.counter;
    const key = counterKey(query.counter);
    const units = query.limits.map((limit) =>
      counter.stateOf(
        stores.storeFor(limit).entries.get(key),
        limit,
        counter.capacity(limit.limit, query.burst),
        now,
      ),
    );
    return { blockedMs: this.blockedFor(query.counter.user), units };
  }

  /**
   * Gives back `query.cost` (default 1) in every unit of the query's counter, synchronously (so
   * atomically), never below zero. Per algorithm: a running fixed window's count goes down; a
   * sliding window's last counted window (the current or the previous one) goes down; a log
   * loses its newest entries that still count; a bucket's theoretical arrival time moves back by
   * the cost's refill time, never before now. A unit whose window ended (an expired entry) gives
   * back nothing. See `RateLimitBackend.release` for what no algorithm's state can tell.
   */
  override release(query: ConsumeQuery): void {
    const now = this.now();
    const stores =
      query.algorithm === undefined ? this.defaultStores : this.storesOf(query.algorithm);
    const counter = stores.counter;
    const key = counterKey(query.counter);
    const cost = query.cost ?? 1;
    for (const limit of query.limits) {
      // A limit of 0 admitted nothing under this query; another rule's count is not its to give.
      if (limit.limit === 0) continue;
      const entry = stores.storeFor(limit).entries.get(key);
      if (entry !== undefined) counter.release(entry, limit, cost, now);
    }
  }

  /**
   * Blocks the user on every counter for `ms` from now, replacing any block (a longer one too):
   * exactly the block a rule's `blockTime` starts. Like that one, it takes an entry toward
   * `maxKeys` and is evicted last.
   * @param ms a whole number of milliseconds, at least 1
   * @throws RangeError when `ms` is not one
   */
  override block(user: string, ms: number): void {
    checkBlockLength('MemoryBackend', ms);
    const now = this.now();
    if (this.timer === undefined && this.sweepIntervalMs > 0) this.startTimer();
    this.startBlock(user, now + ms, now);
  }

  /**
   * How long the user stays blocked.
   * @returns the milliseconds of block left, 0 when the user is not blocked
   */
  override blockedFor(user: string): number {
    const until = this.blocks.get(user);
    return until === undefined ? 0 : Math.max(0, until - this.now());
  }

  /**
   * Lifts the user's block.
   * @returns whether a block was still active
   */
  override unblock(user: string): boolean {
    const until = this.blocks.get(user);
    if (until === undefined) return false;
    this.blocks.delete(user);
    return this.now() < until;
  }

  /**
   * Forgets every unit of one counter, with every algorithm and window length it was counted
   * with, as if the user had never called it. The user's block, if any, stays (see
   * {@link unblock}).
   * @returns whether a live entry existed in any unit (an expired one counts as none, as in Redis)
   */
  override reset(counter: RateLimitCounter): boolean {
    const key = counterKey(counter);
    const now = this.now();
    let existed = false;
    for (const store of this.storeList) {
      const entry = store.entries.get(key);
      if (entry === undefined) continue;
      store.entries.delete(key);
      if (!store.expired(entry, now)) existed = true;
    }
    return existed;
  }

  /**
   * How long the user stays blocked: {@link blockedFor}, under the name it had before every
   * backend could tell.
   * @returns the milliseconds of block left, 0 when the user is not blocked
   */
  isBlocked(user: string): number {
    return this.blockedFor(user);
  }

  /**
   * Entries held right now: one per (counter, unit, algorithm) plus one per blocked user,
   * including expired ones not reclaimed yet. Never more than `maxKeys`.
   */
  get size(): number {
    let size = this.blocks.size;
    for (const store of this.storeList) size += store.entries.size;
    return size;
  }

  /**
   * Drops expired entries now: every expired entry at the front of its store (see
   * {@link MemoryBackend} for how soon each algorithm's entries get there), and up to 10,000
   * blocks, resuming where the previous sweep stopped. The periodic timer calls it; call it
   * yourself with `sweepIntervalMs: 0`. Live entries are never touched.
   */
  sweep(): void {
    const now = this.now();
    this.reclaimExpired(now);
    this.sweepBlocks(now);
    for (const store of this.storeList) store.swept();
    this.blockEvictor.swept();
  }

  /** Stops the periodic sweep. The backend stays usable; the next request starts the timer again. */
  /** The clock this backend decides by. */
  override localClock(): () => number {
    return this.clock;
  }

  override close(): void {
    if (this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private now(): number {
    return Math.floor(this.clock());
  }

  /** The stores of one algorithm; a query naming another one is a caller's bug. */
  private storesOf(algorithm: RateLimitAlgorithm): AlgorithmStores {
    switch (algorithm) {
      case 'fixed-window':
        return this.fixedWindows;
      case 'token-bucket':
        return this.tokenBuckets;
      case 'sliding-window':
        return this.slidingWindows;
      case 'sliding-log':
        return this.slidingLogs;
      default:
        throw new TypeError(
          `MemoryBackend: unknown algorithm ${describeValue(algorithm)} in a query; ` +
            `expected one of ${ALL_ALGORITHMS.join(', ')}.`,
        );
    }
  }

  private startBlock(user: string, until: number, now: number): void {
    if (!this.blocks.delete(user) && this.size >= this.maxKeys) this.makeRoom(now);
    this.blocks.set(user, until);
    this.blockEvictor.inserted();
  }

  /** Frees one entry at least: expired entries, else the one placed earliest, else the oldest block. */
  private makeRoom(now: number): void {
    this.reclaimExpired(now);
    while (this.size >= this.maxKeys) {
      if (!this.evictEarliestPlaced()) this.evictOldestBlock();
    }
  }

  /** Amortised O(1) per entry reclaimed, plus O(1) per store: each stops at its first live entry. */
  private reclaimExpired(now: number): void {
    for (const store of this.storeList) store.reclaimExpired(now);
  }

  /** Evicts the entry placed earliest across every store; false when no entry is left. */
  private evictEarliestPlaced(): boolean {
    let earliest: EntryStore<unknown> | undefined;
    let earliestPlaced = Infinity;
    for (const store of this.storeList) {
      // The front of a store is its earliest placed; the earliest overall is one of the fronts.
      if (store.front() === undefined) continue;
      const placed = store.frontPlacedAt();
      if (placed < earliestPlaced) {
        earliest = store;
        earliestPlaced = placed;
      }
    }
    if (earliest === undefined) return false;
    earliest.deleteFront();
    return true;
  }

  private evictOldestBlock(): void {
    const oldest = this.blockEvictor.next();
    if (oldest !== undefined) this.blocks.delete(oldest[0]);
  }

  /** Walks at most {@link BLOCK_SWEEP_BUDGET} blocks, resuming the previous walk. */
  private sweepBlocks(now: number): void {
    if (this.blocks.size === 0) {
      this.blockCursor = undefined;
      return;
    }
    // A Map iterator stays valid while entries are added and deleted, so it can span sweeps.
    const cursor = this.blockCursor ?? this.blocks.entries();
    for (let budget = BLOCK_SWEEP_BUDGET; budget > 0; budget--) {
      const step = cursor.next();
      if (step.done === true) {
        this.blockCursor = undefined;
        return;
      }
      const [user, until] = step.value;
      if (until <= now) this.blocks.delete(user);
    }
    this.blockCursor = cursor;
  }

  private startTimer(): void {
    // The timer holds the backend weakly, so a backend dropped without close() is still collected
    // (and its timer stops) instead of being kept alive by its own sweep.
    const backend = new WeakRef<MemoryBackend>(this);
    const timer = setInterval(() => {
      const target = backend.deref();
      if (target === undefined) clearInterval(timer);
      else target.sweep();
    }, this.sweepIntervalMs);
    timer.unref();
    this.timer = timer;
  }
}

function admitted(units: readonly UnitState[]): ConsumeResult {
  return { allowed: true, retryAfterMs: 0, blocked: false, unit: undefined, units };
}
