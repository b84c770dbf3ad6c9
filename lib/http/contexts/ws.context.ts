import type { ExecutionContext } from '@nestjs/common';
import type { CallerRequest, ContextReader } from './context-edge.js';

/** socket.io's `Socket`: its documented handshake. */
interface SocketIoClient {
  readonly handshake: {
    readonly headers: CallerRequest['headers'];
    readonly address?: string;
    readonly auth?: unknown;
  };
}

function isSocketIo(client: unknown): client is SocketIoClient {
  return (
    typeof client === 'object' &&
    client !== null &&
    typeof (client as { handshake?: unknown }).handshake === 'object'
  );
}

/** The caller views, one per client: built on its first message, reused after. */
const callers = new WeakMap<object, CallerRequest>();

function callerOf(context: ExecutionContext): CallerRequest | undefined {
  const client = context.getArgByIndex<unknown>(0);
  if (typeof client !== 'object' || client === null) return undefined;
  let caller = callers.get(client);
  if (caller === undefined) {
    if (!isSocketIo(client)) return undefined;
    const { headers, address, auth } = client.handshake;
    caller = { headers, socket: { remoteAddress: address }, auth };
    callers.set(client, caller);
  }
  return caller;
}

/** A WebSocket message to a gateway handler (`@SubscribeMessage`): the client is argument 0. */
export const wsContext: ContextReader = {
  type: 'ws',
  authRequest: (context) => context.getArgByIndex(0),
  httpRequest: () => undefined,
  httpResponse: () => undefined,
  caller: callerOf,
};
