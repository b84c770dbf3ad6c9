/** The time units a rule can limit, shortest window first. */
export const RATE_LIMIT_UNITS = ['second', 'minute', 'hour', 'day', 'month'] as const;

/** One of `second`, `minute`, `hour`, `day`, `month`. */
export type RateLimitUnit = (typeof RATE_LIMIT_UNITS)[number];

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
  readonly unit: RateLimitUnit;
  /** Maximum number of requests admitted per window; 0 admits none. */
  readonly limit: number;
  /** Window length in milliseconds. */
  readonly windowMs: number;
}
