import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { RateLimitCounter, UnitState } from '../backends/rate-limit.backend.js';
import type { RateLimitOutcome } from '../events/rate-limit-event.js';
import { callKey } from '../http/contexts/call-key.js';
import { RATE_LIMIT_STATE } from '../rate-limit.constants.js';
import type { Rule } from '../rules/rule.js';

/** The decision of the handler's own call, as `@RateLimitState()` hands it over. */
export interface RateLimitState {
  /** The rule that applied. */
  readonly rule: Rule;
  /** `'allowed'`, or `'shadow-rejected'` under a shadow rule (a rejected call never gets here). */
  readonly outcome: RateLimitOutcome;
  /** The counter the call was counted under. */
  readonly counter: RateLimitCounter;
  /** Each unit of the rule after this call: its limit, the requests left, ms until it resets. */
  readonly units: readonly UnitState[];
}

/** The states of calls whose handlers asked for them, by {@link callKey}. */
const states = new WeakMap<object, RateLimitState>();

let used = false;

/** Whether any handler uses `@RateLimitState()`: when none does, no call looks further. */
export function stateDecoratorUsed(): boolean {
  return used;
}

/** Remembers the state of a call, for a handler that uses `@RateLimitState()`. */
export function rememberState(context: ExecutionContext, state: RateLimitState): void {
  const key = callKey(context);
  if (key !== undefined) states.set(key, state);
}

const readState = createParamDecorator(
  (_data: unknown, context: ExecutionContext): RateLimitState | undefined => {
    const key = callKey(context);
    return key === undefined ? undefined : states.get(key);
  },
);

/**
 * Hands the handler its own call's rate-limit decision ({@link RateLimitState}): the rule, and
 * the remaining requests and reset of each unit. `undefined` when no limited rule applied (or
 * the backend failed under `failurePolicy: 'open'`). What express-rate-limit users know as
 * `req.rateLimit`. Works in every context; for a WebSocket message whose payload is not an
 * object, the state is that of the client's latest message.
 *
 * @example
 * @Get('search')
 * search(@RateLimitState() state?: RateLimitState) {
 *   return { left: state?.units[0]?.remaining };
 * }
 */
export function RateLimitState(): ParameterDecorator {
  const param = readState();
  used = true;
  return (target, key, index) => {
    // Marks the handler, so that only calls of handlers that read it keep a state.
    if (key !== undefined) {
      const handler: unknown = Reflect.get(target, key);
      if (typeof handler === 'function') Reflect.defineMetadata(RATE_LIMIT_STATE, true, handler);
    }
    param(target, key, index);
  };
}
