/**
 * Thrown at start-up (or when a `Rule` / `@RateLimit()` is created) for configuration that can
 * never work: a bad limit, an unknown rule field, an invalid or dangerous pattern, an auth
 * resolver that is not one. The message names the option and says how to fix it; `code` is
 * stable, so tooling can match on it.
 */
export class RateLimitConfigError extends Error {
  /** A stable, machine-readable code such as `RATE_LIMIT_INVALID_RULE`. */
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'RateLimitConfigError';
    this.code = code;
  }
}
