// Rules: what a limit is, and how a bad one is reported.
export { Rule, type RuleInput } from './rules/rule.js';
export {
  RATE_LIMIT_UNITS,
  UNIT_WINDOW_SECONDS,
  type RateLimitUnit,
  type UnitLimit,
} from './rules/rule-units.js';
export { RateLimitConfigError } from './rate-limit-config.error.js';

// Identity: who the caller is.
export { AuthResolver } from './auth/auth-resolver.js';
export { EmptyInformation } from './auth/empty-information.js';
export type {
  AuthFunction,
  Identity,
  IdentityLike,
  IdentityTuple,
  RateLimitRequest,
} from './auth/identity.js';

// Backends: where counters live.
export {
  RateLimitBackend,
  type ConsumeQuery,
  type ConsumeResult,
  type RateLimitCounter,
  type UnitState,
} from './backends/rate-limit.backend.js';
