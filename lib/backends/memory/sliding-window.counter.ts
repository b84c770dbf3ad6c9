import type { UnitLimit } from '../../rules/rule-units.js';
import type { UnitState } from '../rate-limit.backend.js';
import type { EntryStore } from './entry-store.js';
import { unitState, type UnitCounter } from './unit-counter.js';

/**
 * One counter's weighted two-window counter in one unit: the cost admitted in the aligned window
 * that starts at `start` and in the one before it. Three in-object fields, set in the constructor
 * so every counter shares one hidden class.
 */
class SlidingWindow {
  /** Start of the last window a request was admitted in, a multiple of the window length. */
  start: number;
  /** Cost admitted in the window before `start`'s. */
  previous: number;
  /** Cost admitted in `start`'s window. */
  current: number;

  constructor(start: number, previous: number, current: number) {
    this.start = start;
    this.previous = previous;
    this.current = current;
  }
}

/** Start of the aligned window holding `now`: the multiple of `windowMs` at or before it. */
function windowStart(now: number, windowMs: number): number {
  const into = now % windowMs;
  return now - (into < 0 ? into + windowMs : into);
}

/** The previous window's cost `p` for a request in the window that starts at `start`. */
function previousCost(counter: SlidingWindow | undefined, start: number, windowMs: number): number {
  if (counter === undefined) return 0;
  if (counter.start === start) return counter.previous;
  return counter.start === start - windowMs ? counter.current : 0;
}

/** The current window's cost `q` for a request in the window that starts at `start`. */
function currentCost(counter: SlidingWindow | undefined, start: number): number {
  return counter !== undefined && counter.start === start ? counter.current : 0;
}

/**
 * `'sliding-window'`: windows aligned to multiples of `W` on the backend's clock; admitted when
 * `p × (W − e) + (q + cost) × W ≤ L × W`, with `e` the time into the current window. Only
 * admitted requests count. The entry is set at the back when a request is admitted in a later
 * window than its last, so a store is ordered by `start`, and an entry expires two windows after
 * it (`p` and `q` are both 0 then), in that order.
 */
export const SLIDING_WINDOW_COUNTER: UnitCounter<SlidingWindow> = {
  algorithm: 'sliding-window',

  capacity(limit: number): number {
    return limit;
  },

  wait(
    counter: SlidingWindow | undefined,
    limit: UnitLimit,
    _capacity: number,
    cost: number,
    now: number,
  ): number {
    const windowMs = limit.windowMs;
    const max = limit.limit;
    const start = windowStart(now, windowMs);
    const p = previousCost(counter, start, windowMs);
    const q = currentCost(counter, start);
    const e = now - start;
    if (p * (windowMs - e) + (q + cost) * windowMs <= max * windowMs) return 0;
    if (q + cost <= max) {
      // Later in this window, as the previous one weighs less (p > 0, or it would fit now).
      const fits = windowMs - Math.floor(((max - q - cost) * windowMs) / p);
      if (fits < windowMs) return fits - e;
    }
    // In the next window, where this window's q is the previous cost.
    const fitsNext =
      q === 0 ? 0 : Math.max(0, windowMs - Math.floor(((max - cost) * windowMs) / q));
    return windowMs - e + fitsNext;
  },

  stateOf(
    counter: SlidingWindow | undefined,
    limit: UnitLimit,
    _capacity: number,
    now: number,
  ): UnitState {
    const windowMs = limit.windowMs;
    const start = windowStart(now, windowMs);
    const e = now - start;
    const used =
      previousCost(counter, start, windowMs) * (windowMs - e) +
      currentCost(counter, start) * windowMs;
    return unitState(
      limit,
      Math.max(0, Math.floor((limit.limit * windowMs - used) / windowMs)),
      windowMs - e,
    );
  },

  admit(
    store: EntryStore<SlidingWindow>,
    key: string,
    counter: SlidingWindow | undefined,
    limit: UnitLimit,
    capacity: number,
    cost: number,
    now: number,
  ): UnitState {
    const windowMs = limit.windowMs;
    const start = windowStart(now, windowMs);
    if (counter === undefined) {
      counter = new SlidingWindow(start, 0, cost);
      store.place(key, counter, now);
    } else if (counter.start === start) {
      counter.current += cost;
    } else {
      counter.previous = counter.start === start - windowMs ? counter.current : 0;
      counter.current = cost;
      counter.start = start;
      store.place(key, counter, now);
    }
    return this.stateOf(counter, limit, capacity, now);
  },

  release(counter: SlidingWindow, limit: UnitLimit, cost: number, now: number): void {
    // The cost comes off the last window a request was counted in, while it still weighs: the
    // current window, or the previous one (then the cost weighs as `p`). Two windows on, nothing
    // of it counts any more.
    const windowMs = limit.windowMs;
    const start = windowStart(now, windowMs);
    if (counter.start === start || counter.start === start - windowMs) {
      counter.current = Math.max(0, counter.current - cost);
    }
  },

  expiresAt(counter: SlidingWindow, windowMs: number): number {
    return counter.start + 2 * windowMs;
  },

  placedAt(counter: SlidingWindow): number {
    return counter.start;
  },
};
