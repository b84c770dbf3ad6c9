import type { ExecutionContext } from '@nestjs/common';
import type { CallerRequest, ContextReader } from './context-edge.js';

/**
 * An HTTP request through a controller: the request is argument 0 and the response argument 1,
 * on every adapter (what `switchToHttp()` returns, without the three closures it allocates on
 * every call).
 */
export const httpContext: ContextReader = {
  type: 'http',
  authRequest: (context: ExecutionContext) => context.getArgByIndex(0),
  httpRequest: (context: ExecutionContext) => context.getArgByIndex<object>(0),
  httpResponse: (context: ExecutionContext) => context.getArgByIndex<object>(1),
  caller: (context: ExecutionContext) => context.getArgByIndex<CallerRequest>(0),
};
