/**
 * The subjects of the decisions/s micro-benchmark: this module's backends (one per algorithm, and
 * on Redis with its own client or one passed in), raw ioredis `INCR` (the bound) and the peers,
 * each behind one small interface so the harness adds the same (nothing) to every one.
 *
 * @module
 */
import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import { ThrottlerStorageService } from '@nestjs/throttler';
import { Redis } from 'ioredis';
import {
  MemoryBackend,
  RedisBackend,
  Rule,
  SlidingRedisBackend,
  type ConsumeQuery,
  type RateLimitAlgorithm,
  type RateLimitBackend,
} from 'nestjs-ratelimit';
import { RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible';
import {
  INCR_AUTO_PIPELINING_SUBJECT,
  INCR_SUBJECT,
  NEST_LAB_SUBJECT,
  REDIS_ALGORITHMS,
  redisSubject,
  RLF_REDIS_PLAIN_SUBJECT,
  RLF_REDIS_SUBJECT,
  SLIDING_REDIS_SUBJECT,
  type ClientOrigin,
} from './jobs.js';

/** Far above any sample's calls, so every decision is admitted (limit 1e8 per minute). */
export const LIMIT = 100_000_000;
export const WINDOW_SECONDS = 60;

/** The one-unit rule of every subject. */
const rule = new Rule({ minute: LIMIT });

export function userId(i: number): string {
  return `user-${i}`;
}

/**
 * One ConsumeQuery per key, built up front: the backend's cost, not the query's. No query names
 * an algorithm: each backend counts with its `algorithm` option, as for a rule without one.
 */
export function queries(keys: number): ConsumeQuery[] {
  return Array.from({ length: keys }, (_, i) => ({
    counter: { user: userId(i), scope: 'path:/hello', method: '*' },
    limits: rule.limits,
    blockMs: 0,
  }));
}

/** What one decision is, for a subject measured with calls in flight. */
export interface AsyncSubject {
  /** Decides (or counts) for key number `key`. */
  decide(key: number): Promise<unknown>;
  /** Rejections seen (should stay 0: every limit is far above the calls made). */
  rejected(): number;
  close(): Promise<void>;
}

/** Makes a fresh subject for `keys` keys. */
export type SubjectMaker = (keys: number) => Promise<AsyncSubject>;

/**
 * A backend that does not count `algorithm` would be measured counting something else: say so
 * instead (the row is then missing and its target a stated miss).
 */
export function requireAlgorithm(
  backend: RateLimitBackend,
  algorithm: RateLimitAlgorithm,
  how: 'default' | 'query',
): void {
  const counts =
    how === 'default' ? backend.algorithm === algorithm : backend.algorithms.includes(algorithm);
  if (!counts) {
    throw new Error(
      `${backend.describe()} does not count ${algorithm} (its algorithm: ${backend.algorithm}; ` +
        `it implements ${backend.algorithms.join(', ')})`,
    );
  }
}

export function backendSubject(
  backend: RateLimitBackend,
  keys: number,
  close: () => Promise<void> = async () => void (await backend.close()),
): AsyncSubject {
  const list = queries(keys);
  let rejected = 0;
  return {
    async decide(key) {
      const result = await backend.consume(list[key % keys]!);
      if (!result.allowed) rejected++;
    },
    rejected: () => rejected,
    close,
  };
}

export async function readyClient(
  url: string,
  options: { enableAutoPipelining?: boolean; enableOfflineQueue?: boolean } = {},
): Promise<Redis> {
  const client = new Redis(url, { ...options, lazyConnect: true, connectTimeout: 5_000 });
  await client.connect();
  return client;
}

/**
 * RedisBackend counting `algorithm` (its constructor option, the default of every query), on the
 * client it creates from the URL, or on a plain `new Redis(url)` passed in (closed here: the
 * backend never closes a client it was given).
 */
export async function redisBackend(
  url: string,
  algorithm: RateLimitAlgorithm,
  origin: ClientOrigin,
  prefix?: string,
): Promise<{ backend: RateLimitBackend; close: () => Promise<void> }> {
  const client = origin === 'passed' ? await readyClient(url) : undefined;
  try {
    const backend = new RedisBackend(client ?? url, {
      algorithm,
      ...(prefix === undefined ? {} : { prefix }),
    });
    requireAlgorithm(backend, algorithm, 'default');
    return {
      backend,
      close: async () => {
        await backend.close();
        await client?.quit();
      },
    };
  } catch (error) {
    client?.disconnect();
    throw error;
  }
}

const ALGORITHM_LETTERS: Readonly<Record<RateLimitAlgorithm, string>> = {
  'fixed-window': 'f',
  'sliding-window': 'w',
  'sliding-log': 'l',
  'token-bucket': 't',
};

function redisBackendMaker(
  url: string,
  algorithm: RateLimitAlgorithm,
  origin: ClientOrigin,
): SubjectMaker {
  // Each subject of a case on keys of its own (as long as the default `rl:`), so no two
  // subjects count in one key, whatever the key layouts of the algorithms.
  const prefix = `${ALGORITHM_LETTERS[algorithm]}${origin === 'own' ? 'o' : 'p'}:`;
  return async (keys) => {
    const { backend, close } = await redisBackend(url, algorithm, origin, prefix);
    return backendSubject(backend, keys, close);
  };
}

/** Plain `INCR` of one key per user: the least any Redis limiter can send per decision. */
function incrSubject(client: Redis, keys: number): AsyncSubject {
  const names = Array.from({ length: keys }, (_, i) => `bench:incr:${userId(i)}`);
  return {
    decide: (key) => client.incr(names[key % keys]!),
    rejected: () => 0,
    close: async () => void (await client.quit()),
  };
}

/**
 * Every subject measured against Redis with `inFlight` calls at once, by name; each call of a
 * maker makes a fresh subject. With 256 in flight (throughput, CPU per decision) every algorithm
 * runs on both kinds of client, and rate-limiter-flexible on both too; one call at a time (a
 * round trip each) the backends' own clients are enough.
 */
export function redisSubjects(url: string, inFlight: number): Record<string, SubjectMaker> {
  const origins: readonly ClientOrigin[] = inFlight > 1 ? ['own', 'passed'] : ['own'];
  const makers: Record<string, SubjectMaker> = {};
  for (const origin of origins) {
    for (const algorithm of REDIS_ALGORITHMS) {
      makers[redisSubject(algorithm, origin)] = redisBackendMaker(url, algorithm, origin);
    }
  }
  makers[SLIDING_REDIS_SUBJECT] = async (keys) =>
    backendSubject(new SlidingRedisBackend(url), keys);
  makers[INCR_SUBJECT] = async (keys) => incrSubject(await readyClient(url), keys);
  makers[INCR_AUTO_PIPELINING_SUBJECT] = async (keys) =>
    incrSubject(await readyClient(url, { enableAutoPipelining: true }), keys);
  const rlf = (client: Redis, keys: number): AsyncSubject =>
    rateLimiterFlexibleSubject(
      new RateLimiterRedis({ storeClient: client, points: LIMIT, duration: WINDOW_SECONDS }),
      keys,
      async () => void (await client.quit()),
    );
  makers[RLF_REDIS_SUBJECT] = async (keys) =>
    rlf(await readyClient(url, { enableOfflineQueue: false }), keys);
  if (inFlight > 1)
    makers[RLF_REDIS_PLAIN_SUBJECT] = async (keys) => rlf(await readyClient(url), keys);
  makers[NEST_LAB_SUBJECT] = async (keys) => {
    const client = await readyClient(url);
    return throttlerStorageSubject(
      new ThrottlerStorageRedisService(client),
      keys,
      async () => void (await client.quit()),
    );
  };
  return makers;
}

/** In-memory peers: their APIs return promises, so each call is awaited before the next. */
export function memoryPeerSubjects(): Record<string, SubjectMaker> {
  return {
    'rate-limiter-flexible RateLimiterMemory': async (keys) =>
      rateLimiterFlexibleSubject(
        new RateLimiterMemory({ points: LIMIT, duration: WINDOW_SECONDS }),
        keys,
        async () => {},
      ),
    '@nestjs/throttler ThrottlerStorageService': async (keys) => {
      const storage = new ThrottlerStorageService();
      return throttlerStorageSubject(storage, keys, async () => storage.onApplicationShutdown());
    },
  };
}

/**
 * A peer subject keyed by user id: `decide(user, reject)` makes one call for that user and calls
 * `reject` when the peer turned it down. The peer's own promise is returned as it is, with no
 * wrapper of ours around it, so the harness adds the same (nothing) to every peer.
 */
function keyedSubject(
  keys: number,
  decide: (user: string, reject: () => void) => Promise<unknown>,
  close: () => Promise<void>,
): AsyncSubject {
  const names = Array.from({ length: keys }, (_, i) => userId(i));
  let rejected = 0;
  const reject = (): void => {
    rejected++;
  };
  return { decide: (key) => decide(names[key % keys]!, reject), rejected: () => rejected, close };
}

/** A rate-limiter-flexible limiter (memory or Redis): `consume()` rejects when over the limit. */
function rateLimiterFlexibleSubject(
  limiter: { consume(key: string): Promise<unknown> },
  keys: number,
  close: () => Promise<void>,
): AsyncSubject {
  return keyedSubject(keys, (user, reject) => limiter.consume(user).catch(reject), close);
}

/** A @nestjs/throttler storage (its own, or the Redis one): `increment()` as its guard calls it. */
function throttlerStorageSubject(
  storage: Pick<ThrottlerStorageService, 'increment'>,
  keys: number,
  close: () => Promise<void>,
): AsyncSubject {
  const windowMs = WINDOW_SECONDS * 1000;
  return keyedSubject(
    keys,
    async (user, reject) => {
      const record = await storage.increment(user, windowMs, LIMIT, windowMs, 'default');
      if (record.isBlocked) reject();
    },
    close,
  );
}

/** MemoryBackend counting with `algorithm` (its option: queries name none), for the synchronous loop. */
export function memoryBackendLoop(
  algorithm: RateLimitAlgorithm,
  keys: number,
): { decide: (i: number) => void; rejected: () => number; close: () => Promise<void> } {
  const backend = new MemoryBackend({ algorithm });
  requireAlgorithm(backend, algorithm, 'default');
  const list = queries(keys);
  let rejected = 0;
  return {
    decide: (i) => {
      if (!backend.consume(list[i % keys]!).allowed) rejected++;
    },
    rejected: () => rejected,
    close: async () => backend.close(),
  };
}
