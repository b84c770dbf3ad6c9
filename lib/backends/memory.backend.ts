import {
  describeValue,
  optionFailure,
  rejectUnknownKeys,
  type FailOption,
} from '../config-validation.js';
import { standardWindowMs, type RateLimitUnitName, type UnitLimit } from '../rules/rule-units.js';
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
 * Added to the insertions (an eighth of the map) that a {@link FrontCursor} lets pass without
 * moving before it drops its iterator, so that a small map does not reopen it all the time.
 */
const CURSOR_IDLE_FLOOR = 64;

/**
 * Reads one Map from its front, one entry per {@link next} call, across calls: how eviction and
 * reclamation find the oldest entry in amortised O(1).
 *
 * Why not a new iterator each time: V8 leaves a hole where an entry was deleted until it rebuilds
 * the table, and an iterator started at the front walks every hole before the first entry. At
 * `maxKeys`, each new key deletes one entry at the front, so an iterator per eviction walked up
 * to a table's worth of holes per request: a flood of new identities cut a backend of 100,000
 * keys from some 700,000 decisions/s to about 10,000. A Map iterator stays valid while entries are
 * added and deleted, and visits an entry deleted and set again at its new place at the back;
 * kept from one call to the next, it passes each slot of the table once, and each slot was made
 * by one insertion.
 *
 * What makes the next entry the front: every entry the cursor has passed, but the last one it
 * returned, is deleted or was set again (at the back, ahead of the cursor). So callers ask for
 * the next entry only once the last one is no longer in place, and the backend never sets an
 * existing key in place (it deletes first), which would leave a live entry behind the cursor.
 *
 * An iterator also keeps alive the table it points into and every table V8 built after it, with
 * all the entries they held, until it moves again: a cursor that stood still while its map
 * churned kept every deleted key in memory (387 MB after 2 million insertions into a map of
 * 200,000). So it drops its iterator (the next call opens a new one at the front, walking the
 * holes once more) when the map took more than an eighth of its size plus
 * {@link CURSOR_IDLE_FLOOR} insertions, or a whole sweep interval passed, without it moving. V8
 * grows or compacts a table only once it is full and leaves it at most half full, so at most one
 * such table is held that way, and the walk is paid at most once per that many insertions or
 * per sweep.
 */
class FrontCursor<K, V> {
  private iterator: Iterator<[K, V]> | undefined;
  /** Insertions into the map since the iterator last moved. */
  private idleInserts = 0;
  /** Whether the iterator moved since the last {@link swept}. */
  private movedSinceSweep = false;

  constructor(private readonly map: Map<K, V>) {}

  /** The entry after the last one returned: the front (see above); undefined for an empty map. */
  next(): [K, V] | undefined {
    if (this.map.size === 0) return undefined;
    this.idleInserts = 0;
    this.movedSinceSweep = true;
    this.iterator ??= this.map.entries();
    let step = this.iterator.next();
    if (step.done === true) {
      // Only possible if an entry was set in place behind the cursor: start over rather than
      // report an empty map (makeRoom would then never free anything).
      this.iterator = this.map.entries();
      step = this.iterator.next();
      if (step.done === true) return undefined;
    }
    return step.value;
  }

  /** To be called after each insertion into the map. */
  inserted(): void {
    if (
      this.iterator !== undefined &&
      ++this.idleInserts > (this.map.size >>> 3) + CURSOR_IDLE_FLOOR
    ) {
      this.iterator = undefined;
    }
  }

  /** To be called by each sweep: lets go of an iterator that did not move since the last one. */
  swept(): void {
    if (!this.movedSinceSweep) this.iterator = undefined;
    this.movedSinceSweep = false;
  }
}

/**
 * The windows of one unit (one window length), keyed by {@link counterKey}. Every new window is
 * (re)inserted at the back, and all windows here have the same length, so the map is ordered by
 * window start and therefore by window end: the expired ones are always at the front.
 */
class WindowStore {
  readonly windows = new Map<string, Window>();
  private readonly cursor = new FrontCursor(this.windows);
  /**
   * The front window as the cursor returned it, kept because finding out whether it has expired
   * must not take it off the cursor. Checked on each use: deleted since (reclaimed, evicted,
   * reset), or restarted, which reuses the Window but sets it again at the back with a later end.
   */
  private frontKey = '';
  private frontWindow: Window | undefined = undefined;
  private frontEnd = 0;

  constructor(readonly windowMs: number) {}

  /** The window that started earliest, or undefined when there is none. Amortised O(1). */
  front(): Window | undefined {
    const cached = this.frontWindow;
    if (
      cached !== undefined &&
      cached.end === this.frontEnd &&
      this.windows.get(this.frontKey) === cached
    ) {
      return cached;
    }
    const entry = this.cursor.next();
    if (entry === undefined) {
      this.frontWindow = undefined;
      return undefined;
    }
    const [key, window] = entry;
    this.frontKey = key;
    this.frontWindow = window;
    this.frontEnd = window.end;
    return window;
  }

