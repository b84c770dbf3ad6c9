import type { RateLimitAlgorithm, UnitLimit } from '../../rules/rule-units.js';
import type { UnitState } from '../rate-limit.backend.js';

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
  readonly algorithm: RateLimitAlgorithm;

  /** The most one request may cost under this unit: its limit, or the bucket's `burst`. */
  capacity(limit: number, burst: number | undefined): number;

  /**
   * Milliseconds until a request of `cost` would be admitted if nothing else came (at least 1),
   * or 0 when it fits now. Only called with a limit above 0 and `cost ≤ capacity`.
   */
  wait(entry: E | undefined, limit: UnitLimit, capacity: number, cost: number, now: number): number;

  /** The unit as it stands: after {@link count}, the state an admitted request reports. */
  stateOf(entry: E | undefined, limit: UnitLimit, capacity: number, now: number): UnitState;

  /**
   * Counts a request that {@link wait} admitted. Returns the entry to set at the back of the
   * store (a new one, or one whose {@link placedAt} moved on), or undefined when `entry` was
   * updated where it stands.
   */
  count(
    entry: E | undefined,
    limit: UnitLimit,
    capacity: number,
    cost: number,
    now: number,
  ): E | undefined;

  /**
   * From when on the entry counts as absent (exclusive end, backend clock). An entry's expiry may
   * move later while it stays in place; it is never earlier than that of an entry placed before
   * it by more than {@link MemoryBackend}'s documented sweep delay of the algorithm.
   */
  expiresAt(entry: E, windowMs: number): number;

  /**
   * When the entry was (re)set at the back of its store: never decreasing from the front of a
   * store to its back, and changed by every {@link count} that returns the entry. Eviction takes
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
