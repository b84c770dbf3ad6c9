import type { UnitLimit } from '../../rules/rule-units.js';
import type { UnitState } from '../rate-limit.backend.js';
import type { EntryStore } from './entry-store.js';
import { unitState, type UnitCounter } from './unit-counter.js';

/**
 * One counter's current window in one unit. A class with both fields set in the constructor, so
 * every window shares one hidden class and costs two in-object fields. Whole milliseconds keep
 * `end` a small integer (stored inline) until the clock passes 2^31 ms, about 24 days of process
 * uptime with the default clock; past that V8 boxes it, some 16 bytes more per window.
 */
class FixedWindow {
  /** Cost admitted in this window. */
  count: number;
  /** When the window is over (exclusive), on the backend's clock. */
  end: number;

  constructor(count: number, end: number) {
    this.count = count;
    this.end = end;
  }
}

/**
 * `'fixed-window'`: a window starts with the first admitted request after the previous one ended
 * and covers `[start, start + W)`; admitted when `count + cost ≤ limit`. The entry is set at the
 * back when its window starts (an expired entry is reused), so a store is ordered by window end.
 */
export const FIXED_WINDOW_COUNTER: UnitCounter<FixedWindow> = {
  algorithm: 'fixed-window',

  capacity(limit: number): number {
    return limit;
  },

  wait(
    window: FixedWindow | undefined,
    limit: UnitLimit,
    _capacity: number,
    cost: number,
    now: number,
  ): number {
    if (window === undefined || now >= window.end || window.count + cost <= limit.limit) return 0;
    return window.end - now;
  },

  stateOf(
    window: FixedWindow | undefined,
    limit: UnitLimit,
    _capacity: number,
    now: number,
  ): UnitState {
    return window !== undefined && now < window.end
      ? unitState(limit, Math.max(0, limit.limit - window.count), window.end - now)
      : unitState(limit, limit.limit, limit.windowMs);
  },

  admit(
    store: EntryStore<FixedWindow>,
    key: string,
    window: FixedWindow | undefined,
    limit: UnitLimit,
    _capacity: number,
    cost: number,
    now: number,
  ): UnitState {
    if (window !== undefined && now < window.end) {
      window.count += cost;
    } else {
      // A new window: the expired entry, if any, is reused and set at the back.
      const end = now + limit.windowMs;
      if (window === undefined) window = new FixedWindow(cost, end);
      else {
        window.count = cost;
        window.end = end;
      }
      store.place(key, window, now);
    }
    return unitState(limit, limit.limit - window.count, window.end - now);
  },

  release(window: FixedWindow, _limit: UnitLimit, cost: number, now: number): void {
    // A window that ended gave its capacity back when it ended. (A running window may be a later
    // one than the request's: the state cannot tell, see RateLimitBackend.release.)
    if (now < window.end) window.count = Math.max(0, window.count - cost);
  },

  expiresAt(window: FixedWindow): number {
    return window.end;
  },

  placedAt(window: FixedWindow, windowMs: number): number {
    return window.end - windowMs;
  },
};
