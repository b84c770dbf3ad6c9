import type { ContextReader } from './context-edge.js';

/**
 * A microservice message (`@MessagePattern` / `@EventPattern`): the payload is argument 0 and the
 * transport's context argument 1. There is no HTTP request and no caller address: identity comes
 * from the application's own `AuthResolver`, which reads the payload or the context.
 */
export const rpcContext: ContextReader = {
  type: 'rpc',
  authRequest: (context) => context.getArgByIndex(0),
  httpRequest: () => undefined,
  httpResponse: () => undefined,
  caller: () => undefined,
};
