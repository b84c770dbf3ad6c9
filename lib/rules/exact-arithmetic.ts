import type { RateLimitAlgorithm, UnitLimit } from './rule-units.js';

/** How many times a rule's largest product must fit below `Number.MAX_SAFE_INTEGER`. */
const HEADROOM = 4;

/** What is wrong with a rule for an algorithm, as `fail(field, problem)` takes it. */
export interface RuleProblem {
  /** The field, quoted: `"minute"`, `"burst"`. */
  readonly field: string;
  /** The rest of the sentence. */
  readonly problem: string;
}

/**
 * The sliding-window counter and the token bucket compute in integers scaled by the window
 * (`limit × windowMs`, `burst × windowMs`: see `RateLimitAlgorithm`), which are exact only up
 * to `Number.MAX_SAFE_INTEGER` (also the largest integer Redis's Lua numbers hold exactly). Their
 * sums go past the product itself: `p × (W − e) + (q + c) × W` reaches three times `L × W`, and a
 * bucket's `D + c × W` twice `burst × W`, so the product must leave room for four. The fixed
 * window and the sliding log never multiply, so any limit works with them.
 *
 * @returns the first unit (or the burst) whose product is too large for `algorithm`, or
 *   undefined when the rule can be counted exactly
 */
export function exactArithmeticProblem(
  limits: readonly UnitLimit[],
  burst: number | undefined,
  algorithm: RateLimitAlgorithm,
): RuleProblem | undefined {
  if (algorithm !== 'sliding-window' && algorithm !== 'token-bucket') return undefined;
  for (const { unit, limit, windowMs } of limits) {
    if (HEADROOM * limit * windowMs <= Number.MAX_SAFE_INTEGER) continue;
    return {
      field: `"${unit === 'window' ? 'limit' : unit}"`,
      problem: tooLarge(`the limit ${limit}`, windowMs, algorithm),
    };
  }
  if (burst === undefined) return undefined;
  for (const { windowMs } of limits) {
    if (HEADROOM * burst * windowMs > Number.MAX_SAFE_INTEGER) {
      return { field: '"burst"', problem: tooLarge(`the burst ${burst}`, windowMs, algorithm) };
    }
  }
  return undefined;
}

function tooLarge(what: string, windowMs: number, algorithm: RateLimitAlgorithm): string {
  const most = Math.floor(Number.MAX_SAFE_INTEGER / HEADROOM / windowMs);
  return (
    `is too large for '${algorithm}': ${what} times the window (${windowMs} ms), four times over, is above ` +
    `Number.MAX_SAFE_INTEGER, beyond which it cannot count exactly. Use at most ${most} for ` +
    `this window, a shorter window, or 'fixed-window' or 'sliding-log', which take any limit.`
  );
}
