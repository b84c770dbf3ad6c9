import type { ConsumeResult, UnitState } from '../backends/rate-limit.backend.js';
import type { RateLimitHeadersOption } from '../rate-limit.options.js';
import type { Rule } from '../rules/rule.js';
import type { HttpPlatform } from './http-platform.js';

/**
 * `Retry-After` of a 503 under `failurePolicy: 'closed'` (the `retryAfter` of the error outside
 * HTTP): about when the backend is probed again.
 */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 1;

/** The header of a 503 that `failurePolicy: 'closed'` answers while the backend is failing. */
export function writeUnavailableHeaders(platform: HttpPlatform, response: object): void {
  platform.setHeader(response, 'Retry-After', String(UNAVAILABLE_RETRY_AFTER_SECONDS));
}

/** Whole seconds for a wait in ms: rounded up, and at least 1 so a client never retries at once. */
export function toRetryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/**
 * The unit a client should watch: the exhausted one with the longest wait when there is one
 * (during a block too), else the one with the fewest requests left (on a tie, the one that takes
 * longest to reset). Undefined only for a backend that reports no unit.
 */
export function tightestUnit(result: ConsumeResult): UnitState | undefined {
  let tightest: UnitState | undefined;
  for (const state of result.units) {
    if (result.unit !== undefined && state.unit === result.unit) return state;
    if (
      tightest === undefined ||
      state.remaining < tightest.remaining ||
      (state.remaining === tightest.remaining && state.resetMs > tightest.resetMs)
    ) {
      tightest = state;
    }
  }
  return tightest;
}

/** `RateLimit-Policy` per rule: it only depends on the rule, so it is built once. */
const policies = new WeakMap<Rule, string>();

/**
 * `RateLimit-Policy`: one entry per unit, named as the unit (`"window"` for a rule's custom
 * window), with its limit and its real window length. The draft's `w` is whole seconds, so a
 * window that is not (`window: 1.5`) is shown rounded up (`w=2`): a client pacing itself by it
 * then never goes faster than the rule allows. A rule with a limit function shows the limits of
 * this request (`units`), so it is built each time.
 */
export function policyHeader(rule: Rule, units: readonly UnitState[]): string {
  if (rule.limitFunctions !== undefined) return formatPolicy(units);
  let policy = policies.get(rule);
  if (policy === undefined) {
    policy = formatPolicy(rule.limits);
    policies.set(rule, policy);
  }
  return policy;
}

function formatPolicy(units: readonly { unit: string; limit: number; windowMs: number }[]): string {
  return units
    .map((unit) => `"${unit.unit}";q=${unit.limit};w=${Math.ceil(unit.windowMs / 1000)}`)
    .join(', ');
}

/**
 * Writes the enabled rate-limit headers for a decided request, plus `Retry-After` when it was
 * rejected (not when `shadow`: a shadow rule's would-be rejection, let through). Policy names are the unit names, so `RateLimit` points at an entry of
 * `RateLimit-Policy` as draft-ietf-httpapi-ratelimit-headers-10 requires.
 */
export function writeRateLimitHeaders(
  platform: HttpPlatform,
  response: object,
  format: RateLimitHeadersOption | undefined,
  rule: Rule,
  result: ConsumeResult,
  shadow = false,
): void {
  const retryAfter = result.allowed ? 0 : toRetryAfterSeconds(result.retryAfterMs);
  // A shadow rejection lets the request through: the fields say it, but nothing asks to retry.
  if (!result.allowed && !shadow) platform.setHeader(response, 'Retry-After', String(retryAfter));
  if (!format) return;

  const tightest = tightestUnit(result);
  // The rule's first unit stands in only for a custom backend that reports no unit.
  const limit = tightest?.limit ?? rule.limits[0]!.limit;
  const remaining = result.allowed ? (tightest?.remaining ?? 0) : 0;
  // While rejected, the reset a client needs is the wait; a block can outlast every window.
  const resetSeconds = result.allowed ? Math.ceil((tightest?.resetMs ?? 0) / 1000) : retryAfter;

  if (format === 'draft-10' || format === 'both') {
    const name = tightest?.unit ?? rule.limits[0]!.unit;
    platform.setHeader(response, 'RateLimit-Policy', policyHeader(rule, result.units));
    platform.setHeader(response, 'RateLimit', `"${name}";r=${remaining};t=${resetSeconds}`);
  }
  if (format === 'legacy' || format === 'both') {
    platform.setHeader(response, 'X-RateLimit-Limit', String(limit));
    platform.setHeader(response, 'X-RateLimit-Remaining', String(remaining));
    platform.setHeader(response, 'X-RateLimit-Reset', String(resetSeconds));
  }
}
