import {
  describeValue,
  optionFailure,
  rejectUnknownKeys,
  type FailOption,
} from '../config-validation.js';
import { UNIT_WINDOW_SECONDS, type RateLimitUnit, type UnitLimit } from '../rules/rule-units.js';
import { counterKey } from './counter-key.js';
import {
  RateLimitBackend,
  type ConsumeQuery,
  type ConsumeResult,
  type RateLimitCounter,
  type UnitState,
} from './rate-limit.backend.js';

/** Options of {@link MemoryBackend}. Every option is optional. */
export interface MemoryBackendOptions {
  /**
   * Most entries kept at once: one entry per (counter, unit) window plus one per blocked user.
   * It bounds memory whatever the traffic (many distinct users, paths or IPv6 addresses). When a
   * new entry would pass it, expired entries are dropped first, then the window that started
   * earliest is evicted (see {@link MemoryBackend} for what that means for its user). At most
   * 16,777,216, the most entries a JavaScript `Map` can hold.
   * @default 1_000_000
   */
  readonly maxKeys?: number;
  /**
   * How often, in milliseconds, one background sweep drops expired windows and blocks, so memory
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

const KNOWN_OPTIONS: ReadonlySet<string> = new Set(['maxKeys', 'sweepIntervalMs', 'clock']);
/** Names other stores use for the same options, with the option meant. */
const OPTION_HINTS: Readonly<Record<string, string>> = {
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

/** Shared by every result decided by an earlier block, which lists no unit. */
const NO_UNITS: readonly UnitState[] = Object.freeze([]);

const defaultClock = (): number => performance.now();

/**
 * One counter's current window in one unit. A class with both fields set in the constructor, so
 * every window shares one hidden class and costs two in-object fields. Whole milliseconds keep
 * `end` a small integer (stored inline) until the clock passes 2^31 ms, about 24 days of process
 * uptime with the default clock; past that V8 boxes it, some 16 bytes more per window.
 */
class Window {
  /** Requests counted in this window. */
  count: number;
  /** When the window is over (exclusive), on the backend's clock. */
  end: number;

  constructor(count: number, end: number) {
    this.count = count;
    this.end = end;
  }
}

/**
 * The windows of one unit (one window length), keyed by {@link counterKey}. Every new window is
 * (re)inserted at the back, and all windows here have the same length, so the map is ordered by
 * window start and therefore by window end: the expired ones are always at the front.
 */
class WindowStore {
  readonly windows = new Map<string, Window>();

  constructor(readonly windowMs: number) {}
}

/**
 * Counters in this process's memory: fast and atomic (every call is synchronous), but not shared
 * between processes or hosts; use `RedisBackend` for that.
 *
 * Algorithm: a fixed window per (counter, unit) that starts with the first request after the
 * previous window ended; it covers `[start, start + windowMs)` in milliseconds, so an exhausted
 * unit rejects until the very end of its window. A rejected request counts in no unit. A block
 * belongs to the user, across every counter, and is not extended by requests made while blocked.
 *
 * Memory: one small entry per (counter, unit) window and one per blocked user. There is no timer
 * per entry: one unref'd interval per backend ({@link MemoryBackendOptions.sweepIntervalMs})
 * drops expired entries without waiting for traffic. Each unit keeps its windows in start order,
 * so a sweep only touches the expired entries at the front; blocks are walked with a resumable
 * cursor, a bounded number per sweep.
 *
 * Eviction when {@link MemoryBackendOptions.maxKeys} is reached: expired entries are dropped
 * first. If every entry is live, the window that started earliest (across all units) is evicted:
 * that user's next request on that counter and unit starts a fresh window early, so it may get up
 * to one extra window's worth of requests. Blocks are evicted last, oldest first and only when no
 * window is left, because releasing a blocked user early is worse than resetting a window. Size
 * `maxKeys` well above (active counters x units) so eviction stays exceptional.
 */
export class MemoryBackend extends RateLimitBackend {
  private readonly clock: () => number;
  private readonly maxKeys: number;
  private readonly sweepIntervalMs: number;

  /**
   * Windows by store name: the unit name for its standard length (the only case for rules), else
   * `unit/windowMs`, so one store never mixes window lengths and stays ordered by window end.
   */
  private readonly stores = new Map<string, WindowStore>();
  /** The same stores, for loops that run often (sweep, size). */
  private readonly storeList: WindowStore[] = [];
  /** Blocked users and when their block ends. Re-inserted on every new block: ordered by start. */
  private readonly blocks = new Map<string, number>();
  /** Where the last sweep stopped in {@link blocks}; undefined to start a new pass. */
  private blockCursor: Iterator<[string, number]> | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;

  /**
   * @param options limits on memory, the sweep interval and the clock
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
    const { maxKeys = 1_000_000, sweepIntervalMs = 10_000, clock = defaultClock } = options ?? {};
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
    this.maxKeys = maxKeys;
    this.sweepIntervalMs = sweepIntervalMs;
    this.clock = clock;
  }

  /**
   * Decides one request, synchronously (no Promise, so the hot path allocates none). See
   * {@link RateLimitBackend} for the contract.
   */
  override consume(query: ConsumeQuery): ConsumeResult {
    const now = this.now();
    const user = query.counter.user;

    // 1. The user's block, from this or any other counter.
    if (this.blocks.size !== 0) {
      const until = this.blocks.get(user);
      if (until !== undefined) {
        if (now < until) {
          return {
            allowed: false,
            retryAfterMs: until - now,
            blocked: true,
            unit: undefined,
            units: NO_UNITS,
          };
        }
        this.blocks.delete(user); // expired: reclaim it now rather than at the next sweep
      }
    }
    if (this.timer === undefined && this.sweepIntervalMs > 0) this.startTimer();

    const key = counterKey(query.counter);
    return query.limits.length === 1
      ? this.consumeOne(query, key, now)
      : this.consumeMany(query, key, now);
  }

  /**
   * {@link consume} for a rule of one unit, by far the most common: the same decision as
   * {@link consumeMany}, without its per-call arrays.
   */
  private consumeOne(query: ConsumeQuery, key: string, now: number): ConsumeResult {
    const limit = query.limits[0]!;
    const store = this.storeFor(limit);
    let window = store.windows.get(key);
    const live = window !== undefined && now < window.end;
    if (limit.limit === 0 || (live && window!.count >= limit.limit)) {
      const state = live
        ? unitState(limit, Math.max(0, limit.limit - window!.count), window!.end - now)
        : unitState(limit, limit.limit, limit.windowMs);
      const wait = limit.limit === 0 ? limit.windowMs : window!.end - now;
      return this.reject(query, now, wait, limit.unit, [state]);
    }
    if (live) {
      window!.count++;
    } else {
      window = this.startWindow(store, key, window, now);
    }
    return admitted([unitState(limit, limit.limit - window!.count, window!.end - now)]);
  }

  /** {@link consume} for a rule of several units. */
  private consumeMany(query: ConsumeQuery, key: string, now: number): ConsumeResult {
    // Look at every unit before touching any, so a rejection counts nothing.
    const limits = query.limits;
    const n = limits.length;
    const stores = new Array<WindowStore>(n);
    const windows = new Array<Window | undefined>(n);
    let exhausted: UnitLimit | undefined;
    let wait = 0;
    for (let i = 0; i < n; i++) {
      const limit = limits[i];
      const store = this.storeFor(limit);
      const window = store.windows.get(key);
      stores[i] = store;
      windows[i] = window;
      let unitWait: number;
      if (limit.limit === 0) unitWait = limit.windowMs;
      else if (window !== undefined && now < window.end && window.count >= limit.limit) {
        unitWait = window.end - now;
      } else continue;
      if (exhausted === undefined || unitWait > wait) {
        exhausted = limit;
        wait = unitWait;
      }
    }

    const units = new Array<UnitState>(n);
    if (exhausted !== undefined) {
      for (let i = 0; i < n; i++) {
        const limit = limits[i];
        const window = windows[i];
        units[i] =
          window !== undefined && now < window.end
            ? unitState(limit, Math.max(0, limit.limit - window.count), window.end - now)
            : unitState(limit, limit.limit, limit.windowMs);
      }
      return this.reject(query, now, wait, exhausted.unit, units);
    }

    // Admitted: count it in every unit.
    for (let i = 0; i < n; i++) {
      const limit = limits[i];
      let window = windows[i];
      if (window !== undefined && now < window.end) {
        window.count++;
      } else {
        window = this.startWindow(stores[i], key, window, now);
      }
      units[i] = unitState(limit, limit.limit - window.count, window.end - now);
    }
    return admitted(units);
  }

  /** A rejection (which counted nothing): starts the user's block when the rule has one. */
  private reject(
    query: ConsumeQuery,
    now: number,
    wait: number,
    unit: RateLimitUnit,
    units: readonly UnitState[],
  ): ConsumeResult {
    let blocked = false;
    if (query.blockMs > 0) {
      this.startBlock(query.counter.user, now + query.blockMs, now);
      blocked = true;
      if (query.blockMs > wait) wait = query.blockMs;
    }
    return { allowed: false, retryAfterMs: wait, blocked, unit, units };
  }

  /**
   * Starts a counter's window in one unit with this request in it, reusing its expired entry if
   * it has one; insert() moves the entry to the back, keeping the store ordered.
   */
  private startWindow(
    store: WindowStore,
    key: string,
    expired: Window | undefined,
    now: number,
  ): Window {
    const end = now + store.windowMs;
    let window = expired;
    if (window === undefined) window = new Window(1, end);
    else {
      window.count = 1;
      window.end = end;
    }
    this.insert(store, key, window, now);
    return window;
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
   * Forgets every unit of one counter, as if the user had never called it. The user's block, if
   * any, stays (see {@link unblock}).
   * @returns whether a live window existed in any unit (an expired one counts as none, as in Redis)
   */
  override reset(counter: RateLimitCounter): boolean {
    const key = counterKey(counter);
    const now = this.now();
    let existed = false;
    for (const store of this.storeList) {
      const window = store.windows.get(key);
      if (window === undefined) continue;
      store.windows.delete(key);
      if (now < window.end) existed = true;
    }
    return existed;
  }

  /**
   * How long the user stays blocked.
   * @returns the milliseconds of block left, 0 when the user is not blocked
   */
  isBlocked(user: string): number {
    const until = this.blocks.get(user);
    return until === undefined ? 0 : Math.max(0, until - this.now());
  }

  /**
   * Entries held right now: one per (counter, unit) window plus one per blocked user, including
   * expired ones not reclaimed yet. Never more than `maxKeys`.
   */
  get size(): number {
    let size = this.blocks.size;
    for (const store of this.storeList) size += store.windows.size;
    return size;
  }

  /**
   * Drops expired entries now: every expired window, and up to 10,000 blocks, resuming where the
   * previous sweep stopped. The periodic timer calls it; call it yourself with
   * `sweepIntervalMs: 0`. Live entries are never touched.
   */
  sweep(): void {
    const now = this.now();
    this.reclaimExpiredWindows(now);
    this.sweepBlocks(now);
  }

  /** Stops the periodic sweep. The backend stays usable; the next request starts the timer again. */
  override close(): void {
    if (this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private now(): number {
    return Math.floor(this.clock());
  }

  /** The store for one unit; rules always hit the first lookup. */
  private storeFor(limit: UnitLimit): WindowStore {
    const standard = this.stores.get(limit.unit);
    if (standard !== undefined && standard.windowMs === limit.windowMs) return standard;
    const name = storeName(limit.unit, limit.windowMs);
    let store = this.stores.get(name);
    if (store === undefined) {
      store = new WindowStore(limit.windowMs);
      this.stores.set(name, store);
      this.storeList.push(store);
    }
    return store;
  }

  /** Puts `window` at the back of its store, making room first when it is a new entry. */
  private insert(store: WindowStore, key: string, window: Window, now: number): void {
    if (!store.windows.delete(key) && this.size >= this.maxKeys) this.makeRoom(now);
    store.windows.set(key, window);
  }

  private startBlock(user: string, until: number, now: number): void {
    if (!this.blocks.delete(user) && this.size >= this.maxKeys) this.makeRoom(now);
    this.blocks.set(user, until);
  }

  /** Frees one entry at least: expired windows, else the oldest window, else the oldest block. */
  private makeRoom(now: number): void {
    this.reclaimExpiredWindows(now);
    while (this.size >= this.maxKeys) {
      if (!this.evictOldestWindow()) this.evictOldestBlock();
    }
  }

  /** O(expired): each store is ordered by window end, so stop at its first live window. */
  private reclaimExpiredWindows(now: number): void {
    for (const store of this.storeList) {
      for (const [key, window] of store.windows) {
        if (now < window.end) break;
        store.windows.delete(key);
      }
    }
  }

  /** Evicts the live window that started earliest; false when no window is left. */
  private evictOldestWindow(): boolean {
    let oldest: WindowStore | undefined;
    let oldestKey = '';
    let oldestStart = Infinity;
    for (const store of this.storeList) {
      // The front of a store is its earliest window; the earliest overall is one of the fronts.
      for (const [key, window] of store.windows) {
        const start = window.end - store.windowMs;
        if (start < oldestStart) {
          oldest = store;
          oldestKey = key;
          oldestStart = start;
        }
        break;
      }
    }
    if (oldest === undefined) return false;
    oldest.windows.delete(oldestKey);
    return true;
  }

  private evictOldestBlock(): void {
    for (const user of this.blocks.keys()) {
      this.blocks.delete(user);
      return;
    }
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

function storeName(unit: RateLimitUnit, windowMs: number): string {
  return windowMs === UNIT_WINDOW_SECONDS[unit] * 1000 ? unit : `${unit}/${windowMs}`;
}

function admitted(units: readonly UnitState[]): ConsumeResult {
  return { allowed: true, retryAfterMs: 0, blocked: false, unit: undefined, units };
}

function unitState(limit: UnitLimit, remaining: number, resetMs: number): UnitState {
  return {
    unit: limit.unit,
    limit: limit.limit,
    windowMs: limit.windowMs,
    remaining,
    resetMs,
  };
}
