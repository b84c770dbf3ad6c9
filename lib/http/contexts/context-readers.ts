import type { ExecutionContext } from '@nestjs/common';
import { RATE_LIMIT_CONTEXT_TYPES, type RateLimitContextType } from '../context-type.js';
import type { CallerRequest, ContextReader } from './context-edge.js';
import { graphqlContext } from './graphql.context.js';
import { httpContext } from './http.context.js';
import { rpcContext } from './rpc.context.js';
import { wsContext, wsReader } from './ws.context.js';

const READERS: ReadonlyMap<string, ContextReader> = new Map(
  [httpContext, graphqlContext, wsContext, rpcContext].map((reader) => [reader.type, reader]),
);

/**
 * The reader of each context type in `types` (default: all of them), for one application:
 * `httpApp` gives its Express application (see {@link wsReader}), read on every WebSocket call.
 */
export function contextReaders(
  types: readonly RateLimitContextType[] = RATE_LIMIT_CONTEXT_TYPES,
  httpApp: () => unknown = () => undefined,
): Map<string, ContextReader> {
  return new Map(
    types.map((type) => [type, type === 'ws' ? wsReader(httpApp) : READERS.get(type)!]),
  );
}

/** The reader for `context`, or `undefined` for a context type this package does not know. */
export function readerOf(context: ExecutionContext): ContextReader | undefined {
  const type = context.getType();
  return type === 'http' ? httpContext : READERS.get(type);
}

/**
 * What the built-in resolvers read the caller from in any context: the HTTP request (HTTP,
 * GraphQL), a WebSocket client's handshake, or `undefined` (RPC, or a context without a caller).
 * Use it in your own `AuthResolver` to read headers the same way in every transport, where
 * `context.switchToHttp()` only works over HTTP.
 *
 * @example
 * resolve(context: ExecutionContext): Identity {
 *   const key = callerRequestOf(context)?.headers['x-api-key'];
 *   if (typeof key !== 'string') throw new EmptyInformation('No API key');
 *   return { user: `key:${key}` };
 * }
 */
export function callerRequestOf(context: ExecutionContext): CallerRequest | undefined {
  return readerOf(context)?.caller(context);
}
