/**
 * Who owns a Redis backend's connection: a client the user passed in (used as given, never
 * closed), or one the backend creates from a URL or options, owns and closes. Also the start-up
 * report and the wait for the first connection, so that requests are decided from the first one.
 *
 * @module
 */
import { Logger } from '@nestjs/common';
import { describeValue, type FailOption } from '../../config-validation.js';
import { watchFirstConnection } from './first-connection.js';
import { describeClient, describeSource } from './redis-address.js';
import {
  createOwnClient,
  OWN_CLIENT_CONNECT_TIMEOUT_MS,
  type RedisClientLike,
  type RedisConnectionOptions,
} from './redis-client.js';

/**
 * How long after start-up a client may still be without a ready connection, and no error, before
 * the start-up report says so: longer than the own client's connect timeout (1 s), after which a
 * refused or unroutable address has already reported its error.
 */
const STARTUP_READY_TIMEOUT_MS = 2_000;

/** Statuses in which a client is still making its first connection. */
const CONNECTING = new Set(['wait', 'connecting', 'connect']);

/** Clients already warned about their offline queue: one warning per client, not per backend. */
const warnedClients = new WeakSet<object>();

/**
 * Longest `close()` waits for the server's reply to `QUIT` before it drops the connection: a server
 * that stopped answering while the TCP connection stays open (a hung process, a partition, a
 * proxy that lost its upstream) never replies, and shutdown must not wait for it.
 */
const QUIT_TIMEOUT_MS = 500;

/** Longest `close()` waits for the client to end after `QUIT` or a disconnect. */
const CLOSE_TIMEOUT_MS = 1_000;

/** Resolves whether `promise` settled within `timeoutMs` (an unref'd timer); never rejects. */
function settlesWithin(promise: Promise<unknown>, timeoutMs: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    timer.unref();
    const settled = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    promise.then(settled, settled);
  });
}

/** Resolves on the first of `events`, or after `timeoutMs` (an unref'd timer), whichever is first. */
function waitForEvent(
  client: RedisClientLike,
  events: readonly string[],
  timeoutMs: number,
): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      for (const event of events) client.removeListener(event, done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    timer.unref();
    for (const event of events) client.on(event, done);
  });
}

/** An ioredis client: `defineCommand` is ioredis's own, `call` what the backends send with. */
function isClient(value: unknown): value is RedisClientLike {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof Reflect.get(value, 'defineCommand') === 'function' &&
    typeof Reflect.get(value, 'call') === 'function'
  );
}

/** An ioredis `Cluster`: `nodes()` is its documented method, which a single-node `Redis` lacks. */
function hasClusterNodes(client: RedisClientLike): boolean {
  return typeof Reflect.get(client, 'nodes') === 'function';
}

/** Something with client-like methods but no `defineCommand` (node-redis, a wrapper...). */
function looksLikeOtherClient(value: object): boolean {
  return ['sendCommand', 'quit', 'on', 'call'].some(
    (method) => typeof Reflect.get(value, method) === 'function',
  );
}

/** The client of one Redis backend, given or owned. */
export class RedisConnection {
  /** Where the client connects, without a password. */
  readonly address: string;
  /** True for an ioredis `Cluster` (always one the user passed in: own clients are single-node). */
  readonly clustered: boolean;
  /** True when the backend created the client, so {@link close} may quit it. */
  private readonly ownsClient: boolean;
  /** Set once the client is known (at once for a given client, after creation for an own one). */
  private current: RedisClientLike | undefined;
  private readonly clientPromise: Promise<RedisClientLike>;
  /** The wait for the client's first connection; settled once, then requests never wait. */
  private firstConnection: Promise<void> | undefined;
  private firstConnectionDone = false;
  /** Stops the start-up report; set once it started (see {@link reportStartup}). */
  private stopStartupReport: (() => void) | undefined;
  private closed = false;

  /**
   * @param owner the backend's class name, for messages
   * @param source an ioredis `Redis` or `Cluster`, or a URL / options to create one from
   * @param fail reports an invalid `client` argument
   * @throws RateLimitConfigError (through `fail`) when `source` is none of those
   */
  constructor(
    private readonly owner: string,
    source: unknown,
    fail: FailOption,
  ) {
    if (isClient(source)) {
      this.ownsClient = false;
      this.clustered = hasClusterNodes(source);
      this.address = describeClient(source);
      this.current = source;
      this.clientPromise = Promise.resolve(source);
      this.warnAboutOfflineQueue(source);
    } else if (
      (typeof source === 'string' && source.trim() !== '') ||
      (typeof source === 'object' &&
        source !== null &&
        !Array.isArray(source) &&
        !looksLikeOtherClient(source))
    ) {
      this.ownsClient = true;
      this.clustered = false;
      this.address = describeSource(source as string | RedisConnectionOptions);
      this.clientPromise = createOwnClient(owner, source as string | RedisConnectionOptions).then(
        (created) => {
          this.current = created;
          if (this.closed) created.disconnect(); // close() ran while it was being created
          return created;
        },
      );
      // Reported by the first call that needs the client, not as an unhandled rejection.
      this.clientPromise.catch(() => undefined);
    } else {
      fail(
        'client',
        `expected an ioredis Redis or Cluster instance, a connection URL such as ` +
          `'redis://localhost:6379', or ioredis connection options; got ` +
          `${typeof source === 'object' && source !== null ? 'an object without defineCommand() (only ioredis clients are supported)' : describeValue(source)}.`,
      );
    }
  }

