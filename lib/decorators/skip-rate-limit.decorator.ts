import { SetMetadata } from '@nestjs/common';
import { RATE_LIMIT_SKIP } from '../rate-limit.constants.js';

/**
 * Exempts a controller or a handler from rate limiting: no rule applies and the caller is not
 * identified. On a handler, `@SkipRateLimit(false)` limits it again although its controller skips.
 *
 * @param skip `false` to undo a controller-level skip for one handler
 * @default true
 */
export function SkipRateLimit(skip = true): ClassDecorator & MethodDecorator {
  return SetMetadata(RATE_LIMIT_SKIP, skip);
}
