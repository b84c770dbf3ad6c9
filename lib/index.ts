// The module, its options, and the pieces it registers (usable by hand when the globals are off).
export { RateLimitModule } from './rate-limit.module.js';
export {
  RATE_LIMIT_ASYNC_OPTIONS_TYPE,
  RATE_LIMIT_OPTIONS_TYPE,
} from './rate-limit.module-definition.js';
export { RATE_LIMIT_OPTIONS } from './rate-limit.constants.js';
export type {
  AuthenticateEntry,
  AuthenticateOption,
  OnAuthErrorHandler,
  OnBlockedHandler,
  RateLimitHeadersOption,
  RateLimitModuleExtras,
  RateLimitModuleOptions,
} from './rate-limit.options.js';
export { RateLimitGuard } from './rate-limit.guard.js';
export { RateLimitInterceptor } from './rate-limit.interceptor.js';
export { RateLimitService, type RateLimitDecision } from './rate-limit.service.js';

// Operations: the admin service, decision events, the handler's own decision.
export { RateLimitAdmin, type PeekOptions, type RateLimitPeek } from './rate-limit.admin.js';
export {
  RATE_LIMIT_OUTCOMES,
  type RateLimitEvent,
  type RateLimitOutcome,
} from './events/rate-limit-event.js';
export { RateLimitState } from './decorators/rate-limit-state.decorator.js';
export type { MeterLike, MetricsOptions } from './events/decision-metrics.js';

// Rules and decorators: what is limited, and how a bad rule is reported.
export {
  Rule,
  type CostFunction,
  type RateLimitCountMode,
  type RateLimitMode,
  type RuleInput,
  type UnitLimitFunction,
  type UnitLimitInput,
} from './rules/rule.js';
export type { PatternKey, RuleList, RuleTableInput } from './rules/rule-table.js';
export { trustPattern, type TrustedPattern } from './rules/trusted-pattern.js';
export {
  RATE_LIMIT_ALGORITHMS,
  RATE_LIMIT_UNITS,
  UNIT_WINDOW_SECONDS,
  type RateLimitAlgorithm,
  type RateLimitUnit,
  type RateLimitUnitName,
  type UnitLimit,
} from './rules/rule-units.js';
export { RateLimit } from './decorators/rate-limit.decorator.js';
export { SkipRateLimit } from './decorators/skip-rate-limit.decorator.js';
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
export { callerRequestOf } from './http/contexts/context-readers.js';
export type { CallerRequest } from './http/contexts/context-edge.js';
export type { RateLimitContextType } from './http/context-type.js';
export {
  IP_AUTH_OPTIONS,
  IpAuthResolver,
  clientIp,
  resolveClientAddress,
  type ClientAddressRequest,
  type IpAuthOptions,
  type TrustProxyFunction,
} from './auth/ip.auth-resolver.js';
export {
  SESSION_AUTH_OPTIONS,
  SessionAuthResolver,
  fromSession,
  type SessionAuthOptions,
  type SessionRequest,
} from './auth/session.auth-resolver.js';
export {
  JWT_ALGORITHMS,
  JWT_AUTH_OPTIONS,
  JwtAuthResolver,
  createJwtAuth,
  type JwtAlgorithm,
  type JwtAuthOptions,
  type JwtClaimOptions,
} from './auth/jwt.auth-resolver.js';

// Transports: what `@nestjs/platform-ws` applications add so their clients can be identified.
export { trackWsClients } from './http/contexts/track-ws-clients.js';

// Backends: where counters live.
export {
  RateLimitBackend,
  type ConsumeQuery,
  type ConsumeResult,
  type PeekResult,
  type RateLimitCounter,
  type UnitState,
} from './backends/rate-limit.backend.js';
export { MemoryBackend, type MemoryBackendOptions } from './backends/memory.backend.js';
export { RedisBackend, type RedisBackendOptions } from './backends/redis/redis.backend.js';
export { SlidingRedisBackend } from './backends/redis/sliding-redis.backend.js';
export type { RedisClientLike } from './backends/redis/redis-client.js';
export { BackendTimeoutError, type FailurePolicy } from './backends/failure-policy.js';

// Responses: the 429 and how it is written.
export { RateLimitExceededException } from './rate-limit.exception.js';
export { RateLimitExceptionFilter } from './rate-limit.filter.js';
export type { RateLimitInfo } from './rate-limit.info.js';
export type { RpcRejection } from './http/contexts/rpc-rejection.js';
