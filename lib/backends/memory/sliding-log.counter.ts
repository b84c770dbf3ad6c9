import type { UnitLimit } from '../../rules/rule-units.js';
import type { UnitState } from '../rate-limit.backend.js';
import type { EntryStore } from './entry-store.js';
import { unitState, type UnitCounter } from './unit-counter.js';

/** Runs the log may have dropped at its head before it compacts them away. */
const COMPACT_AFTER_RUNS = 16;

/**
 * One counter's log in one unit: the times of its admitted requests' entries, oldest first, as
 * runs `[time, entries, time, entries, …]` so that a request of cost 10, or many requests in one
 * millisecond, take one run rather than one slot per entry. The runs before `head` have stopped
 * counting; they are dropped in bulk (amortised O(1) per run) rather than shifted one by one.
 */
class SlidingLog {
  runs: number[];
  /** Index of the first run that may still count (even). */
  head: number;
  /** Entries in the runs from `head` on. */
  total: number;
  /** When the log was last set at the back of its store (see {@link SLIDING_LOG_COUNTER}). */
  placed: number;

  constructor(now: number, cost: number) {
    this.runs = [now, cost];
    this.head = 0;
    this.total = cost;
    this.placed = now;
  }

  /** Drops the runs that stopped counting at `now` (an entry of time `t` counts while `now < t + W`). */
  trim(now: number, windowMs: number): void {
    const runs = this.runs;
    let head = this.head;
    while (head < runs.length && runs[head]! + windowMs <= now) {
      this.total -= runs[head + 1]!;
      head += 2;
    }
    if (head === runs.length) {
      runs.length = 0;
      head = 0;
    } else if (head >= 2 * COMPACT_AFTER_RUNS && 2 * head >= runs.length) {
      runs.splice(0, head);
      head = 0;
    }
    this.head = head;
  }

  /** The time of the `k`-th oldest entry that counts (1-based, `1 ≤ k ≤ total`). */
  timeOf(k: number): number {
    const runs = this.runs;
    let i = this.head;
    for (let seen = runs[i + 1]!; seen < k; seen += runs[i + 1]!) i += 2;
    return runs[i]!;
  }

  /**
   * Drops the `count` newest entries (all of them when there are fewer): the log's back. Call
   * right after {@link trim}, so every entry dropped still counted.
   */
  dropNewest(count: number): void {
    const runs = this.runs;
    let left = Math.min(count, this.total);
    this.total -= left;
    while (left > 0) {
      const entries = runs[runs.length - 1]!;
      if (entries > left) {
        runs[runs.length - 1] = entries - left;
        left = 0;
      } else {
        runs.length -= 2;
        left -= entries;
      }
    }
    if (runs.length === this.head) {
      runs.length = 0;
      this.head = 0;
    }
  }

  /** Adds `cost` entries of time `now`, the newest. */
  append(now: number, cost: number): void {
    const runs = this.runs;
    const last = runs.length - 2;
    if (last >= this.head && runs[last] === now) runs[last + 1]! += cost;
    else runs.push(now, cost);
    this.total += cost;
  }
}

/**
 * `'sliding-log'`: exact, as `SlidingRedisBackend` decides. Each admitted request leaves `cost`
 * entries stamped with its time; admitted when the entries that count, plus its cost, are at most
 * the limit; the wait is until the `(n + cost − L)`-th oldest entry stops counting. Memory grows
 * with the limit (one run per distinct millisecond in the window).
 *
 * Placement: as for the token bucket, a log is set at the back of its store only when new or when
 * its placement is at least a window old, not on every admitted request. Its newest entry is then
 * less than `W` after its placement, so it expires less than `2W` after it, and the sweep reclaims
 * an expired log at most `W` after it expired. A release that drops the newest entries leaves
 * entries that still counted at the placement, so the log expires after its placement still, and
 * the sweep reclaims it at most `2W` after it expired.
 */
export const SLIDING_LOG_COUNTER: UnitCounter<SlidingLog> = {
  algorithm: 'sliding-log',

  capacity(limit: number): number {
    return limit;
  },

  wait(
    log: SlidingLog | undefined,
    limit: UnitLimit,
    _capacity: number,
    cost: number,
    now: number,
  ): number {
    if (log === undefined) return 0;
    log.trim(now, limit.windowMs);
    const over = log.total + cost - limit.limit;
    return over <= 0 ? 0 : log.timeOf(over) + limit.windowMs - now;
  },

  stateOf(
    log: SlidingLog | undefined,
    limit: UnitLimit,
    _capacity: number,
    now: number,
  ): UnitState {
    const windowMs = limit.windowMs;
    // A limit of 0 never reads its log (as SlidingRedisBackend): nothing is ever admitted.
    if (log === undefined || limit.limit === 0) return unitState(limit, limit.limit, windowMs);
    log.trim(now, windowMs);
    const n = log.total;
    if (n === 0) return unitState(limit, limit.limit, windowMs);
    // When full, the time until one more entry fits; else until the oldest entry stops counting.
    const next = n < limit.limit ? log.timeOf(1) : log.timeOf(n + 1 - limit.limit);
    return unitState(limit, Math.max(0, limit.limit - n), next + windowMs - now);
  },

  admit(
    store: EntryStore<SlidingLog>,
    key: string,
    log: SlidingLog | undefined,
    limit: UnitLimit,
    capacity: number,
    cost: number,
    now: number,
  ): UnitState {
    if (log === undefined) {
      log = new SlidingLog(now, cost);
      store.place(key, log, now);
    } else {
      log.trim(now, limit.windowMs); // wait() trimmed already; cheap when nothing stopped counting
      log.append(now, cost);
      if (now - log.placed >= limit.windowMs) {
        log.placed = now;
        store.place(key, log, now);
      }
    }
    return this.stateOf(log, limit, capacity, now);
  },

  release(log: SlidingLog, limit: UnitLimit, cost: number, now: number): void {
    // The newest entries that still count: the request's own when nothing was admitted after it
    // (see RateLimitBackend.release for when that cannot be told). Entries that left the window
    // have nothing left to give.
    log.trim(now, limit.windowMs);
    log.dropNewest(cost);
  },

  expiresAt(log: SlidingLog, windowMs: number): number {
    const runs = log.runs;
    return runs.length > log.head ? runs[runs.length - 2]! + windowMs : -Infinity;
  },

  placedAt(log: SlidingLog): number {
    return log.placed;
  },
};
