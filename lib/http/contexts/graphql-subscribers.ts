import type { IncomingMessage } from 'node:http';
import type { CallerRequest } from './context-edge.js';

/**
 * Who is calling over a GraphQL WebSocket connection (subscriptions): the connection's HTTP
 * upgrade request (its peer address and headers) and the payload of the client's
 * `connection_init` message read as more headers, because a browser cannot set headers on a
 * WebSocket and sends e.g. `{ authorization: 'Bearer ...' }` there instead. Mercurius documents
 * that it copies the payload into the request's headers; Apollo's graphql-ws keeps it apart, so
 * the same is done here for it, and both drivers identify a subscriber alike.
 *
 * In both, the handshake's own headers win, names are read in lower case, only string values
 * count, and forwarding headers are never taken from the payload: a client must not be able to
 * claim another address.
 */

/** graphql-ws's server `Context` with its `ws` server (`graphql-ws/use/ws`), as documented. */
interface GraphqlWsContext {
  /** The payload of `connection_init`. */
  readonly connectionParams?: Readonly<Record<string, unknown>> | null;
  /** `request` is the HTTP upgrade request. */
  readonly extra: { readonly request: IncomingMessage };
}

/** Fastify's request, through its documented `raw` (Node's request), `headers` and `ip`. */
interface FastifyRequestLike {
  readonly raw: IncomingMessage;
  readonly headers: Readonly<Record<string, unknown>>;
  readonly ip?: string;
}

type Headers = CallerRequest['headers'];

/** Caller views, one per connection, built on its first operation (after `connection_init`). */
const callers = new WeakMap<object, CallerRequest>();

/** True for graphql-ws's connection context (Nest's Apollo driver passes it as the context's `req`). */
export function isGraphqlWsContext(value: unknown): value is GraphqlWsContext {
  if (typeof value !== 'object' || value === null || 'headers' in value) return false;
  const request = (value as { extra?: { request?: unknown } }).extra?.request;
  return (
    typeof request === 'object' &&
    request !== null &&
    typeof (request as { headers?: unknown }).headers === 'object'
  );
}

/** The caller of an operation on a graphql-ws connection (Apollo's subscriptions). */
export function graphqlWsCaller(context: GraphqlWsContext): CallerRequest {
  let caller = callers.get(context);
  if (caller === undefined) {
    const { request } = context.extra;
    const params = context.connectionParams;
    const nested = isRecord(params) ? params.headers : undefined;
    // Like Mercurius: the payload's `headers` object when it has one, else the payload itself.
    const payload = isRecord(nested) ? nested : isRecord(params) ? params : {};
    caller = {
      headers: withPayload(request.headers, Object.entries(payload)),
      socket: request.socket,
    };
    callers.set(context, caller);
  }
  return caller;
}

/**
 * The caller of a Mercurius subscription: its Fastify upgrade request, whose headers Mercurius has
 * extended with the `connection_init` payload. The handshake's own headers are told apart by
 * Node's `rawHeaders`, which keep what the client sent; Fastify's `ip` is kept unless the payload
 * added a forwarding header (Fastify reads those from the same headers object).
 */
export function mercuriusSubscriberCaller(request: object): CallerRequest | undefined {
  let caller = callers.get(request);
  if (caller !== undefined) return caller;
  const { raw, headers, ip } = request as FastifyRequestLike;
  if (!isRecord(headers) || typeof raw !== 'object' || raw === null) return undefined;
  const sent = new Set<string>();
  for (let i = 0; i < raw.rawHeaders.length; i += 2) sent.add(raw.rawHeaders[i].toLowerCase());
  const handshake: Record<string, string | string[] | undefined> = Object.create(null);
  const payload: [string, unknown][] = [];
  let forwardingAdded = false;
  for (const [name, value] of Object.entries(headers)) {
    if (sent.has(name)) {
      handshake[name] = value as string | string[] | undefined;
    } else {
      payload.push([name, value]);
      forwardingAdded ||= isForwarding(name.toLowerCase());
    }
  }
  caller = {
    headers: withPayload(handshake, payload),
    socket: raw.socket,
    ip: forwardingAdded ? undefined : ip,
  };
  callers.set(request, caller);
  return caller;
}

/** `headers` with the payload's string entries whose (lower-case) names the handshake lacks. */
function withPayload(headers: Headers, payload: readonly [string, unknown][]): Headers {
  let merged: Record<string, string | string[] | undefined> | undefined;
  for (const [key, value] of payload) {
    if (typeof value !== 'string') continue;
    const name = key.toLowerCase();
    if (isForwarding(name) || headers[name] !== undefined) continue;
    merged ??= Object.assign(Object.create(null) as Record<string, string>, headers);
    merged[name] = value;
  }
  return merged ?? headers;
}

/** Headers through which a proxy tells the client's address (or scheme, host). */
function isForwarding(name: string): boolean {
  return name.startsWith('x-forwarded-') || name === 'forwarded' || name === 'x-real-ip';
}

function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
