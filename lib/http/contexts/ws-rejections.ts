/**
 * The payloads of the `WsException`s this package throws, so that `trackWsClients` can tell them
 * from the application's own exceptions.
 */
const payloads = new WeakSet<object>();

/** Marks `payload` as the error of a rejection by this package; returns it. */
export function wsRejectionPayload<T extends object>(payload: T): T {
  payloads.add(payload);
  return payload;
}

/** True for the error of a `WsException` this package threw. */
export function isWsRejectionPayload(payload: unknown): payload is object {
  return typeof payload === 'object' && payload !== null && payloads.has(payload);
}
