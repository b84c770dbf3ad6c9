import type { ArgumentsHost, ExecutionContext, ModuleMetadata, Type } from '@nestjs/common';
import type { AuthResolver } from './auth/auth-resolver.js';
import type { AuthFunction, IdentityLike } from './auth/identity.js';
import type { FailurePolicy } from './backends/failure-policy.js';
import type { RateLimitContextType } from './http/context-type.js';
import type { RateLimitBackend } from './backends/rate-limit.backend.js';
import type { MetricsOptions } from './events/decision-metrics.js';
import type { RateLimitEvent } from './events/rate-limit-event.js';
import type { RateLimitInfo } from './rate-limit.info.js';
import type { RateLimitMode } from './rules/rule.js';
import type { RuleTableInput } from './rules/rule-table.js';

/** One way to identify the caller: a function, an `AuthResolver` instance, or a subclass for Nest to create. */
export type AuthenticateEntry = AuthFunction | AuthResolver | Type<AuthResolver>;

/** An auth resolver, or several tried in order until one does not throw `EmptyInformation`. */
export type AuthenticateOption = AuthenticateEntry | readonly AuthenticateEntry[];

/**
 * Which rate-limit headers to add to responses of limited routes.
 * - `'draft-10'`: IETF draft-ietf-httpapi-ratelimit-headers-10 `RateLimit-Policy` and `RateLimit`;
 * - `'legacy'`: `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (seconds);
 * - `'both'`; `false`: none (a 429 still carries `Retry-After`).
 */
export type RateLimitHeadersOption = false | 'draft-10' | 'legacy' | 'both';

/**
 * Replaces the default rejection. Over HTTP, write the response through `host` yourself, or return
 * a body: a string or Buffer is sent as is, an object as JSON, `undefined` (writing nothing) keeps
 * the default 429; `Retry-After` and the enabled rate-limit headers are set before it runs. In the
 * other contexts (`info.contextType`) a returned string becomes the error's message, and an object
 * the WebSocket / RPC error payload or extra GraphQL `extensions` (`code` stays
 * `'TOO_MANY_REQUESTS'`).
 */
export type OnBlockedHandler = (info: RateLimitInfo, host: ArgumentsHost) => unknown;

/**
 * Called when `authenticate` throws. Throw (for example `UnauthorizedException`) to reject the
 * request, return an identity to limit the request under it, or `undefined` to let it through
 * unlimited.
 */
export type OnAuthErrorHandler = (
  error: unknown,
  context: ExecutionContext,
) => IdentityLike | undefined | Promise<IdentityLike | undefined>;

