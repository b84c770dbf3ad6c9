import type { ExecutionContext } from '@nestjs/common';
import type { ResolvedIdentity } from '../auth/authenticate.js';
import { describeValue } from '../config-validation.js';
import { errorText } from '../internal/error-text.js';
import type { MaybePromise } from '../internal/maybe-promise.js';
import { exactArithmeticProblem } from './exact-arithmetic.js';
import type { Rule, UnitLimitFunction } from './rule.js';
import type { RateLimitAlgorithm, UnitLimit } from './rule-units.js';

/** Why a rule's limit functions gave no usable limits for one request. */
export class LimitProblem {
  constructor(
    /** Which function: `limit function of "minute"`. */
    readonly subject: string,
    /** What it did: `threw an error (no plan)`. */
    readonly problem: string,
  ) {}
}

/**
 * The units of `rule` for one request: its fixed limits as they are, and each
 * {@link UnitLimitFunction} called once with the caller. Synchronous when every function is;
 * a {@link LimitProblem} (never a throw or a rejection) when one throws, rejects or gives
 * anything but a whole number, 0 or more, or a limit too large to count exactly with
 * `algorithm`.
 */
export function resolveLimits(
  rule: Rule,
  functions: readonly (UnitLimitFunction | undefined)[],
  identity: ResolvedIdentity,
  context: ExecutionContext,
  algorithm: RateLimitAlgorithm,
): MaybePromise<readonly UnitLimit[] | LimitProblem> {
  const values: MaybePromise<unknown>[] = [];
  let pending = false;
  for (let index = 0; index < rule.limits.length; index++) {
    const limit = functions[index];
    if (limit === undefined) {
      values.push(rule.limits[index]!.limit);
      continue;
    }
    try {
      const value = limit(identity, context);
      if (value instanceof Promise) pending = true;
      values.push(value);
    } catch (error) {
      settleAll(values);
      return new LimitProblem(nameOf(rule, index), `threw an error (${errorText(error)})`);
    }
  }
  if (!pending) return check(rule, values, algorithm);
  return Promise.allSettled(values).then((settled) => {
    const given: unknown[] = [];
    for (const [index, outcome] of settled.entries()) {
      if (outcome.status === 'rejected') {
        return new LimitProblem(nameOf(rule, index), `rejected (${errorText(outcome.reason)})`);
      }
      given.push(outcome.value);
    }
    return check(rule, given, algorithm);
  });
}

/** The units with the given limits, or what is wrong with one of them. */
function check(
  rule: Rule,
  values: readonly unknown[],
  algorithm: RateLimitAlgorithm,
): readonly UnitLimit[] | LimitProblem {
  const limits: UnitLimit[] = [];
  for (const [index, value] of values.entries()) {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      return new LimitProblem(nameOf(rule, index), `returned ${describeValue(value)}`);
    }
    const { unit, windowMs } = rule.limits[index]!;
    limits.push({ unit, limit: value, windowMs });
  }
  const tooLarge = exactArithmeticProblem(limits, rule.burst, algorithm);
  if (tooLarge !== undefined) {
    const index = limits.findIndex(
      ({ unit }) => `"${unit === 'window' ? 'limit' : unit}"` === tooLarge.field,
    );
    return new LimitProblem(
      index < 0 ? 'limit functions' : nameOf(rule, index),
      `gave a limit that ${tooLarge.problem.replace(/\.$/, '')}`,
    );
  }
  return limits;
}

/** `limit function of "minute"`. */
function nameOf(rule: Rule, index: number): string {
  const { unit } = rule.limits[index]!;
  return `limit function of "${unit === 'window' ? 'limit' : unit}"`;
}

/** Keeps the rejections of promises already started from crashing the process once ignored. */
function settleAll(values: readonly unknown[]): void {
  for (const value of values) {
    if (value instanceof Promise) value.catch(() => undefined);
  }
}
