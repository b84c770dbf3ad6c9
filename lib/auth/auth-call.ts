/**
 * True when a helper that doubles as an auth function (`clientIp`, `fromSession`) is being called
 * as one, `(request, context)`, rather than with its options. An options object never has
 * `headers` and never comes with a second argument; a request always has headers, and the module
 * always passes the `ExecutionContext` (which also covers a transport whose "request" is a client
 * socket or a message without headers).
 */
export function isAuthCall(first: unknown, second: unknown): boolean {
  return (
    (typeof first === 'object' && first !== null && 'headers' in first) ||
    (typeof second === 'object' &&
      second !== null &&
      typeof (second as { getType?: unknown }).getType === 'function')
  );
}
