import type { RateLimitAlgorithm, UnitLimit } from '../../rules/rule-units.js';
import type { UnitState } from '../rate-limit.backend.js';
import type { EntryStore } from './entry-store.js';

/**
 * How `MemoryBackend` counts one unit with one algorithm: the decision on one stored entry (a
 * fixed window, a weighted two-window counter, a log, a bucket) and where that entry stands in
 * its store. The backend itself only handles what every algorithm shares: the block, the limit of
 * 0, a cost above what a unit holds, looking at every unit before counting in any, and the store.
 *
 * Each counter is a stateless singleton; every method is synchronous and allocates nothing but
 * a new entry (and the reported {@link UnitState}). Entries that have expired are treated as
 * absent by every method, so the store may reclaim them at any time after they expire. The exact
 * definition of every number is the `RateLimitAlgorithm` JSDoc (lib/rules/rule-units.ts).
 *
 * Method syntax (not function properties) on purpose: a store of one algorithm's entries is used
 * through `UnitCounter<unknown>` by the backend, which method parameters' bivariance allows.
 */
export interface UnitCounter<E> {
  /** The algorithm this counts. */
  readonly algorithm: RateLimitAlgorithm;

  /** The most one request may cost under this unit: its limit, or the bucket's `burst`. */
  capacity(limit: number, burst: number | undefined): number;

  /**
   * Milliseconds until a request of `cost` would be admitted if nothing else came (at least 1),
   * or 0 when it fits now. Only called with a limit above 0 and `cost ≤ capacity`.
   */
  wait(entry: E | undefined, limit: UnitLimit, capacity: number, cost: number, now: number): number;

  /** The unit as it stands, counting nothing. */
  stateOf(entry: E | undefined, limit: UnitLimit, capacity: number, now: number): UnitState;

  /**
   * Counts a request that {@link wait} admitted and reports the unit after it. A new entry, or
   * one whose {@link placedAt} moves on, is set at the back of `store` ({@link EntryStore.place});
   * any other is updated where it stands.
   */
  admit(
    store: EntryStore<E>,
    key: string,
    entry: E | undefined,
    limit: UnitLimit,
    capacity: number,
    cost: number,
    now: number,
  ): UnitState;

  /**
   * Gives back `cost` from a request that {@link admit} counted earlier
   * (`RateLimitBackend.release`), never below zero, and only while the state shows the window it
   * was counted in still weighs (an expired entry gives back nothing). Only called with a limit
   * above 0. Never moves the entry in its store: {@link placedAt} stays, and
   * {@link expiresAt} can only come earlier, which the store's order allows (an entry that
   * expires before the one in front of it waits for it, as after any admission of a log or a
   * bucket).
   */
  release(entry: E, limit: UnitLimit, cost: number, now: number): void;

  /**
   * From when on the entry counts as absent (exclusive end, backend clock). For a log or a bucket
   * it moves later while the entry stays in place, so an expired one can sit behind a live one
   * for a while; each of those counters says how long at most.
   */
  expiresAt(entry: E, windowMs: number): number;

  /**
   * When the entry was (re)set at the back of its store: never decreasing from the front of a
   * store to its back, and changed whenever {@link admit} places the entry again. Eviction takes
   * the entry placed earliest, and the store's front cache tells a re-placed entry by it.
   */
  placedAt(entry: E, windowMs: number): number;
}

/** A unit's reported state. */
export function unitState(limit: UnitLimit, remaining: number, resetMs: number): UnitState {
  return {
    unit: limit.unit,
    limit: limit.limit,
    windowMs: limit.windowMs,
    remaining,
    resetMs,
  };
}
