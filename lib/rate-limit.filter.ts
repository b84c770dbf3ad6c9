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
 */
@Catch(RateLimitExceededException)
@Injectable()
export class RateLimitExceptionFilter implements ExceptionFilter<RateLimitExceededException> {
  private readonly logger = new Logger('RateLimit');

  constructor(
    @Optional()
    @Inject(RATE_LIMIT_OPTIONS)
    private readonly options: Pick<RateLimitModuleOptions, 'onBlocked'> = {},
    @Optional() private readonly edge?: RateLimitEdge,
  ) {}

  async catch(exception: RateLimitExceededException, host: ArgumentsHost): Promise<void> {
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
