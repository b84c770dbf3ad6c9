/** Metadata key of `@RateLimit()`. Namespaced so it cannot clash with other libraries. */
export const RATE_LIMIT_RULES = 'nestjs-ratelimit:rules';

/** Metadata key of `@SkipRateLimit()`. */
export const RATE_LIMIT_SKIP = 'nestjs-ratelimit:skip';

/** Where the identity is cached on the request, so it is resolved at most once per request. */
export const RATE_LIMIT_IDENTITY = Symbol.for('nestjs-ratelimit:identity');

/** DI token of the resolved `RateLimitModuleOptions`. */
export const RATE_LIMIT_OPTIONS = Symbol.for('nestjs-ratelimit:options');
