import { HttpStatus, IntrinsicException } from '@nestjs/common';
import { withoutStackTrace } from '../../internal/without-stack-trace.js';
import { overLimitMessage } from '../../rate-limit.exception.js';
import type { ContextRejections } from './context-edge.js';

/**
 * What a rejected GraphQL resolver call throws. graphql-js wraps whatever a resolver throws in a
 * `GraphQLError` with the thrown error's `message` and `extensions` (a `GraphQLError` takes its
 * original error's extensions), so both drivers answer with
 * `{ message, path, extensions: { code, retryAfter } }` in `errors`. It is an
 * `IntrinsicException`, which Nest's exception handler for resolvers does not log: a rejection is
 * the limiter at work, not a fault of the application, where a `GraphQLError` thrown from the
 * guard would be logged as an error on every rejection.
 */
export class GraphqlRejection extends IntrinsicException {
  constructor(
    message: string,
    /** The `extensions` of the GraphQL error the client receives. */
    readonly extensions: Readonly<Record<string, unknown>>,
  ) {
    super(message);
    this.name = 'GraphqlRejection';
  }
}

/** `extensions.code` of a GraphQL error for the HTTP status it stands for. */
const GRAPHQL_CODES: Readonly<Record<number, string>> = {
  [HttpStatus.BAD_REQUEST]: 'BAD_REQUEST',
  [HttpStatus.UNAUTHORIZED]: 'UNAUTHENTICATED',
  [HttpStatus.FORBIDDEN]: 'FORBIDDEN',
  [HttpStatus.TOO_MANY_REQUESTS]: 'TOO_MANY_REQUESTS',
  [HttpStatus.SERVICE_UNAVAILABLE]: 'SERVICE_UNAVAILABLE',
};

/** An object `onBlocked` returned whose entries become extensions (not an array or a Buffer). */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value)
  );
}

/**
 * GraphQL's rejections. Neither captures a stack trace: it would only show the guard's frames,
 * and Apollo sends it to clients outside production (`extensions.stacktrace`).
 */
export const graphqlRejections: ContextRejections = {
  overLimit: (info, custom) => {
    const message = typeof custom === 'string' ? custom : overLimitMessage(info.retryAfter);
    // `code` and `retryAfter` are what clients act on: what onBlocked adds cannot replace them.
    const extensions = {
      ...(isPlainObject(custom) ? custom : {}),
      code: 'TOO_MANY_REQUESTS',
      retryAfter: info.retryAfter,
    };
    return withoutStackTrace(() => new GraphqlRejection(message, extensions));
  },
  identityFailure: (error) => {
    const status = error.getStatus();
    const code = GRAPHQL_CODES[status] ?? (status >= 500 ? 'INTERNAL_SERVER_ERROR' : 'BAD_REQUEST');
    return withoutStackTrace(
      () => new GraphqlRejection(error.message, { code, statusCode: status }),
    );
  },
};
