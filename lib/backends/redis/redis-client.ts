/**
 * The slice of an ioredis client the Redis backends use, as a structural type, so that the
 * package's type declarations never import `ioredis` (an optional peer dependency: applications
 * on the memory backend do not install it). Both `Redis` and `Cluster` from ioredis satisfy it.
 *
 * @module
 */
import { describeValue, optionFailure, type FailOption } from '../../config-validation.js';
import { errorText } from '../../internal/error-text.js';
import { describeSource } from './redis-address.js';

/**
 * An ioredis `Redis` or `Cluster` instance, as far as the Redis backends are concerned. Pass the
 * real client; this type only exists so the declarations do not depend on ioredis.
 */
export interface RedisClientLike {
  /** The connection state: `'ready'` when commands can be sent, `'end'` once closed for good. */
  readonly status: string;
  /**
   * The client's options; `enableOfflineQueue` is read to warn about it, `host`, `port` and
   * `path` to name the server in log lines.
   */
  readonly options?:
    | {
        readonly enableOfflineQueue?: boolean | undefined;
        readonly host?: string | undefined;
        readonly port?: number | undefined;
        readonly path?: string | null | undefined;
      }
    | undefined;
  /**
   * Sends one command with its arguments (ioredis's generic `call(command, args)`); the backends
   * send their scripts with it (`EVALSHA`, and `EVAL` after `NOSCRIPT`).
   */
  call(command: string, args: (string | number)[]): Promise<unknown>;
  /** ioredis's own way to register a script; only its presence is checked, to tell ioredis apart. */
  defineCommand(name: string, definition: { lua: string }): void;
  /** Connects a client created with `lazyConnect`. */
  connect?(): Promise<void>;
  /** Closes gracefully, after pending replies. */
  quit(): Promise<unknown>;
  /** Closes at once. */
  disconnect(): void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  removeListener(event: string, listener: (...args: unknown[]) => void): unknown;
}

/**
 * Connection options for a client the backend creates itself: ioredis `RedisOptions` (see the
 * ioredis documentation; any of its options is passed through). The backend always sets
 * `enableOfflineQueue: false`, `maxRetriesPerRequest: 0` and `autoResendUnfulfilledCommands:
 * false`, and defaults `connectTimeout` to 1000 ms, `disconnectTimeout` to 500 ms,
 * `retryStrategy` to "retry forever, at most every 500 ms". (No `enableAutoPipelining`: the
 * backend already sends the decisions of one event-loop iteration as one script call, and
 * ioredis's auto-pipelining on top of that only added garbage and latency, measured: 129,000
 * against 264,000 fixed-window decisions a second at 256 in flight.)
 */
export interface RedisConnectionOptions {
  readonly host?: string;
  readonly port?: number;
  readonly path?: string;
  readonly username?: string;
  readonly password?: string;
  readonly db?: number;
  readonly tls?: object;
  readonly family?: number;
  readonly connectionName?: string;
  readonly keyPrefix?: string;
  readonly connectTimeout?: number;
  /** How long a closed connection may stay half-open before its socket is destroyed, in ms. */
  readonly disconnectTimeout?: number;
  readonly commandTimeout?: number;
  readonly retryStrategy?: (times: number) => number | void | null;
  readonly lazyConnect?: boolean;
  readonly enableAutoPipelining?: boolean;
}

/** How long the client the backend creates waits for a TCP connection, in ms. */
export const OWN_CLIENT_CONNECT_TIMEOUT_MS = 1_000;

/**
 * How long the backend's own client lets a connection it closed stay half-open before destroying
 * the socket (ioredis's `disconnectTimeout`, 2 s by default), in ms: a server that does not answer
 * does not acknowledge the close either, and `close()` waits for the socket to be gone.
 */
export const OWN_CLIENT_DISCONNECT_TIMEOUT_MS = 500;

/** Longest pause between reconnection attempts of the backend's own client, in ms. */
export const OWN_CLIENT_MAX_RETRY_DELAY_MS = 500;

/**
 * Reconnects forever: 100 ms after the first failure, then 200, 300, 400, and every 500 ms from
 * then on, so limiting resumes within about half a second of Redis coming back.
 */
export function ownClientRetryDelay(times: number): number {
  return Math.min(Math.max(1, times) * 100, OWN_CLIENT_MAX_RETRY_DELAY_MS);
}

/**
 * Creates the backend's own ioredis client from a URL (`redis://...`, `rediss://...`) or
 * options, loading ioredis only now. Commands fail at once while Redis is unreachable (no offline
 * queue, no retries, no resending after a reconnect: an increment is never replayed), and the
 * client reconnects by itself. Its error events are swallowed by a listener: the backend reports a
 * failed first connection once, a failed command reports its own error, and the module's failure
 * policy decides what to do.
 *
 * @param owner the backend's class name, for messages
 * @throws Error when ioredis is not installed, saying how to install it
 * @throws RateLimitConfigError (`RATE_LIMIT_INVALID_OPTION`) when ioredis rejects `source`
 */
export async function createOwnClient(
  owner: string,
  source: string | RedisConnectionOptions,
): Promise<RedisClientLike> {
  let Redis: (typeof import('ioredis'))['Redis'];
  try {
    ({ Redis } = await import('ioredis'));
  } catch (error) {
    throw new Error(
      'The Redis rate-limit backends need the optional peer dependency "ioredis" (version 6) to ' +
        'create their own client: run `npm install ioredis`, or pass an ioredis client.',
      { cause: error },
    );
  }
  const given = typeof source === 'string' ? {} : source;
  const options = {
    connectTimeout: OWN_CLIENT_CONNECT_TIMEOUT_MS,
    disconnectTimeout: OWN_CLIENT_DISCONNECT_TIMEOUT_MS,
    retryStrategy: ownClientRetryDelay,
    ...given,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
  };
  let client: RedisClientLike;
  try {
    client = typeof source === 'string' ? new Redis(source, options) : new Redis(options);
  } catch (error) {
    const fail: FailOption = optionFailure(owner);
    fail(
      'client',
      `ioredis cannot connect to ${describeValue(describeSource(source))} ` +
        `(${errorText(error)}); pass a URL such as ` +
        `'redis://127.0.0.1:6379/0', ioredis options such as { host, port }, or an ioredis client.`,
    );
  }
  client.on('error', () => undefined);
  return client;
}
