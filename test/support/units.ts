/**
 * Builders for the backend contract's inputs, shared by the backend specs: unit limits, counters
 * and consume queries, with the defaults those specs use.
 */
import type { ConsumeQuery, RateLimitCounter } from '../../lib/backends/rate-limit.backend.js';
import {
  UNIT_WINDOW_SECONDS,
  type RateLimitUnit,
  type UnitLimit,
} from '../../lib/rules/rule-units.js';

export const SECOND = 1_000;
export const MINUTE = 60_000;
export const HOUR = 3_600_000;

/** `limit` requests per `name` window, the window in ms as a rule computes it. */
export function unit(name: RateLimitUnit, limit: number): UnitLimit {
  return { unit: name, limit, windowMs: UNIT_WINDOW_SECONDS[name] * 1000 };
}

/** A counter; by default alice's on `path:/a` for every method. */
export function counter(user = 'alice', scope = 'path:/a', method = '*'): RateLimitCounter {
  return { user, scope, method };
}

/** A query for `limits` on `target` (the default {@link counter}), blocking for `blockMs`. */
export function query(
  limits: readonly UnitLimit[],
  target: RateLimitCounter = counter(),
  blockMs = 0,
): ConsumeQuery {
  return { counter: target, limits, blockMs };
}
