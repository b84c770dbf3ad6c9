import type { RateLimitCounter, UnitState } from './backends/rate-limit.backend.js';
import type { Rule } from './rules/rule.js';
import type { RateLimitUnit } from './rules/rule-units.js';

/** Everything known about a limited request: given to `onBlocked` and carried by the 429 exception. */
export interface RateLimitInfo {
  /** Whole seconds until a request would be admitted again (at least 1); the `Retry-After` value. */
  readonly retryAfter: number;
  /** The same wait in milliseconds, unrounded. */
  readonly retryAfterMs: number;
  /** The rule that was applied. */
  readonly rule: Rule;
  /** The exhausted unit with the longest wait; undefined when only an earlier block rejected it. */
  readonly unit: RateLimitUnit | undefined;
  /** True when the user is blocked (`blockTime`), by an earlier block or one this request started. */
  readonly blocked: boolean;
  /** The caller. */
  readonly user: string;
  /** The caller's group. */
  readonly group: string;
  /** The counter the request was checked against. */
  readonly counter: RateLimitCounter;
  /** Every unit of the rule after the decision (empty when an earlier block decided). */
  readonly units: readonly UnitState[];
}
