import type { ExecutionContext, HttpException } from '@nestjs/common';
import type { RateLimitInfo } from '../../rate-limit.info.js';
import type { RateLimitContextType } from '../context-type.js';

/**
 * What identity resolvers read the caller from, whatever the transport: the HTTP request itself
 * (Express's and Fastify's requests both fit), the HTTP request behind a GraphQL call, or a view
 * of a WebSocket client's handshake.
 */
export interface CallerRequest {
  /** The client address as the HTTP framework computed it from its own trust-proxy setting. */
  readonly ip?: string;
  /** The TCP connection; `remoteAddress` is the peer, which may be a proxy. */
  readonly socket?: { readonly remoteAddress?: string } | null;
  /** The request (or handshake) headers, lower-case names. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Express's application (its `trust proxy` setting), when the request is Express's. */
  readonly app?: unknown;
  /** The session the session middleware or plugin attached, if any. */
  readonly session?: unknown;
  /** socket.io's handshake `auth` payload, where a client may send `{ token }`. */
  readonly auth?: unknown;
}

/**
 * How the module reads one kind of call. Every read of a request, a client socket or a message
 * happens in one of these (and in the HTTP platforms), nowhere else in the package.
 */
export interface ContextReader {
  readonly type: RateLimitContextType;
  /**
   * What `authenticate(request, context)` receives: the HTTP request for HTTP and GraphQL (for a
   * GraphQL subscription, a {@link CallerRequest} of its connection), the client socket for
   * WebSocket, the message payload for RPC.
   */
  authRequest(context: ExecutionContext): unknown;
  /** The HTTP request behind the call (HTTP, GraphQL over HTTP), or `undefined`. */
  httpRequest(context: ExecutionContext): object | undefined;
  /** The HTTP response (or Fastify reply) behind the call, or `undefined`. */
  httpResponse(context: ExecutionContext): object | undefined;
  /** What the built-in resolvers read the caller from; `undefined` where there is none (RPC). */
  caller(context: ExecutionContext): CallerRequest | undefined;
}

/** How a transport other than HTTP turns a rejection into what the caller receives. */
export interface ContextRejections {
  /**
   * The error thrown for an over-limit call. `custom` is what `onBlocked` returned: a string is
   * the message, an object the payload (GraphQL: extra `extensions`); `undefined` the default.
   */
  overLimit(info: RateLimitInfo, custom: unknown): Error;
  /** The error thrown when the caller could not be identified (an HTTP exception, e.g. a 401). */
  identityFailure(error: HttpException): Error;
}
