import { Logger, type ExecutionContext } from '@nestjs/common';
import type { CallerRequest } from '../http/contexts/context-edge.js';
import { callerRequestOf } from '../http/contexts/context-readers.js';
import { EmptyInformation } from './empty-information.js';

/** What a `@nestjs/platform-ws` application adds so that its clients can be identified. */
const TRACK_WS_CLIENTS =
  "app.useWebSocketAdapter(trackWsClients(new WsAdapter(app))) in main.ts (trackWsClients from 'nestjs-ratelimit')";

/** Set once the set-up hint for untracked `ws` clients has been logged. */
let warnedUntrackedWs = false;

/**
 * What a built-in resolver reads the caller of `context` from: the HTTP request (HTTP, GraphQL)
 * or the WebSocket handshake.
 * @throws EmptyInformation in a context without one (a microservice message, a `ws` client the
 *   adapter was not wrapped for), saying what to use
 */
export function callerFor(context: ExecutionContext, resolver: string): CallerRequest {
  const caller = callerRequestOf(context);
  if (caller !== undefined) return caller;
  const type = context.getType();
  if (type === 'ws') {
    const message =
      `${resolver} cannot see this WebSocket client's handshake: a client of @nestjs/platform-ws ` +
      `(the ws package) has no public address or headers. Wrap the adapter: ${TRACK_WS_CLIENTS}.`;
    // The message goes to the client as the 401; the developer needs to read it too, once.
    if (!warnedUntrackedWs) {
      warnedUntrackedWs = true;
      new Logger('RateLimit').warn(
        `${message} Until then its messages cannot be identified (a 401). Logged once.`,
      );
    }
    throw new EmptyInformation(message);
  }
  throw new EmptyInformation(
    type === 'rpc'
      ? `${resolver} cannot identify a microservice message: it has no client address, headers or ` +
          'session. Pass your own AuthResolver as authenticate, reading the message or its context.'
      : `${resolver} found no request to identify the caller of this ${type} call by.`,
  );
}
