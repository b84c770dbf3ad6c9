import type { ExecutionContext } from '@nestjs/common';
import type { CallerRequest } from '../http/contexts/context-edge.js';
import { callerRequestOf } from '../http/contexts/context-readers.js';
import { EmptyInformation } from './empty-information.js';

/**
 * What a built-in resolver reads the caller of `context` from: the HTTP request (HTTP, GraphQL)
 * or the WebSocket handshake.
 * @throws EmptyInformation in a context without one (a microservice message), saying what to use
 */
export function callerFor(context: ExecutionContext, resolver: string): CallerRequest {
  const caller = callerRequestOf(context);
  if (caller !== undefined) return caller;
  const type = context.getType();
  throw new EmptyInformation(
    type === 'rpc'
      ? `${resolver} cannot identify a microservice message: it has no client address, headers or ` +
          'session. Pass your own AuthResolver as authenticate, reading the message or its context.'
      : `${resolver} found no request to identify the caller of this ${type} call by.`,
  );
}
