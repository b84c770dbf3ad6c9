/**
 * One HTTP adapter's requests and responses, as the module reads and writes them. Express and
 * Fastify are the two implementations; an adapter Nest does not ship gets one written against
 * Nest's documented `AbstractHttpAdapter` calls. The guard, the service and the filter only ever
 * go through this, so a new adapter is one small file.
 */
export interface HttpPlatform {
  /** The adapter's name, as `HttpAdapterHost.httpAdapter.getType()` reports it. */
  readonly name: string;
  /** The request target as received, path and query (before any router rewrote it). */
  target(request: object): string;
  /** The request method, as the client sent it. */
  method(request: object): string | undefined;
  /** Sets one response header. */
  setHeader(response: object, name: string, value: string): void;
  /** True when the response has been sent (or is being sent), e.g. by `onBlocked` itself. */
  isSent(response: object): boolean;
  /**
   * Sends a whole response: the status, `Content-Type` unless one is already set, the body. The
   * headers set before (`Retry-After`, the rate-limit fields) are kept.
   */
  send(response: object, status: number, body: string | Buffer, contentType: string): void;
  /**
   * Calls `listener` once with the response's status when the response is finished, or when the
   * connection closed before (with the status set so far). For `count: 'failures'` rules.
   */
  onFinished(response: object, listener: (status: number) => void): void;
}
