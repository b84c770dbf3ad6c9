import type { RateLimitBackend } from '../backends/rate-limit.backend.js';
import { RateLimitConfigError } from '../rate-limit-config.error.js';
import { exactArithmeticProblem } from './exact-arithmetic.js';
import type { LocatedRule } from './rule-sources.js';

/**
 * Checks, at start-up, what a rule can only be checked against once its backend is known: that
 * the backend implements the rule's algorithm (its own, or the backend's default), that `burst`
 * comes with an effective `'token-bucket'`, and that the algorithm can count its limits exactly.
 * `fallback` is the in-process backend of `failurePolicy: 'fallback'`, which decides the same
 * rules during an outage and so must implement their algorithms too.
 * @throws RateLimitConfigError naming the rule, the backend and the fix
 */
export function assertBackendSupports(
  rules: readonly LocatedRule[],
  backend: RateLimitBackend,
  fallback: RateLimitBackend | undefined,
): void {
  for (const { rule, where } of rules) {
    if (rule.unlimited) continue; // never reaches a backend
    const algorithm = rule.algorithm ?? backend.algorithm;
    const fail = (problem: string): never => {
      throw new RateLimitConfigError(
        'RATE_LIMIT_INVALID_RULE',
        `Invalid rate-limit rule (${where}): ${problem}`,
      );
    };
    const own =
      rule.algorithm === undefined ? `the backend's default, '${algorithm}'` : `'${algorithm}'`;
    for (const [role, store] of [
      ['backend', backend],
      ['fallbackBackend', fallback],
    ] as const) {
      if (store === undefined || store.algorithms.includes(algorithm)) continue;
      fail(
        `it counts with ${own}, which the ${role} ${store.describe()} does not implement (it ` +
          `implements ${store.algorithms.map((name) => `'${name}'`).join(', ')}): set the rule's ` +
          `algorithm to one of those, or use a backend that implements '${algorithm}'.`,
      );
    }
    if (rule.burst !== undefined && algorithm !== 'token-bucket') {
      fail(
        `"burst" only applies to the 'token-bucket' algorithm, and this rule counts with ${own} ` +
          `(backend ${backend.describe()}): set algorithm: 'token-bucket' on the rule, or drop burst.`,
      );
    }
    const problem = exactArithmeticProblem(rule.limits, rule.burst, algorithm);
    if (problem !== undefined) {
      fail(`${problem.field} ${problem.problem} It counts with ${own} on ${backend.describe()}.`);
    }
  }
}
