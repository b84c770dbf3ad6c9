/**
 * The expected values of the conformance scenarios: per-algorithm expectations, units, rules, and
 * the shapes of the results a backend returns, shared by backend-conformance.ts and the scenario
 * modules it runs.
 *
 * @module
 */
import type {
  ConsumeResult,
  PeekResult,
  UnitState,
} from '../../lib/backends/rate-limit.backend.js';
import { Rule, type RuleInput } from '../../lib/rules/rule.js';
import {
  UNIT_WINDOW_SECONDS,
  type RateLimitAlgorithm,
  type RateLimitUnitName,
  type UnitLimit,
} from '../../lib/rules/rule-units.js';

/** A per-algorithm expectation. */
export type PerAlgorithm<T> = Readonly<Record<RateLimitAlgorithm, T>>;

/** The same expectation for every algorithm, to spread and override: `{ ...EVERY(x), ... }`. */
export function EVERY<T>(value: T): PerAlgorithm<T> {
  return {
    'fixed-window': value,
    'sliding-window': value,
    'sliding-log': value,
    'token-bucket': value,
  };
}

export const SECOND = 1_000;
export const MINUTE = 60_000;
export const HOUR = 3_600_000;

/** Only the unit fields of a rule: the suite passes `blockMs` in the query itself. */
export type Units = Pick<RuleInput, 'second' | 'minute' | 'hour' | 'day' | 'month'>;

/** The rule's units, shortest window first, exactly as the guard passes them. */
export function limitsOf(units: Units): readonly UnitLimit[] {
  return new Rule(units).limits;
}

/** The expected state of one unit (`windowMs` for the unit `'window'`). */
export function unitState(
  unit: RateLimitUnitName,
  limit: number,
  remaining: number,
  resetMs: number,
  windowMs = unit === 'window' ? NaN : UNIT_WINDOW_SECONDS[unit] * 1000,
): UnitState {
  return { unit, limit, windowMs, remaining, resetMs };
}

/** The expected result of an admitted request. */
export function admitted(...units: UnitState[]): ConsumeResult {
  return { allowed: true, retryAfterMs: 0, blocked: false, unit: undefined, units };
}

/** The expected result of a request a unit rejected (and maybe blocked the user for). */
export function rejected(
  retryAfterMs: number,
  unit: RateLimitUnitName,
  units: UnitState[],
  blocked = false,
): ConsumeResult {
  return { allowed: false, retryAfterMs, blocked, unit, units };
}

/**
 * The expected result of a request made while an earlier request's block runs: nothing counted,
 * the block left as it was, and the rule's units as they stand. The wait is the time until a
 * request would really be admitted (the block's remainder, or the wait of the exhausted unit
 * `unit` when that is longer), so a client that obeys it never runs into a new block.
 */
export function blockedEarlier(
  retryAfterMs: number,
  units: UnitState[],
  unit?: RateLimitUnitName,
): ConsumeResult {
  return { allowed: false, retryAfterMs, blocked: true, unit, units };
}

/** The expected result of a peek: the block's time left, and the units as they stand. */
export function peeked(blockedMs: number, ...units: UnitState[]): PeekResult {
  return { blockedMs, units };
}
