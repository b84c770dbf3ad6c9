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

/** What a client's upgrade request told: its headers and the peer that sent it. */
type Upgrade = Pick<CallerRequest, 'headers' | 'socket'>;

/** The parts of Node's `IncomingMessage` an upgrade is read from. */
interface UpgradeRequest {
  readonly headers: CallerRequest['headers'];
  readonly socket?: { readonly remoteAddress?: string } | null;
}

function isSocketIo(client: object): client is SocketIoClient {
  return typeof (client as { handshake?: unknown }).handshake === 'object';
}

function isUpgradeRequest(request: unknown): request is UpgradeRequest {
  return (
    typeof request === 'object' &&
    request !== null &&
    typeof (request as { headers?: unknown }).headers === 'object' &&
    (request as { headers?: unknown }).headers !== null
  );
}

/**
 * The upgrade requests of `ws` clients, as `trackWsClients` saw them connect. A `ws` WebSocket
 * has no public field for its address or its handshake's headers: the server's `connection`
 * event `(ws, request)` is the one place the package documents them, so they are kept from there.
 */
const upgrades = new WeakMap<object, Upgrade>();

/**
 * Records the upgrade request of a client that just connected (the arguments of the server's
 * `connection` event); true when it recorded it now, false when it already had. Anything else (a socket.io socket, which connects
 * without a request, or a custom adapter's own arguments) is ignored.
 */
export function rememberUpgrade(client: unknown, request: unknown): client is object {
  if (typeof client !== 'object' || client === null || !isUpgradeRequest(request)) return false;
  // Nest binds the connection once per gateway, and gateways on one path share a server.
  if (upgrades.has(client)) return false;
  // The address is read now, while the connection is open: Node no longer reports it once the
  // socket is gone, and the view then outlives nothing but the client.
  upgrades.set(client, {
    headers: request.headers,
    socket: { remoteAddress: request.socket?.remoteAddress },
  });
  return true;
}

/** The caller views, one per client: built on its first message, reused after. */
const callers = new WeakMap<object, CallerRequest>();

/**
 * The caller view of a client: socket.io's handshake, or the upgrade request `trackWsClients`
 * kept for a `ws` client; `undefined` for a `ws` client it did not see connect. `app` is the
 * Express application whose `trust proxy` setting the IP resolver follows for the handshake's
 * `X-Forwarded-For` (as it does for the application's HTTP requests).
 */
function callerOf(client: unknown, app: unknown): CallerRequest | undefined {
  if (typeof client !== 'object' || client === null) return undefined;
  let caller = callers.get(client);
  if (caller !== undefined) return caller;
  if (isSocketIo(client)) {
    const { headers, address, auth } = client.handshake;
    caller = { headers, socket: { remoteAddress: address }, auth, app };
  } else {
    const upgrade = upgrades.get(client);
    if (upgrade === undefined) return undefined;
    caller = { ...upgrade, app };
  }
  callers.set(client, caller);
  return caller;
}

/**
 * The reader of WebSocket messages to gateway handlers (`@SubscribeMessage`): the client is
 * argument 0 (the message data 1). `httpApp` gives the application's Express application, or
 * `undefined` on another HTTP adapter (whose trust-proxy setting is not readable: Fastify keeps
 * it to itself), where only the `trustProxy` option lets the handshake's forwarded headers count.
 */
export function wsReader(httpApp: () => unknown): ContextReader {
  return {
    type: 'ws',
    authRequest: (context: ExecutionContext) => {
      const client = context.getArgByIndex<unknown>(0);
      // The resolvers read the caller through the application-neutral `callerRequestOf`; building
      // the view here first, before `authenticate` runs, gives it this application's setting.
      callerOf(client, httpApp());
      return client;
    },
    httpRequest: () => undefined,
    httpResponse: () => undefined,
    caller: (context: ExecutionContext) => callerOf(context.getArgByIndex<unknown>(0), httpApp()),
  };
}

/** The WebSocket reader outside any application: no HTTP adapter's setting to follow. */
export const wsContext: ContextReader = wsReader(() => undefined);
