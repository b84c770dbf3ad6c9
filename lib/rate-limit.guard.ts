import {
  Inject,
  Injectable,
  ServiceUnavailableException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import { toRetryAfterSeconds, writeRateLimitHeaders } from './http/rate-limit-headers.js';
import { RATE_LIMIT_OPTIONS } from './rate-limit.constants.js';
import { withoutStackTrace } from './internal/without-stack-trace.js';
import { RateLimitExceededException } from './rate-limit.exception.js';
import type { RateLimitInfo } from './rate-limit.info.js';
import type { RateLimitModuleOptions } from './rate-limit.options.js';
import { RateLimitService, type RateLimitDecision } from './rate-limit.service.js';

/** `Retry-After` of a 503 under `failurePolicy: 'closed'`: about when the backend is probed again. */
const UNAVAILABLE_RETRY_AFTER_SECONDS = 1;

/**
 * The global guard: asks {@link RateLimitService} for a decision, writes the headers, and throws
 * {@link RateLimitExceededException} (a 429) when the request is over its limit. Only HTTP requests
 * are limited; WebSocket and microservice contexts pass.
 *
 * Extend it and override the protected methods to change one step, then register your subclass
 * with `useGlobalGuard: false` and `APP_GUARD`.
 */
@Injectable()
export class RateLimitGuard implements CanActivate {
  constructor(
    protected readonly service: RateLimitService,
    @Inject(RATE_LIMIT_OPTIONS) protected readonly options: RateLimitModuleOptions,
  ) {}

  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    if (!this.shouldLimit(context)) return true;
    const decision = this.service.check(context);
    return decision instanceof Promise
      ? decision.then((decided) => this.enforce(context, decided))
      : this.enforce(context, decision);
  }

  /** Applies a decision: headers, then pass (`true`) or throw the rejection. */
  protected enforce(context: ExecutionContext, decision: RateLimitDecision | undefined): boolean {
    if (decision === undefined) return true;
    this.writeHeaders(context, decision);
    if (!decision.allowed) throw this.rejection(decision);
    return true;
  }

  /** Whether this context is limited at all: HTTP only, by default. */
  protected shouldLimit(context: ExecutionContext): boolean {
    return context.getType() === 'http';
  }

  /** Writes `Retry-After` on rejection and the rate-limit headers the `headers` option enables. */
  protected writeHeaders(context: ExecutionContext, decision: RateLimitDecision): void {
    const response = context.getArgByIndex<ServerResponse>(1); // switchToHttp().getResponse()
    if (decision.kind === 'unavailable') {
      response.setHeader('Retry-After', String(UNAVAILABLE_RETRY_AFTER_SECONDS));
      return;
    }
    writeRateLimitHeaders(response, this.options.headers, decision.rule, decision.result);
  }

  /**
   * The exception that rejects the request: a 429 when it is over its limit, a 503 (without any
   * backend error text) when the backend failed and the failure policy is `'closed'`. Neither
   * captures a stack trace: it would only show the guard's own frames, and capturing it costs
   * more than the rest of the rejection.
   */
  protected rejection(decision: RateLimitDecision): Error {
    if (decision.kind === 'unavailable') {
      return withoutStackTrace(
        () => new ServiceUnavailableException('Rate limiting is temporarily unavailable'),
      );
    }
    const { result, rule, identity, counter } = decision;
    const info: RateLimitInfo = {
      retryAfter: toRetryAfterSeconds(result.retryAfterMs),
      retryAfterMs: result.retryAfterMs,
      rule,
      unit: result.unit,
      blocked: result.blocked,
      user: identity.user,
      group: identity.group,
      counter,
      units: result.units,
    };
    return withoutStackTrace(() => new RateLimitExceededException(info));
  }
}
