/** Metadata key of `@RateLimit()`. Namespaced so it cannot clash with other libraries. */
export const RATE_LIMIT_RULES = 'nestjs-ratelimit:rules';

/** Metadata key of `@SkipRateLimit()`. */
export const RATE_LIMIT_SKIP = 'nestjs-ratelimit:skip';

/** DI token of the resolved `RateLimitModuleOptions`. */
export const RATE_LIMIT_OPTIONS = Symbol.for('nestjs-ratelimit:options');

/** Metadata key set on a handler whose parameters use `@RateLimitState()`. */
export const RATE_LIMIT_STATE = 'nestjs-ratelimit:state';
