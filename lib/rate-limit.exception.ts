import { HttpException, HttpStatus } from '@nestjs/common';
import type { RateLimitInfo } from './rate-limit.info.js';

/**
 * Thrown by the guard when a request is over its limit: a 429 whose body is Nest's usual JSON error
 * shape. `info` says which rule and unit tripped, whether a block is active, and how long to wait.
 * `RateLimitExceptionFilter` turns it into the response (or hands it to `onBlocked`).
 */
export class RateLimitExceededException extends HttpException {
  /**
   * @param info the decision that rejected the request
   */
  constructor(readonly info: RateLimitInfo) {
    super(
      {
        statusCode: HttpStatus.TOO_MANY_REQUESTS,
        message: overLimitMessage(info.retryAfter),
        error: 'Too Many Requests',
      },
      HttpStatus.TOO_MANY_REQUESTS,
    );
    this.name = 'RateLimitExceededException';
  }
}

/** The message of a rejection, in every transport: `Too many requests, retry in 3 seconds`. */
export function overLimitMessage(retryAfter: number): string {
  return `Too many requests, retry in ${retryAfter} second${retryAfter === 1 ? '' : 's'}`;
}
