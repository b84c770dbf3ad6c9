import type { ExecutionContext } from '@nestjs/common';
import type { CallerRequest, ContextReader } from './context-edge.js';
import {
  graphqlWsCaller,
  isGraphqlWsContext,
  mercuriusSubscriberCaller,
} from './graphql-subscribers.js';

/**
 * The GraphQL context as the drivers build it by default, and as users commonly extend it:
 * Apollo on Express `{ req }` (Express's `req.res` is the response), Apollo on Fastify
 * `{ req }` (Fastify's request), Mercurius `{ req, reply }` with `reply.request`. Over WebSocket:
 * Apollo's graphql-ws puts its connection context in `req`; Mercurius passes `{ request, reply }`
 * where `reply` only pretends to be Fastify's (its documented `reply.request` is the upgrade
 * request).
 */
interface GraphqlContextValue {
  readonly req?: object & { readonly res?: object };
  readonly res?: object;
  readonly request?: object;
  readonly reply?: object & { readonly request?: object };
}

/** How one GraphQL operation reached the server, read once per context value. */
interface GraphqlCall {
  /** The HTTP request of an operation over HTTP; `undefined` over WebSocket. */
  readonly httpRequest: object | undefined;
  /** Where `Retry-After` goes: the HTTP response or Fastify reply; `undefined` over WebSocket. */
  readonly httpResponse: object | undefined;
  /** What `authenticate(request, context)` receives: the HTTP request, or the caller over WebSocket. */
  readonly authRequest: unknown;
  /** The caller: the HTTP request, or the WebSocket connection's upgrade request. */
  readonly caller: CallerRequest | undefined;
}

const NO_CALL: GraphqlCall = Object.freeze({
  httpRequest: undefined,
  httpResponse: undefined,
  authRequest: undefined,
  caller: undefined,
});

/**
 * The calls already read, per context value: the drivers build one context value per operation
 * (per HTTP request, or per subscription), shared by every resolver call of it.
 */
const calls = new WeakMap<object, GraphqlCall>();

/** A resolver call: Nest passes graphql-js's `(root, args, context, info)`; the context is 2. */
function callOf(context: ExecutionContext): GraphqlCall {
  const value = context.getArgByIndex<unknown>(2);
  if (typeof value !== 'object' || value === null) return NO_CALL;
  let call = calls.get(value);
  if (call === undefined) {
    call = readCall(value as GraphqlContextValue);
    calls.set(value, call);
  }
  return call;
}

function readCall(value: GraphqlContextValue): GraphqlCall {
  const { req, res, request, reply } = value;
  // Apollo over WebSocket (graphql-ws): no HTTP exchange is left to answer on.
  if (isGraphqlWsContext(req)) return overWebSocket(graphqlWsCaller(req));
  const httpRequest = req ?? request ?? reply?.request;
  // Mercurius over WebSocket: its stand-in reply has none of Fastify's reply methods, and its
  // documented `reply.request` is the upgrade request.
  if (reply !== undefined && !isReply(reply) && res === undefined && req?.res === undefined) {
    const upgrade = reply.request ?? httpRequest;
    return overWebSocket(upgrade === undefined ? undefined : mercuriusSubscriberCaller(upgrade));
  }
  return {
    httpRequest,
    httpResponse: res ?? req?.res ?? reply,
    authRequest: httpRequest,
    caller: callerOf(httpRequest),
  };
}

/** An operation over WebSocket: no HTTP request to match the table on or answer on. */
function overWebSocket(caller: CallerRequest | undefined): GraphqlCall {
  return { httpRequest: undefined, httpResponse: undefined, authRequest: caller, caller };
}

/** Fastify's reply, told by its documented `raw` (Node's response) and `header()`. */
function isReply(reply: object): boolean {
  const { raw, header } = reply as { raw?: unknown; header?: unknown };
  return typeof raw === 'object' && raw !== null && typeof header === 'function';
}

/** An HTTP request (Express's, Fastify's or Node's) as the resolvers read it. */
function callerOf(request: object | undefined): CallerRequest | undefined {
  const headers = (request as { headers?: unknown } | undefined)?.headers;
  return typeof headers === 'object' && headers !== null ? (request as CallerRequest) : undefined;
}

/**
 * A GraphQL resolver call (`@nestjs/graphql`, Apollo or Mercurius), over HTTP or, for
 * subscriptions, over WebSocket. Over HTTP the table matches the HTTP request's path and
 * `Retry-After` goes on its response; over WebSocket there is neither (only decorators apply),
 * and the caller is the connection: its upgrade request, with the `connection_init` payload read
 * as headers.
 */
export const graphqlContext: ContextReader = {
  type: 'graphql',
  authRequest: (context) => callOf(context).authRequest,
  httpRequest: (context) => callOf(context).httpRequest,
  httpResponse: (context) => callOf(context).httpResponse,
  caller: (context) => callOf(context).caller,
};
