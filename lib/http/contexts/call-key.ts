import type { ArgumentsHost } from '@nestjs/common';

/**
 * An object that stands for one call in every place Nest hands the module a context for it: the
 * guard, the interceptor and the parameter decorators each get their own context object (and,
 * for HTTP, their own argument array), but the same arguments. So: the HTTP request; for GraphQL
 * the resolver's `info` (one per field resolved); for a microservice message its context object;
 * for a WebSocket message its payload when it is an object, else the client.
 */
export function callKey(host: ArgumentsHost): object | undefined {
  const args = host.getArgs<unknown[]>();
  let key: unknown;
  switch (host.getType<string>()) {
    case 'graphql':
      key = args[3];
      break;
    case 'rpc':
      key = args[1] ?? args[0];
      break;
    case 'ws':
      key = typeof args[1] === 'object' && args[1] !== null ? args[1] : args[0];
      break;
    default:
      key = args[0];
  }
  return typeof key === 'object' && key !== null ? key : undefined;
}
