import { describeValue } from '../config-validation.js';

/**
 * Checks the length given to `RateLimitBackend.block`: a whole number of milliseconds of at least
 * 1 (and a safe integer, so that every store keeps it exactly). Checked by the backends because
 * JavaScript callers can pass anything, and a block of `NaN` ms would otherwise block nobody, or
 * everybody forever, without a word.
 * @param owner the backend's name, for the message
 * @throws RangeError when `ms` is anything else
 */
export function checkBlockLength(owner: string, ms: unknown): asserts ms is number {
  if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || ms < 1) {
    throw new RangeError(
      `${owner}: block(user, ms) needs a whole number of milliseconds of at least 1, such as ` +
        `15 * 60_000 for 15 minutes; got ${describeValue(ms)}. To lift a block, call unblock(user).`,
    );
  }
}
