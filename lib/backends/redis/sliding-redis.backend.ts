import type { RateLimitAlgorithm } from '../../rules/rule-units.js';
import { RedisBackend } from './redis.backend.js';

/**
 * `RedisBackend` counting with exact sliding windows by default (`algorithm: 'sliding-log'`): a
 * unit admits a request at millisecond `t` when the admitted requests in `(t - window, t]`, plus
 * its cost, are at most the limit, so there is no burst at a window boundary. Kept for the
 * applications written before algorithms existed; any other algorithm is available per rule or
 * through the `algorithm` option, exactly as on `RedisBackend`.
 *
 * Keys: one list per (counter, unit) holding the millisecond of each admitted request of the last
 * window (so up to `limit` entries, about 10 bytes each); see `redis-keys.ts`.
 */
export class SlidingRedisBackend extends RedisBackend {
  /** The default of the `algorithm` option: `'sliding-log'` here. */
  protected override fallbackAlgorithm(): RateLimitAlgorithm {
    return 'sliding-log';
  }
}
