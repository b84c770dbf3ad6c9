/**
 * What the micro-benchmark children are asked to do, and what they answer, and the names of the
 * subjects they measure (the renderer finds its rows by these names). Kept apart from the
 * children themselves, which start measuring as soon as they are loaded.
 *
 * @module
 */
import type { RateLimitAlgorithm } from 'nestjs-ratelimit';
import type { MicroSettings } from '../support/mode.js';
import type {
  CommandCount,
  DecisionRate,
  HeapPerKey,
  RedisMemory,
  TimerCount,
} from '../support/results.js';

/**
 * The algorithms whose state per counter is O(1), measured on MemoryBackend (decisions/s and heap
 * per key). The sliding log keeps one entry per admitted request, so at the benchmark's limit
 * (1e8 per minute) it measures how fast a log of millions of entries grows, not a decision.
 */
export const O1_ALGORITHMS = ['fixed-window', 'sliding-window', 'token-bucket'] as const;

/** Every algorithm, measured on RedisBackend. */
export const REDIS_ALGORITHMS = [
  'fixed-window',
  'sliding-window',
  'sliding-log',
  'token-bucket',
] as const satisfies readonly RateLimitAlgorithm[];

/** MemoryBackend counting every query with `algorithm`. */
export function memorySubject(algorithm: RateLimitAlgorithm): string {
  return `nestjs-ratelimit MemoryBackend, ${algorithm}`;
}

/**
 * Who made the Redis client: the backend, from a URL (`own`: it enables autopipelining), or the
 * user, who passes in a plain `new Redis(url)` (`passed`), as most apps share one connection.
 */
export type ClientOrigin = 'own' | 'passed';

/** RedisBackend with `{ algorithm }`, on its own client or on one passed in. */
export function redisSubject(algorithm: RateLimitAlgorithm, client: ClientOrigin): string {
  return `nestjs-ratelimit RedisBackend, ${algorithm}, ${client === 'own' ? 'own client' : 'new Redis(url) passed in'}`;
}

export const SLIDING_REDIS_SUBJECT = 'nestjs-ratelimit SlidingRedisBackend';
export const INCR_SUBJECT = 'ioredis INCR (the bound)';
export const INCR_AUTO_PIPELINING_SUBJECT = 'ioredis INCR, enableAutoPipelining';
/** rate-limiter-flexible on the client of its README (`enableOfflineQueue: false`). */
export const RLF_REDIS_SUBJECT = 'rate-limiter-flexible RateLimiterRedis';
/** rate-limiter-flexible on the same plain `new Redis(url)` this module is passed. */
export const RLF_REDIS_PLAIN_SUBJECT = 'rate-limiter-flexible RateLimiterRedis, new Redis(url)';
export const NEST_LAB_SUBJECT = '@nest-lab/throttler-storage-redis';

/** The decisions/s row of MemoryBackend full (`maxKeys` reached), every decision a new identity. */
export const MEMORY_AT_CAPACITY_SUBJECT =
  'nestjs-ratelimit MemoryBackend at maxKeys, a new identity per decision';

export const HEAP_SUBJECTS = [
  ...O1_ALGORITHMS.map(memorySubject),
  'Map<string, number> (yardstick)',
  'rate-limiter-flexible RateLimiterMemory',
  '@nestjs/throttler ThrottlerStorageService',
] as const;

export type HeapSubject = (typeof HEAP_SUBJECTS)[number];

export interface HeapJob {
  readonly subject: HeapSubject;
  readonly keys: number;
}

export interface HeapMessage {
  readonly type: 'result';
  readonly heap: HeapPerKey;
  readonly timers: TimerCount[];
}

export interface DecisionsJob {
  readonly settings: MicroSettings;
  readonly redisUrl: string | undefined;
  /** PID of redis-server, to read the CPU it spends per decision. */
  readonly redisPid: number | undefined;
}

/** Messages of the decisions child, one per result as it is measured, then `done`. */
export type DecisionsMessage =
  | { readonly type: 'decision'; readonly decision: DecisionRate }
  | { readonly type: 'commands'; readonly count: CommandCount }
  | { readonly type: 'redisMemory'; readonly memory: RedisMemory }
  | { readonly type: 'problem'; readonly text: string }
  | { readonly type: 'progress'; readonly line: string }
  | { readonly type: 'done' };
