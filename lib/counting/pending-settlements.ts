import { HttpException, type ExecutionContext } from '@nestjs/common';
import { callKey } from '../http/contexts/call-key.js';

/** What settles one admitted call of a `count: 'failures' | 'successes'` rule, given its status. */
export type Settle = (status: number) => void;

/** Calls outside HTTP that wait for their handler's outcome, by {@link callKey}. */
const pending = new WeakMap<object, Settle>();

/** Waits for the handler's outcome of `context`'s call (GraphQL, WebSocket, RPC). */
export function settleAfterHandler(context: ExecutionContext, settle: Settle): void {
  const key = callKey(context);
  if (key !== undefined) pending.set(key, settle);
}

/** Takes what waits for this call's outcome, if anything. */
export function takeSettlement(context: ExecutionContext): Settle | undefined {
  const key = callKey(context);
  if (key === undefined) return undefined;
  const settle = pending.get(key);
  if (settle !== undefined) pending.delete(key);
  return settle;
}

/**
 * The status a call that ended in `error` counts as: an HTTP exception's own (a 401 is a
 * failure, a redirect is not), anything else a failure (500), as Nest answers it.
 */
export function statusOfError(error: unknown): number {
  return error instanceof HttpException ? error.getStatus() : 500;
}