/** Options of `RateLimitModule.forRoot()`, and what a `forRootAsync()` factory returns. */
export interface RateLimitModuleOptions {
  /**
   * Where counters live.
   * @default new MemoryBackend()
   */
  backend?: RateLimitBackend;
  /**
   * Who the caller is. A function `(request, context) => identity`, an `AuthResolver` instance, an
   * `AuthResolver` subclass (created through Nest's DI, so it can inject your services), or an array
   * of these tried in order until one does not throw `EmptyInformation`.
   * @default IpAuthResolver (the client address, per the HTTP adapter's trust-proxy setting)
   */
  authenticate?: AuthenticateOption;
  /**
   * The ordered pattern table `{ [pattern]: rules }` (or a Map / array of pairs). Patterns match
   * the percent-decoded path from its start.
   * @default {} (only `@RateLimit()` decorators limit)
   */
  config?: RuleTableInput;
  /** Replaces the default 429 response; see {@link OnBlockedHandler}. */
  onBlocked?: OnBlockedHandler;
  /**
   * Handles errors thrown by `authenticate`; see {@link OnAuthErrorHandler}. Without it the error
   * propagates: `EmptyInformation` is a 401.
   */
  onAuthError?: OnAuthErrorHandler;
  /**
   * Rate-limit headers on responses of limited routes.
   * @default false
   */
  headers?: RateLimitHeadersOption;
  /**
   * What happens to a request when the backend fails or does not answer within
   * `backendTimeoutMs`: `'open'` lets it through unlimited, `'closed'` answers 503 with
   * `Retry-After`, `'fallback'` limits it with `fallbackBackend` (in process) until the backend is
   * back. Each outage is logged once, and its end once.
   * @default 'open'
   */
  failurePolicy?: FailurePolicy;
  /**
   * The longest a request waits for the backend, in milliseconds.
   * @default 250
   */
  backendTimeoutMs?: number;
  /**
   * The backend used while the main one is failing, with `failurePolicy: 'fallback'`.
   * @default new MemoryBackend()
   */
  fallbackBackend?: RateLimitBackend;
  /**
   * Which kinds of call are limited at all: HTTP requests to controllers, GraphQL resolver calls
   * (whose HTTP path the table also matches), WebSocket gateway messages, microservice messages.
   * A type left out is never limited, by decorators or by the table.
   * @default ['http', 'graphql', 'ws', 'rpc']
   */
  contexts?: readonly RateLimitContextType[];
  /**
   * `'shadow'` to roll limits out safely: every rule decides and counts as usual but never
   * rejects, and reports its would-be rejections as `'shadow-rejected'` through `onDecision`,
   * the metrics and the rate-limit headers. A rule's own `mode` wins over this.
   * @default 'enforce'
   */
  mode?: RateLimitMode;
  /**
   * Called once for every request a limited rule decided, in every context, with its outcome
   * (see {@link RateLimitEvent}); never for a request no limited rule applied to or that `skip`
   * let through. It runs after the decision and cannot change or fail it: an error it throws (or
   * a promise it rejects) is logged, at most once a minute.
   */
  onDecision?: (event: RateLimitEvent) => void;
  /**
   * OpenTelemetry metrics through `@opentelemetry/api` (an optional peer dependency: install it):
   * a counter `ratelimit.decisions` (attributes `outcome`, `context_type`) and a histogram
   * `ratelimit.backend.duration` in ms. `true` uses the global meter provider; pass
   * `{ meter }` to use your own meter.
   * @default false
   */
  metrics?: boolean | MetricsOptions;
  /**
   * Requests that are not limited at all, decided before the caller is identified: health
   * checks, known crawlers. Return true to let the call through unlimited and unreported. What
   * `@nestjs/throttler` calls `skipIf`. A function that throws fails the request, as a guard
   * that throws does.
   */
  skip?: (context: ExecutionContext) => boolean | Promise<boolean>;
  /**
   * `false` makes the guard a pass-through, for tests and local runs: no caller is identified,
   * no backend is asked, nothing is reported. The rules are still checked at start-up.
   * @default true
   */
  enabled?: boolean;
  /**
   * The hot-key shortcut: once the backend rejects a counter until some time, this instance
   * rejects that counter's requests itself until then, without asking the backend, so a flood
   * from one blocked caller costs at most one backend call per instance per window or block.
   * Exact, because a rejected request consumes nothing (see `LocalRejectCache`).
   * `RateLimitAdmin.reset` and `unblock` clear it on the instance that calls them; other
   * instances keep rejecting until the time they were told. `{ maxEntries }` sets the most
   * rejections remembered (default 10,000).
   * @default true for a RedisBackend, false otherwise (the memory backend is as fast itself)
   */
  localRejectCache?: boolean | { maxEntries?: number };
}

/** Structural options of `forRoot()` / `forRootAsync()`, decided when the module is defined. */
export interface RateLimitModuleExtras {
  /**
   * Register the module globally, so `RateLimitBackend` and `RateLimitService` can be injected anywhere.
   * @default true
   */
  isGlobal?: boolean;
  /**
   * Register `RateLimitGuard` as a global guard (`APP_GUARD`). Turn off to apply it with `@UseGuards()`.
   * @default true
   */
  useGlobalGuard?: boolean;
  /**
   * Register `RateLimitExceptionFilter` as a global filter (`APP_FILTER`). Turn off to apply it yourself.
   * @default true
   */
  useGlobalFilter?: boolean;
  /**
   * Modules whose exported providers the `AuthResolver` subclasses in `authenticate` inject
   * (`forRoot()` only; `forRootAsync()` has its own `imports`).
   */
  imports?: ModuleMetadata['imports'];
}
