/** The time units a rule can limit, shortest window first. */
export const RATE_LIMIT_UNITS = ['second', 'minute', 'hour', 'day', 'month'] as const;

/** One of `second`, `minute`, `hour`, `day`, `month`. */
export type RateLimitUnit = (typeof RATE_LIMIT_UNITS)[number];

/**
 * What a unit of a rule is called in decisions and headers: one of the named units, or
 * `'window'` for the one window of any length a rule may carry (`{ limit: 5, window: '15m' }`).
 */
export type RateLimitUnitName = RateLimitUnit | 'window';

/**
 * Window length of each unit in seconds. A month is 31 days, as in asgi-ratelimit, so a monthly
 * quota is never shorter than a calendar month.
 */
export const UNIT_WINDOW_SECONDS: Readonly<Record<RateLimitUnit, number>> = Object.freeze({
  second: 1,
  minute: 60,
  hour: 3_600,
  day: 86_400,
  month: 2_678_400,
});

/** One unit of a rule: at most `limit` requests per `windowMs` milliseconds. */
export interface UnitLimit {
  readonly unit: RateLimitUnitName;
  /** Maximum number of requests admitted per window (the bucket's rate for a token bucket); 0 admits none. */
  readonly limit: number;
  /** Window length in milliseconds, a whole number of at least 1. */
  readonly windowMs: number;
}

/** Every algorithm a rule can count with, in the order the README presents them. */
export const RATE_LIMIT_ALGORITHMS = [
  'fixed-window',
  'sliding-window',
  'sliding-log',
  'token-bucket',
] as const;

/**
 * How a backend counts one unit of a rule. Every algorithm decides every unit of the rule and the
 * user's block in one atomic step, and a rejected request consumes nothing in any unit. A request
 * takes `cost` units (default 1); one whose cost does not fit is rejected whole, and a cost above
 * what a unit can ever hold (its `limit`, or the bucket's `burst` for a token bucket) is always
 * rejected, with the unit's window as its wait. A limit of 0 rejects every request, with the
 * unit's window as its wait; its state then reports 0 remaining and, as reset, the window (the
 * sliding window: `W − e`, from its formula; the fixed window: as it stands, `W` when no window
 * runs). Times are whole milliseconds of the backend's clock (Redis's own, in
 * Redis); `W` below is the unit's `windowMs`, `L` its `limit`, `c` the request's cost.
 *
 * - `'fixed-window'`: a window starts with the first admitted request after the previous one
 *   ended and covers `[start, start + W)`. Admitted when `count + c ≤ L`; the count grows by `c`.
 *   Wait: the window's time left. Reset: the window's time left (`W` for a fresh one).
 * - `'sliding-window'`: the weighted two-window counter. Windows are aligned to multiples of `W`
 *   (window `k` covers `[kW, (k+1)W)`); `p` and `q` are the admitted costs of the previous and the
 *   current window (`p` is 0 when the last window counted is older), `e = now − kW`. Admitted when
 *   `p × (W − e) + (q + c) × W ≤ L × W` (the estimate `p × (1 − e/W) + q + c ≤ L` in exact integer
 *   arithmetic); `q` grows by `c`. Remaining: `floor((L × W − p × (W − e) − q × W) / W)` after the
 *   decision. Reset: `W − e`. Wait, the first later millisecond at which the same request would
 *   be admitted if nothing else came: when `q + c ≤ L`, `e' = W − floor((L − q − c) × W / p)`,
 *   and the wait is `e' − e` if `e' < W`; otherwise (or when `q + c > L`) it is in the next window,
 *   where `q` is the previous one: `(W − e) + e''` with `e'' = max(0, W − floor((L − c) × W / q))`
 *   (0 when `q` is 0). O(1) memory. Never admits more than `L` in an aligned window, and fewer than
 *   `2L` in any `W`-long interval.
 * - `'sliding-log'`: exact (what `SlidingRedisBackend` always did). Each admitted request leaves `c`
 *   entries stamped with its time `t`; an entry counts while `now < t + W`. Admitted when the
 *   entries that count, `n`, plus `c` are at most `L`. Wait: until the `(n + c − L)`-th oldest
 *   entry stops counting. Reset: when no request of cost 1 fits, the time until one does; else
 *   until the oldest entry stops counting (`W` for an empty log).
 *   Memory grows with the limit.
 * - `'token-bucket'`: GCRA with a bucket of `burst` tokens (default `L`) refilled at `L` per `W`.
 *   Kept exactly in integers, scaled so that one token is `W` units and one millisecond is `L`
 *   units: the counter stores how far the theoretical arrival time lies ahead of now, `D` (0 for
 *   an idle bucket). Admitted when `D + c × W ≤ burst × W`; then `D` grows by `c × W`. Remaining:
 *   `floor((burst × W − D) / W)`. Wait: `ceil((D + c × W − burst × W) / L)` ms, the time until
 *   enough tokens for this request's cost. Reset: `ceil(D / L)`, until the bucket is full again.
 *   Stored as the time `D` reaches 0 and a remainder, `end = now + ceil(D / L)` and
 *   `r = ceil(D / L) × L − D`, so that later `D = max(0, (end − now) × L − r)` exactly (on Redis
 *   the end is the key's expiry). O(1) memory.
 */
export type RateLimitAlgorithm = (typeof RATE_LIMIT_ALGORITHMS)[number];

/** The window a unit name stands for, in ms; undefined for `'window'`, which has no standard length. */
export function standardWindowMs(unit: RateLimitUnitName): number | undefined {
  return unit === 'window' ? undefined : UNIT_WINDOW_SECONDS[unit] * 1000;
}
