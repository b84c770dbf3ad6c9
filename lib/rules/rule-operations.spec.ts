/**
 * The rule fields of issue 15: limits that are functions of the caller, `count` and `mode`;
 * what each accepts and the message of every refusal, and how a limit function is resolved.
 */
import type { ExecutionContext } from '@nestjs/common';
import { RateLimitConfigError } from '../rate-limit-config.error.js';
import { LimitProblem, resolveLimits } from './dynamic-limits.js';
import { Rule, type RuleInput } from './rule.js';

function refusal(input: RuleInput): string {
  try {
    new Rule(input);
  } catch (error) {
    expect(error).toBeInstanceOf(RateLimitConfigError);
    return (error as Error).message;
  }
  throw new Error(`new Rule(${JSON.stringify(input)}) was accepted`);
}

const caller = { user: 'u', group: 'default' };
const context = {} as ExecutionContext;

describe('count', () => {
  it("is 'all' unless set", () => {
    expect(new Rule({ minute: 1 }).count).toBe('all');
    expect(new Rule({ minute: 1, count: 'failures' }).count).toBe('failures');
  });

  it('refuses anything else, and a rule without a limit', () => {
    expect(refusal({ minute: 1, count: 'errors' as never })).toBe(
      `Invalid rate-limit rule: "count" must be 'all', 'failures' (only responses with status 400 ` +
        `or more count) or 'successes' (only those below 400), got "errors".`,
    );
    expect(refusal({ count: 'failures' })).toMatch(
      /"count" has no effect on a rule without a limit/,
    );
    expect(refusal({ minute: 1, skipSuccessfulRequests: true } as never)).toMatch(
      /did you mean "count"\?/,
    );
  });
});

describe('mode', () => {
  it("is the module's unless set", () => {
    expect(new Rule({ minute: 1 }).mode).toBeUndefined();
    expect(new Rule({ minute: 1, mode: 'shadow' }).mode).toBe('shadow');
  });

  it('refuses anything else', () => {
    expect(refusal({ minute: 1, mode: 'dry-run' as never })).toBe(
      `Invalid rate-limit rule: "mode" must be 'enforce' or 'shadow' (decide and count, but never ` +
        `reject), got "dry-run".`,
    );
  });
});

describe('limit functions', () => {
  it('make a unit of their own, with the function beside it', () => {
    const perPlan = (): number => 10;
    const rule = new Rule({ second: 1, minute: perPlan, limit: perPlan, window: '15m' });
    expect(rule.unlimited).toBe(false);
    expect(rule.limits.map(({ unit }) => unit)).toEqual(['second', 'minute', 'window']);
    expect(rule.limitFunctions).toEqual([undefined, perPlan, perPlan]);
    expect(new Rule({ minute: 3 }).limitFunctions).toBeUndefined();
  });

  it('resolve synchronously when every function does, with the fixed limits kept', () => {
    const rule = new Rule({ second: 2, minute: (identity) => (identity.user === 'u' ? 7 : 1) });
    expect(resolveLimits(rule, rule.limitFunctions!, caller, context, 'fixed-window')).toEqual([
      { unit: 'second', limit: 2, windowMs: 1_000 },
      { unit: 'minute', limit: 7, windowMs: 60_000 },
    ]);
  });

  it('resolve to a promise when one is asynchronous', async () => {
    const rule = new Rule({ hour: async () => 100 });
    const limits = resolveLimits(rule, rule.limitFunctions!, caller, context, 'fixed-window');
    expect(limits).toBeInstanceOf(Promise);
    expect(await limits).toEqual([{ unit: 'hour', limit: 100, windowMs: 3_600_000 }]);
  });

  it.each<[string, RuleInput, string]>([
    ['a numeric string', { minute: () => '5' as never }, 'returned "5"'],
    ['a fraction', { minute: () => 2.5 }, 'returned 2.5'],
    ['a negative number', { minute: () => -1 }, 'returned -1'],
    ['NaN', { minute: () => Number.NaN }, 'returned NaN'],
    [
      'a throw',
      {
        minute: () => {
          throw new Error('no plan');
        },
      },
      'threw an error (no plan)',
    ],
  ])('give a LimitProblem, never a throw, for %s', async (_name, input, problem) => {
    const rule = new Rule(input);
    const outcome = await resolveLimits(
      rule,
      rule.limitFunctions!,
      caller,
      context,
      'fixed-window',
    );
    expect(outcome).toEqual(new LimitProblem('limit function of "minute"', problem));
  });

  it('give a LimitProblem for a rejected promise', async () => {
    const rule = new Rule({ limit: async () => Promise.reject(new Error('db down')), window: 90 });
    const outcome = await resolveLimits(
      rule,
      rule.limitFunctions!,
      caller,
      context,
      'fixed-window',
    );
    expect(outcome).toEqual(new LimitProblem('limit function of "limit"', 'rejected (db down)'));
  });

  it('give a LimitProblem for a limit the algorithm cannot count exactly', async () => {
    const rule = new Rule({ month: () => Number.MAX_SAFE_INTEGER });
    expect(resolveLimits(rule, rule.limitFunctions!, caller, context, 'fixed-window')).toEqual([
      { unit: 'month', limit: Number.MAX_SAFE_INTEGER, windowMs: 2_678_400_000 },
    ]);
    const outcome = resolveLimits(rule, rule.limitFunctions!, caller, context, 'token-bucket');
    expect(outcome).toBeInstanceOf(LimitProblem);
    expect((outcome as LimitProblem).subject).toBe('limit function of "month"');
    expect((outcome as LimitProblem).problem).toMatch(
      /^gave a limit that is too large for 'token-bucket'/,
    );
  });
});
