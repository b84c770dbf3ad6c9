import { HttpException, HttpStatus } from '@nestjs/common';

/**
 * Thrown by an auth resolver that cannot tell who the caller is (no session user, no valid token,
 * no usable address). It is an `HttpException` with status 401, so without an `onAuthError` hook an
 * unidentifiable caller on a rate-limited route gets a 401, never a 500. With a chain of resolvers,
 * the next one is tried.
 */
export class EmptyInformation extends HttpException {
  /**
   * @param reason why the caller could not be identified; it is sent in the 401 body, so it must not
   *   contain secrets
   */
  constructor(reason = 'The caller could not be identified for rate limiting') {
    super(
      { statusCode: HttpStatus.UNAUTHORIZED, message: reason, error: 'Unauthorized' },
      HttpStatus.UNAUTHORIZED,
    );
    this.name = 'EmptyInformation';
  }
}
