import type { ResolvedIdentity } from '../auth/authenticate.js';
import type { RateLimitCounter } from '../backends/rate-limit.backend.js';
import type { RateLimitContextType } from '../http/context-type.js';
import type { Rule } from '../rules/rule.js';

/**
 * How a request that a limited rule applied to was decided:
 * - `'allowed'`: admitted and counted;
 * - `'rejected'`: over its limit (or blocked) and rejected;
 * - `'shadow-rejected'`: over its limit under a rule in shadow mode, so admitted anyway;
 * - `'backend-error'`: the backend failed or timed out (or the rule's cost or limit function
 *   failed), and the failure policy decided. Under `failurePolicy: 'fallback'`, the requests of
 *   an outage carry the fallback backend's outcome instead (`'allowed'`, `'rejected'`...).
 */
export type RateLimitOutcome = 'allowed' | 'rejected' | 'shadow-rejected' | 'backend-error';

/** Every outcome, in a fixed order (for metrics and tests). */
export const RATE_LIMIT_OUTCOMES: readonly RateLimitOutcome[] = Object.freeze([
  'allowed',
  'rejected',
  'shadow-rejected',
  'backend-error',
] as const);

/** One decided request, as given to the module's `onDecision` listener. */
export interface RateLimitEvent {
  readonly outcome: RateLimitOutcome;
  /** The rule that applied. */
  readonly rule: Rule;
  /** The counter the request was (or would have been) counted under. */
  readonly counter: RateLimitCounter;
  /** The caller, as the auth resolvers identified it. */
  readonly identity: ResolvedIdentity;
  /** When rejected (shadow-rejected too): milliseconds until a retry would be admitted; else 0. */
  readonly retryAfterMs: number;
  /** How long the backend took to decide, in milliseconds (0 when no backend was asked). */
  readonly durationMs: number;
  /** What kind of call it was. */
  readonly contextType: RateLimitContextType;
}
