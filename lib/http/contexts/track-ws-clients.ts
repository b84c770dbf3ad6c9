import type { WebSocketAdapter } from '@nestjs/common';
import { rememberUpgrade } from './ws.context.js';
import { isWsRejectionPayload } from './ws-rejections.js';

/** The documented parts of a `ws` WebSocket the wrapper uses. */
interface NativeWebSocket {
  readonly readyState: number;
  on(event: string, listener: (payload: unknown) => void): unknown;
  send(data: string): void;
}

/** `WebSocket.OPEN` of the WebSocket standard (and of the `ws` package). */
const OPEN = 1;

function isNativeWebSocket(client: object): client is NativeWebSocket {
  const socket = client as Partial<Record<keyof NativeWebSocket, unknown>>;
  return (
    typeof socket.readyState === 'number' &&
    typeof socket.on === 'function' &&
    typeof socket.send === 'function'
  );
}

/**
 * Sends this package's rejections to a `ws` client on Nest 11, as Nest 12 does itself. Nest 11's
 * `BaseWsExceptionFilter` "sends" a `WsException` with `client.emit('exception', error)`, which on
 * a `ws` WebSocket (an `EventEmitter`) only raises a local event, so the client never hears of it;
 * Nest 12 sends `{ event: 'exception', data: error }` over the wire instead and raises no local
 * event, so this listener never fires there. The application's own exceptions are left as Nest
 * handles them.
 */
function deliverRejections(client: NativeWebSocket): void {
  client.on('exception', (payload) => {
    if (!isWsRejectionPayload(payload) || client.readyState !== OPEN) return;
    client.send(JSON.stringify({ event: 'exception', data: payload }));
  });
}

/**
 * Lets the rate limiter identify the clients of `@nestjs/platform-ws` gateways: by address
 * (`IpAuthResolver`, the default) and by the handshake's headers (`JwtAuthResolver`). Wrap the
 * adapter where `main.ts` installs it:
 *
 * ```ts
 * app.useWebSocketAdapter(trackWsClients(new WsAdapter(app)));
 * ```
 *
 * Why it is needed: a `ws` WebSocket has no public field for the client's address or its
 * handshake; the `ws` package hands them out once, as the upgrade request of the server's
 * `connection` event. Nest creates the servers inside the adapter while the application starts,
 * before any module could listen, so the adapter is where that event can be seen. The wrapper
 * remembers each client's upgrade request (headers and peer address, until the client is
 * garbage-collected) and otherwise behaves exactly as the adapter it wraps. On Nest 11 it also
 * delivers the rate limiter's rejections to `ws` clients, which Nest 11 itself does not send.
 * socket.io clients need nothing: their handshake is public (`socket.handshake`); wrapping
 * `IoAdapter` is harmless.
 *
 * @param adapter the WebSocket adapter the application would use (any adapter whose server emits
 *   `connection` with `(client, request)`, as `WsAdapter`'s does)
 * @returns the same adapter, seen through a proxy that records each connection first
 */
export function trackWsClients<T extends WebSocketAdapter>(adapter: T): T {
  const bindClientConnect: WebSocketAdapter['bindClientConnect'] = (server, callback) =>
    adapter.bindClientConnect(server, (client: unknown, request: unknown, ...rest: unknown[]) => {
      if (rememberUpgrade(client, request) && isNativeWebSocket(client)) {
        deliverRejections(client);
      }
      return (callback as (...args: unknown[]) => unknown)(client, request, ...rest);
    });
  return new Proxy(adapter, {
    get(target, key) {
      if (key === 'bindClientConnect') return bindClientConnect;
      const value: unknown = Reflect.get(target, key, target);
      // The adapter's own methods run on the adapter itself, never on the proxy, so they see
      // their fields exactly as without the wrapper.
      return typeof value === 'function' && key !== 'constructor'
        ? (value as () => unknown).bind(target)
        : value;
    },
    set(target, key, value) {
      return Reflect.set(target, key, value, target);
    },
  });
}
