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
import type { ServerResponse } from 'node:http';
import { RATE_LIMIT_OPTIONS } from './rate-limit.constants.js';
import { RateLimitExceededException } from './rate-limit.exception.js';
import type { RateLimitModuleOptions } from './rate-limit.options.js';

/**
 * Answers {@link RateLimitExceededException}: by default a 429 with Nest's JSON error body (the
 * guard has already set `Retry-After` and any rate-limit headers); with `onBlocked`, whatever that
 * handler writes or returns. Registered globally by the module unless `useGlobalFilter: false`;
 * create it by hand with `new RateLimitExceptionFilter({ onBlocked })` to use it elsewhere.
 *
 * Written against Node's `ServerResponse`, which Express's response extends.
 */
@Catch(RateLimitExceededException)
@Injectable()
export class RateLimitExceptionFilter implements ExceptionFilter<RateLimitExceededException> {
  private readonly logger = new Logger('RateLimit');

  constructor(
    @Optional()
    @Inject(RATE_LIMIT_OPTIONS)
    private readonly options: Pick<RateLimitModuleOptions, 'onBlocked'> = {},
  ) {}

  async catch(exception: RateLimitExceededException, host: ArgumentsHost): Promise<void> {
    const response = host.switchToHttp().getResponse<ServerResponse>();
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
      if (response.headersSent || response.writableEnded) return;
      if (body !== undefined) return send(response, body);
    }
    send(response, exception.getResponse());
  }
}

/** Sends a 429 body: strings and Buffers as they are, anything else as JSON. */
function send(response: ServerResponse, body: unknown): void {
  response.statusCode = HttpStatus.TOO_MANY_REQUESTS;
  let payload: string | Buffer;
  let type: string;
  if (typeof body === 'string') {
    payload = body;
    type = 'text/plain; charset=utf-8';
  } else if (Buffer.isBuffer(body)) {
    payload = body;
    type = 'application/octet-stream';
  } else {
    payload = JSON.stringify(body);
    type = 'application/json; charset=utf-8';
  }
  if (!response.hasHeader('Content-Type')) response.setHeader('Content-Type', type);
  response.setHeader('Content-Length', Buffer.byteLength(payload));
  response.end(payload);
}