  /** The client: the one passed in, or the backend's own once created. */
  client(): Promise<RedisClientLike> {
    return this.clientPromise;
  }

  /**
   * The client when commands can be sent without waiting: it exists and its first connection
   * settled (the usual case); else undefined, and {@link whenReady} waits for it.
   */
  ready(): RedisClientLike | undefined {
    return this.firstConnectionDone ? this.current : undefined;
  }

  /** The client once it exists and its first connection settled (made, failed or timed out). */
  async whenReady(): Promise<RedisClientLike> {
    const client = this.current ?? (await this.clientPromise);
    if (!this.firstConnectionDone) await this.waitForFirstConnection(client);
    return client;
  }

  /**
   * Starts the start-up report (once): one warning naming `described` and the error when the
   * first connection fails, then, once, a line when it connects after all; and waits for that
   * first connection, at most 1 s. See `RedisBackend.onApplicationBootstrap`.
   */
  async reportStartup(described: () => string): Promise<void> {
    if (this.stopStartupReport !== undefined || this.closed) return;
    this.stopStartupReport = () => undefined;
    const client = await this.clientPromise;
    if (this.closed) return;
    const logger = new Logger('RateLimit');
    // Watch first, then connect (waitForFirstConnection starts a lazyConnect client), so that no
    // event of the first attempt is missed.
    this.stopStartupReport = watchFirstConnection(client, STARTUP_READY_TIMEOUT_MS, {
      failed: (problem) =>
        logger.warn(
          `The rate-limit backend ${described()} cannot reach Redis at start-up ` +
            `(${problem}); requests follow the failure policy until it is reachable.`,
        ),
      recovered: () => logger.log(`The rate-limit backend ${described()} has connected to Redis.`),
    });
    // The application starts taking requests once the first connection is made (or has failed,
    // or 1 s passed), not while it is being made: a burst of requests at start-up would otherwise
    // keep the event loop too busy to finish the handshake in time, and every request of that
    // burst would follow the failure policy.
    await this.waitForFirstConnection(client);
  }

  /**
   * Closes the client the backend created itself: `QUIT` when connected, so pending replies
   * arrive first, but waiting at most 500 ms for the server's answer, then dropping the
   * connection. A client passed in is left untouched. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopStartupReport?.();
    if (!this.ownsClient) return;
    let client: RedisClientLike;
    try {
      client = await this.clientPromise;
    } catch {
      return; // never created
    }
    if (client.status === 'end') return;
    if (client.status === 'ready') {
      // Resolves on the server's OK (the socket closes just after), rejects when the connection
      // drops first; either way it settles, or the disconnect below ends it.
      await settlesWithin(client.quit(), QUIT_TIMEOUT_MS);
    }
    if (client.status === 'reconnecting') {
      // Between two attempts there is no socket: disconnect() only cancels the next attempt, and
      // ioredis emits no 'end' then, so waiting for one would only delay shutdown by a second.
      client.disconnect();
    } else if (client.status !== 'end') {
      const ended = waitForEvent(client, ['end'], CLOSE_TIMEOUT_MS);
      if (client.status !== 'close') client.disconnect();
      await ended;
    }
  }

  /**
   * Before its first connection is made, a client without an offline queue rejects every
   * command; wait for that first connection (bounded) so the first requests after start-up are
   * decided rather than failed. Once it settled, requests never wait here again: while Redis is
   * down, commands fail at once and the failure policy decides.
   */
  private waitForFirstConnection(client: RedisClientLike): Promise<void> {
    if (this.firstConnection !== undefined) return this.firstConnection;
    if (client.status === 'wait' && client.connect !== undefined) {
      client.connect().catch(() => undefined); // lazyConnect: the error surfaces as an event
    }
    if (!CONNECTING.has(client.status)) {
      this.firstConnectionDone = true;
      return Promise.resolve();
    }
    this.firstConnection = waitForEvent(
      client,
      ['ready', 'error', 'close', 'end'],
      OWN_CLIENT_CONNECT_TIMEOUT_MS,
    ).then(() => {
      this.firstConnectionDone = true;
    });
    return this.firstConnection;
  }

  private warnAboutOfflineQueue(client: RedisClientLike): void {
    if (client.options?.enableOfflineQueue !== true || warnedClients.has(client)) return;
    warnedClients.add(client);
    new Logger('RateLimit').warn(
      `${this.owner}: the ioredis client passed in has enableOfflineQueue on. While Redis is ` +
        'unreachable, ioredis then queues every rate-limit check: requests wait instead of ' +
        'being decided by the failure policy, and the queued increments run late when Redis ' +
        'returns, counting requests that were answered long before. Create the client with ' +
        '{ enableOfflineQueue: false, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: ' +
        'false } (for a Cluster: enableOfflineQueue: false at the top level, the other two in ' +
        'redisOptions), or pass a connection URL or options and let the backend create and ' +
        'own a client configured that way.',
    );
  }
}
