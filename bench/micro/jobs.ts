/**
 * What the micro-benchmark children are asked to do, and what they answer. Kept apart from the
 * children themselves, which start measuring as soon as they are loaded.
 *
 * @module
 */
import type { MicroSettings } from '../support/mode.js';
import type { CommandCount, DecisionRate, HeapPerKey, TimerCount } from '../support/results.js';

export const HEAP_SUBJECTS = [
  'nestjs-ratelimit MemoryBackend',
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

/** The decisions/s row of MemoryBackend full (`maxKeys` reached), every decision a new identity. */
export const MEMORY_AT_CAPACITY_SUBJECT =
  'nestjs-ratelimit MemoryBackend at maxKeys, a new identity per decision';

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
  | { readonly type: 'problem'; readonly text: string }
  | { readonly type: 'progress'; readonly line: string }
  | { readonly type: 'done' };
