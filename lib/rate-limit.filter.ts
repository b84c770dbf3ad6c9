import {
  Catch,
  HttpStatus,
  Inject,
  Injectable,
  Logger,
  Optional,
  type ArgumentsHost,
  type ExceptionFilter,
} from '@nestjs/common';
import { throwError, type Observable } from 'rxjs';
import { RpcRejection } from './http/contexts/rpc-rejection.js';
import type { HttpPlatform } from './http/http-platform.js';
import { platformOfResponse } from './http/platforms/select-platform.js';
import { RateLimitEdge } from './http/rate-limit-edge.js';
import { RATE_LIMIT_OPTIONS } from './rate-limit.constants.js';
import { RateLimitExceededException } from './rate-limit.exception.js';
import type { RateLimitModuleOptions } from './rate-limit.options.js';

/**
 * Answers {@link RateLimitExceededException}: by default a 429 with Nest's JSON error body (the
 * guard has already set `Retry-After` and any rate-limit headers); with `onBlocked`, whatever that
 * handler writes or returns. Registered globally by the module unless `useGlobalFilter: false`;
 * create it by hand with `new RateLimitExceptionFilter({ onBlocked })` to use it elsewhere.
 *
 * Works on Express and Fastify alike: it writes through the application's HTTP adapter (or, when
 * created by hand, the adapter the response belongs to).
 *
 * It also answers the guard's rejections of microservice messages (`RpcException`s) as Nest's
 * own RPC filter would, but without the error line Nest logs for each rejected `@EventPattern`
 * event (see {@link RpcRejection}).
 */
@Catch(RateLimitExceededException, RpcRejection)
@Injectable()
export class RateLimitExceptionFilter implements ExceptionFilter<
  RateLimitExceededException | RpcRejection
> {
  private readonly logger = new Logger('RateLimit');

  constructor(
    @Optional()
    @Inject(RATE_LIMIT_OPTIONS)
    private readonly options: Pick<RateLimitModuleOptions, 'onBlocked'> = {},
    @Optional() private readonly edge?: RateLimitEdge,
  ) {}

  catch(
    exception: RateLimitExceededException | RpcRejection,
    host: ArgumentsHost,
  ): Promise<void> | Observable<never> {
    if (exception instanceof RpcRejection) {
      // What a message's client receives, as Nest's BaseRpcExceptionFilter sends an RpcException;
      // for an event nobody receives it, and nothing is logged.
      const error = exception.getError();
      return throwError(() =>
        typeof error === 'object' ? error : { status: 'error', message: error },
      );
    }
    return this.answer(exception, host);
  }

  /** Answers an HTTP request over its limit. */
  private async answer(exception: RateLimitExceededException, host: ArgumentsHost): Promise<void> {
    const response = host.switchToHttp().getResponse<object>();
    const platform = this.edge?.platformFor(response) ?? platformOfResponse(response);
    const onBlocked = this.options?.onBlocked;
    if (onBlocked) {
      let body: unknown;
      try {
        body = await onBlocked(exception.info, host);
      } catch (error) {
        // A failing custom handler must not turn a 429 into a 500: log it and answer the default.
        this.logger.error(
          'onBlocked threw; sending the default 429 instead',
          (error as Error)?.stack,
        );
        body = undefined;
      }
      if (platform.isSent(response)) return;
      if (body !== undefined) return send(platform, response, body);
    }
    send(platform, response, exception.getResponse());
  }
}

/** Sends a 429 body: strings and Buffers as they are, anything else as JSON. */
function send(platform: HttpPlatform, response: object, body: unknown): void {
  if (typeof body === 'string') {
    platform.send(response, HttpStatus.TOO_MANY_REQUESTS, body, 'text/plain; charset=utf-8');
  } else if (Buffer.isBuffer(body)) {
    platform.send(response, HttpStatus.TOO_MANY_REQUESTS, body, 'application/octet-stream');
  } else {
    platform.send(
      response,
      HttpStatus.TOO_MANY_REQUESTS,
      JSON.stringify(body),
      'application/json; charset=utf-8',
    );
  }
}
