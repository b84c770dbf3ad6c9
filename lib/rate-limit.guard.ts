import {
  HttpException,
  Inject,
  Injectable,
  Logger,
  ServiceUnavailableException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import type { RateLimitContextType } from './http/context-type.js';
import { rejectionsFor } from './http/contexts/rejections.js';
import {
  toRetryAfterSeconds,
  writeRateLimitHeaders,
  writeUnavailableHeaders,
} from './http/rate-limit-headers.js';
import { RATE_LIMIT_OPTIONS } from './rate-limit.constants.js';
import { withoutStackTrace } from './internal/without-stack-trace.js';
import { RateLimitExceededException } from './rate-limit.exception.js';
import type { RateLimitInfo } from './rate-limit.info.js';
import type { RateLimitModuleOptions } from './rate-limit.options.js';
import { RateLimitService, type RateLimitDecision } from './rate-limit.service.js';

/**
 * The global guard: asks {@link RateLimitService} for a decision, writes the headers, and rejects
 * a call that is over its limit, in the form of its transport: over HTTP it throws
 * {@link RateLimitExceededException} (a 429, answered by `RateLimitExceptionFilter`); for a
 * GraphQL resolver a `GraphQLError` (`extensions.code: 'TOO_MANY_REQUESTS'`), for a WebSocket
 * message a `WsException` and for a microservice message an `RpcException`, both carrying
 * `{ status: 'error', statusCode: 429, message, retryAfter }`.
 *
 * Extend it and override the protected methods to change one step, then register your subclass
 * with `useGlobalGuard: false` and `APP_GUARD`.
 */
@Injectable()
export class RateLimitGuard implements CanActivate {
  private readonly logger = new Logger('RateLimit');

  constructor(
    protected readonly service: RateLimitService,
    @Inject(RATE_LIMIT_OPTIONS) protected readonly options: RateLimitModuleOptions,
  ) {}

  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    if (!this.shouldLimit(context)) return true;
    let decision: ReturnType<RateLimitService['check']>;
    try {
      decision = this.service.check(context);
    } catch (error) {
      return this.failed(context, error);
    }
    return decision instanceof Promise
      ? decision.then(
          (decided) => this.enforce(context, decided),
          (error: unknown) => this.failed(context, error),
        )
      : this.enforce(context, decision);
  }

  /** Applies a decision: headers, then pass (`true`) or reject the call. */
  protected enforce(
    context: ExecutionContext,
    decision: RateLimitDecision | undefined,
  ): boolean | Promise<boolean> {
    if (decision === undefined) return true;
    this.writeHeaders(context, decision);
    if (decision.allowed) {
      this.service.admitted(context, decision);
      return true;
    }
    const rejection = this.rejection(decision, context);
    if (context.getType() === 'http') throw rejection;
    return this.rejectInTransport(context, rejection);
  }

  /** Whether this context is limited at all: the types of the `contexts` option (default: all). */
  protected shouldLimit(context: ExecutionContext): boolean {
    return this.service.edge.readerOf(context) !== undefined;
  }

  /**
   * Writes `Retry-After` on rejection and the rate-limit headers the `headers` option enables, on
   * the HTTP response of the call (of a GraphQL call too); a call without one gets none.
   */
  protected writeHeaders(context: ExecutionContext, decision: RateLimitDecision): void {
    const { edge } = this.service;
    const response = edge.readerOf(context)?.httpResponse(context);
    if (response === undefined) return;
    const platform = edge.platformFor(response);
    if (decision.kind === 'unavailable') {
      writeUnavailableHeaders(platform, response);
      return;
    }
    writeRateLimitHeaders(
      platform,
      response,
      this.options.headers,
      decision.rule,
      decision.result,
      decision.outcome === 'shadow-rejected',
    );
  }

  /**
   * The exception that rejects the call: a 429 when it is over its limit, a 503 (without any
   * backend error text) when the backend failed and the failure policy is `'closed'`. Outside
   * HTTP it is then turned into the transport's own error. Neither captures a stack trace: it
   * would only show the guard's own frames, and capturing it costs more than the rest of the
   * rejection.
   */
  protected rejection(decision: RateLimitDecision, context: ExecutionContext): HttpException {
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
      contextType: context.getType<RateLimitContextType>(),
    };
    return withoutStackTrace(() => new RateLimitExceededException(info));
  }

  /**
   * Deciding threw, in `authenticate` or `onAuthError`. Over HTTP the error propagates as it is
   * (`EmptyInformation` is a 401); in another transport an HTTP exception becomes that
   * transport's error, so a caller who cannot be identified gets a 401 there too, never Nest's
   * "Internal server error".
   */
  private failed(context: ExecutionContext, error: unknown): never | Promise<never> {
    if (context.getType() === 'http' || !(error instanceof HttpException)) throw error;
    return this.rejectInTransport(context, error);
  }

  /** Throws `rejection` as the error of the context's transport, after `onBlocked` when over limit. */
  private async rejectInTransport(
    context: ExecutionContext,
    rejection: HttpException,
  ): Promise<never> {
    const type = context.getType<Exclude<RateLimitContextType, 'http'>>();
    const rejections = await rejectionsFor(type);
    if (!(rejection instanceof RateLimitExceededException)) {
      throw rejections.identityFailure(rejection);
    }
    let custom: unknown;
    const { onBlocked } = this.options;
    if (onBlocked) {
      try {
        custom = await onBlocked(rejection.info, context);
      } catch (error) {
        // A failing custom handler must not hide the rejection: log it and reject as usual.
        this.logger.error(
          'onBlocked threw; rejecting with the default error instead',
          (error as Error)?.stack,
        );
        custom = undefined;
      }
    }
    throw rejections.overLimit(rejection.info, custom);
  }
}
