import type { ExecutionContext } from '@nestjs/common';
import type { CallerRequest, ContextReader } from './context-edge.js';

/**
 * The GraphQL context as the drivers build it by default, and as users commonly extend it:
 * Apollo on Express `{ req, res }` (and `req.res`), Apollo on Fastify `{ request, reply }`,
 * Mercurius `{ reply }` with `reply.request` (Nest's Mercurius driver also adds `req`).
 */
interface GraphqlContextValue {
  readonly req?: object & { readonly res?: object };
  readonly res?: object;
  readonly request?: object;
  readonly reply?: object & { readonly request?: object };
}

/** A resolver call: Nest passes graphql-js's `(root, args, context, info)`; the context is 2. */
function contextValue(context: ExecutionContext): GraphqlContextValue | undefined {
  const value = context.getArgByIndex<unknown>(2);
  return typeof value === 'object' && value !== null ? (value as GraphqlContextValue) : undefined;
}

function requestOf(context: ExecutionContext): object | undefined {
  const value = contextValue(context);
  return value?.req ?? value?.request ?? value?.reply?.request;
}

/** A GraphQL resolver call (`@nestjs/graphql`, Apollo or Mercurius). */
export const graphqlContext: ContextReader = {
  type: 'graphql',
  authRequest: requestOf,
  httpRequest: requestOf,
  httpResponse: (context) => {
    const value = contextValue(context);
    return value?.res ?? value?.req?.res ?? value?.reply;
  },
  caller: (context) => requestOf(context) as CallerRequest | undefined,
};
