import type { RateLimitCounter, UnitState } from './backends/rate-limit.backend.js';
import type { Rule } from './rules/rule.js';
import type { RateLimitUnitName } from './rules/rule-units.js';
import type { RateLimitContextType } from './http/context-type.js';

/** Everything known about a limited request: given to `onBlocked` and carried by the 429 exception. */
export interface RateLimitInfo {
  /**
   * Whole seconds until a request would be admitted again (at least 1); the `Retry-After` value.
   * During a block: the longer of the block's remaining time and the exhausted units' waits, so a
   * client that obeys it is not blocked again.
   */
  readonly retryAfter: number;
  /** The same wait in milliseconds, unrounded. */
  readonly retryAfterMs: number;
  /** The rule that was applied. */
  readonly rule: Rule;
  /**
   * The exhausted unit with the longest wait, during a block too; undefined when no unit is
   * exhausted and a block alone rejected the request.
   */
  readonly unit: RateLimitUnitName | undefined;
  /** True when the user is blocked (`blockTime`), by an earlier block or one this request started. */
  readonly blocked: boolean;
  /** The caller. */
  readonly user: string;
  /** The caller's group. */
  readonly group: string;
  /** The counter the request was checked against. */
  readonly counter: RateLimitCounter;
  /** Every unit of the rule as it stands (a rejected request counts in none), in rule order. */
  readonly units: readonly UnitState[];
  /**
   * The kind of call that was rejected: an HTTP request, a GraphQL resolver call, a WebSocket
   * message or a microservice message.
   */
  readonly contextType: RateLimitContextType;
}
