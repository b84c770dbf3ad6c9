/**
 * The start-up report of a Redis backend: whether its client's first connection succeeds, told
 * once, from ioredis's documented events (`ready`, `error`, a Cluster's `node error`) and `status`.
 *
 * @module
 */
import { errorText } from '../../internal/error-text.js';
import type { RedisClientLike } from './redis-client.js';

/** What {@link watchFirstConnection} tells. */
export interface FirstConnectionHandlers {
  /** The first connection failed: `problem` is the error, or what was seen instead. Called once. */
  failed(problem: string): void;
  /** The client became ready after {@link failed} was called. Called at most once. */
  recovered(): void;
}

/**
 * Watches `client` until its first connection is ready, and calls `handlers.failed` once if it
 * fails first: with the error of an `error` event (a refused or timed-out connection, a wrong
 * password), the node address and error of a Cluster's `node error` event, or, when `timeoutMs`
 * pass without either, the status the client is stuck in (a server that accepts the connection but
 * never answers). Once the client is ready after a failure, `handlers.recovered` is called.
 *
 * The `error` listener is removed as soon as the first failure is told, so ioredis's own handling
 * of errors on a client passed in (it prints them when nothing else listens) is back from then on.
 *
 * @returns a function that stops watching (removes the listeners and the timer)
 */
export function watchFirstConnection(
  client: RedisClientLike,
  timeoutMs: number,
  handlers: FirstConnectionHandlers,
): () => void {
  if (client.status === 'ready') return () => undefined;
  if (client.status === 'end') {
    handlers.failed("the ioredis client is closed (status 'end'): pass a client that is open");
    return () => undefined;
  }
  let reported = false;
  const onError = (error: unknown): void => report(errorText(error));
  const onNodeError = (error: unknown, address: unknown): void =>
    report(`node ${String(address)}: ${errorText(error)}`);
  const stopErrors = (): void => {
    clearTimeout(timer);
    client.removeListener('error', onError);
    client.removeListener('node error', onNodeError);
  };
  const onReady = (): void => {
    stop();
    if (reported) handlers.recovered();
  };
  const stop = (): void => {
    stopErrors();
    client.removeListener('ready', onReady);
  };
  const report = (problem: string): void => {
    if (reported) return;
    reported = true;
    stopErrors();
    handlers.failed(problem);
  };
  const timer = setTimeout(
    () => report(`not ready ${timeoutMs} ms after start-up (status '${client.status}')`),
    timeoutMs,
  );
  timer.unref();
  client.on('ready', onReady);
  client.on('error', onError);
  client.on('node error', onNodeError);
  return stop;
}
