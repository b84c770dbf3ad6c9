/**
 * Heap bytes per tracked key, one store per process (`node --expose-gc heap.js '<job as JSON>'`,
 * forked with IPC) so every measurement starts from a fresh heap. Also counts the timers each
 * store creates (`setInterval` / `setTimeout` calls) while it fills and while it keeps deciding.
 *
 * @module
 */
import 'reflect-metadata';
import { ThrottlerStorageService } from '@nestjs/throttler';
import { MemoryBackend, Rule, type RateLimitAlgorithm } from 'nestjs-ratelimit';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import {
  memorySubject,
  O1_ALGORITHMS,
  type HeapJob,
  type HeapMessage,
  type HeapSubject,
} from './jobs.js';

const LIMIT = 100_000_000;
const WINDOW_SECONDS = 60;
/** The scope every benchmark counter has: the pattern rule's path. */
const SCOPE = 'path:/hello';

// Count timers from the very start, before any store exists.
const timerCalls = { setInterval: 0, setTimeout: 0 };
const realSetInterval = globalThis.setInterval;
const realSetTimeout = globalThis.setTimeout;
globalThis.setInterval = ((...args: Parameters<typeof setInterval>) => {
  timerCalls.setInterval++;
  return realSetInterval(...args);
}) as typeof setInterval;
globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
  timerCalls.setTimeout++;
  return realSetTimeout(...args);
}) as typeof setTimeout;

function gc(): void {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (collect === undefined) throw new Error('heap.js must run with node --expose-gc');
  // Several passes: weak references and finalizers can free more on a later pass.
  for (let i = 0; i < 4; i++) collect();
}

function userId(i: number): string {
  return `user-${i}`;
}

/**
 * The key MemoryBackend stores for user i (its documented layout, `<len>:<scope><len>:<method>
 * <user>`), built with join() as it is, so the yardstick Map holds flat strings of the same length.
 */
function backendKey(i: number): string {
  return [SCOPE.length, ':', SCOPE, 1, ':', '*', userId(i)].join('');
}

interface Store {
  /** Decides (or sets) for user i. */
  touch(i: number): unknown;
  /** Entries the store reports, to prove every key is tracked; undefined if it cannot tell. */
  size(): number | undefined;
  readonly note: string;
}

/** MemoryBackend with `{ algorithm }` and otherwise its defaults (maxKeys 1,000,000, one sweep timer). */
function memoryBackendStore(algorithm: RateLimitAlgorithm): Store {
  const backend = new MemoryBackend({ algorithm });
  if (backend.algorithm !== algorithm) {
    throw new Error(
      `MemoryBackend does not count ${algorithm} (it implements ${backend.algorithms.join(', ')})`,
    );
  }
  const limits = new Rule({ minute: LIMIT }).limits;
  return {
    touch: (i) => {
      const result = backend.consume({
        counter: { user: userId(i), scope: SCOPE, method: '*' },
        limits,
        blockMs: 0,
      });
      if (!result.allowed) throw new Error('MemoryBackend rejected a decision');
      return result;
    },
    size: () => backend.size,
    note: `{ algorithm: '${algorithm}' }, other options default; one minute unit per key, keys such as "${backendKey(0)}"`,
  };
}

function makeStore(subject: HeapSubject): Store {
  const algorithm = O1_ALGORITHMS.find((a) => memorySubject(a) === subject);
  if (algorithm !== undefined) return memoryBackendStore(algorithm);
  switch (subject) {
    case 'Map<string, number> (yardstick)': {
      const map = new Map<string, number>();
      return {
        touch: (i) => map.set(backendKey(i), i),
        size: () => map.size,
        note: 'the same flat key strings as MemoryBackend, a small integer value',
      };
    }
    case 'rate-limiter-flexible RateLimiterMemory': {
      const limiter = new RateLimiterMemory({ points: LIMIT, duration: WINDOW_SECONDS });
      return {
        touch: (i) => limiter.consume(userId(i)),
        size: () => undefined,
        note: 'consume(user) per key; it stores "<keyPrefix>:<user>" keys',
      };
    }
    case '@nestjs/throttler ThrottlerStorageService': {
      const storage = new ThrottlerStorageService();
      return {
        touch: (i) =>
          storage.increment(
            userId(i),
            WINDOW_SECONDS * 1000,
            LIMIT,
            WINDOW_SECONDS * 1000,
            'default',
          ),
        size: () => storage.storage.size,
        note: 'increment(user) per key; ThrottlerGuard would pass a 64-character sha256 key instead of the short user id',
      };
    }
    default:
      throw new Error(`Unknown heap subject ${subject}`);
  }
}

async function fill(store: Store, keys: number): Promise<void> {
  for (let i = 0; i < keys; i++) {
    const result = store.touch(i);
    // Await promise-returning stores now and then, so their work completes as it goes.
    if (result instanceof Promise && (i & 1023) === 1023) await result;
    else if (result instanceof Promise) void result;
  }
  await new Promise((resolve) => realSetTimeout(resolve, 0));
}

async function main(): Promise<HeapMessage> {
  if (process.send === undefined) throw new Error('heap.js must be forked with IPC');
  process.on('disconnect', () => process.exit(0));
  const job = JSON.parse(process.argv[2] ?? '') as HeapJob;

  const store = makeStore(job.subject);
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const timersBeforeFill = { ...timerCalls };
  const started = performance.now();
  await fill(store, job.keys);
  const fillSeconds = (performance.now() - started) / 1000;
  const timersAfterFill = { ...timerCalls };
  gc();
  const heapAfter = process.memoryUsage().heapUsed;
  const trackedEntries = store.size();

  // The same keys again: decisions on tracked keys must not create timers either.
  await fill(store, job.keys);
  const timersAfterRepeat = { ...timerCalls };

  return {
    type: 'result',
    heap: {
      subject: job.subject,
      keys: job.keys,
      trackedEntries,
      heapBeforeBytes: heapBefore,
      heapAfterBytes: heapAfter,
      bytesPerKey: (heapAfter - heapBefore) / job.keys,
      fillSeconds,
      note: store.note,
    },
    timers: [
      {
        subject: job.subject,
        phase: `fill ${job.keys} new keys`,
        decisions: job.keys,
        setInterval: timersAfterFill.setInterval - timersBeforeFill.setInterval,
        setTimeout: timersAfterFill.setTimeout - timersBeforeFill.setTimeout,
      },
      {
        subject: job.subject,
        phase: `${job.keys} more decisions on the same keys`,
        decisions: job.keys,
        setInterval: timersAfterRepeat.setInterval - timersAfterFill.setInterval,
        setTimeout: timersAfterRepeat.setTimeout - timersAfterFill.setTimeout,
      },
    ],
  };
}

main().then(
  (result) => process.send!(result, () => process.exit(0)),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exit(1);
  },
);
