import { RateLimitConfigError } from '../../lib/rate-limit-config.error.js';

/**
 * `create` must throw a {@link RateLimitConfigError} whose message matches `message`, with the
 * code of an invalid option.
 */
export function expectInvalidOption(create: () => unknown, message: RegExp): void {
  expect(create).toThrow(RateLimitConfigError);
  expect(create).toThrow(message);
  try {
    create();
  } catch (error) {
    expect((error as RateLimitConfigError).code).toBe('RATE_LIMIT_INVALID_OPTION');
  }
}