  /** Deletes the window {@link front} returned last. */
  deleteFront(): void {
    this.windows.delete(this.frontKey);
    this.frontKey = '';
    this.frontWindow = undefined;
  }

  /** Sets a window at the back; `key` must not be in the store (delete it first). */
  append(key: string, window: Window): void {
    this.windows.set(key, window);
    this.cursor.inserted();
  }

  /** See {@link FrontCursor.swept}. */
  swept(): void {
    this.cursor.swept();
  }
}

/**
 * Counters in this process's memory: fast and atomic (every call is synchronous), but not shared
 * between processes or hosts; use `RedisBackend` for that.
 *
 * Algorithm: a fixed window per (counter, unit) that starts with the first request after the
 * previous window ended; it covers `[start, start + windowMs)` in milliseconds, so an exhausted
 * unit rejects until the very end of its window. A rejected request counts in no unit. A block
 * belongs to the user, across every counter, and is not extended by requests made while blocked;
 * their wait is the longer of the block's remainder and their own rule's exhausted units.
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
 * window is left, because releasing a blocked user early is worse than resetting a window. Each
 * unit and the blocks are read from the front by a cursor kept between calls, so finding what to
 * drop costs amortised O(1) however many entries are held: a flood of new identities at
 * `maxKeys` costs each request a constant, not a scan. Size `maxKeys` well above (active counters
 * x units) so eviction stays exceptional.
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
  /** Reads {@link blocks} from the front for eviction; every block it returns is deleted at once. */
  private readonly blockEvictor = new FrontCursor(this.blocks);
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

    // 1. The user's block, from this or any other counter. Rejected, but the rule's units are
    // read (never counted): the wait must cover them too, or a client that obeys it comes back
    // to an exhausted unit that blocks it again.
    if (this.blocks.size !== 0) {
      const until = this.blocks.get(user);
      if (until !== undefined) {
        if (now < until) {
          return this.consumeMany(query, counterKey(query.counter), now, until - now);
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

  /**
   * {@link consume} for a rule of several units, and for any rule while the user is blocked
   * (`blockLeft` ms of the block left; 0 when not blocked), which rejects whatever the units say.
   */
  private consumeMany(query: ConsumeQuery, key: string, now: number, blockLeft = 0): ConsumeResult {
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
    if (exhausted !== undefined || blockLeft > 0) {
      for (let i = 0; i < n; i++) {
        const limit = limits[i];
        const window = windows[i];
        units[i] =
          window !== undefined && now < window.end
            ? unitState(limit, Math.max(0, limit.limit - window.count), window.end - now)
            : unitState(limit, limit.limit, limit.windowMs);
      }
      return this.reject(query, now, wait, exhausted?.unit, units, blockLeft);
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
    for (const store of this.storeList) store.swept();
    this.blockEvictor.swept();
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

  /**
   * Puts `window` at the back of its store, making room first when it is a new entry. Deleting
   * first is what moves an existing entry to the back (a Map keeps a key's place on set), and the
   * stores' front cursors rely on it.
   */
  private insert(store: WindowStore, key: string, window: Window, now: number): void {
    if (!store.windows.delete(key) && this.size >= this.maxKeys) this.makeRoom(now);
    store.append(key, window);
  }

  private startBlock(user: string, until: number, now: number): void {
    if (!this.blocks.delete(user) && this.size >= this.maxKeys) this.makeRoom(now);
    this.blocks.set(user, until);
    this.blockEvictor.inserted();
  }

  /** Frees one entry at least: expired windows, else the oldest window, else the oldest block. */
  private makeRoom(now: number): void {
    this.reclaimExpiredWindows(now);
    while (this.size >= this.maxKeys) {
      if (!this.evictOldestWindow()) this.evictOldestBlock();
    }
  }

  /**
   * Amortised O(1) per window reclaimed, plus O(1) per store: each store is ordered by window
   * end, so stop at its first live window.
   */
  private reclaimExpiredWindows(now: number): void {
    for (const store of this.storeList) {
      let front = store.front();
      while (front !== undefined && front.end <= now) {
        store.deleteFront();
        front = store.front();
      }
    }
  }

  /** Evicts the live window that started earliest; false when no window is left. */
  private evictOldestWindow(): boolean {
    let oldest: WindowStore | undefined;
    let oldestStart = Infinity;
    for (const store of this.storeList) {
      // The front of a store is its earliest window; the earliest overall is one of the fronts.
      const front = store.front();
      if (front === undefined) continue;
      const start = front.end - store.windowMs;
      if (start < oldestStart) {
        oldest = store;
        oldestStart = start;
      }
    }
    if (oldest === undefined) return false;
    oldest.deleteFront();
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

function storeName(unit: RateLimitUnitName, windowMs: number): string {
  return windowMs === standardWindowMs(unit) ? unit : `${unit}/${windowMs}`;
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
