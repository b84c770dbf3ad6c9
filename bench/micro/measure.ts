/**
 * Timing loops of the micro-benchmarks. Every loop is bounded by a count and by a time.
 *
 * @module
 */
import type { MicroSettings } from '../support/mode.js';
import { median } from '../support/stats.js';

/** No sample ever makes more calls than this, however fast the subject is. */
export const MAX_CALLS_PER_SAMPLE = 200_000_000;

/** Calls between two clock reads in the synchronous loop. */
const CHECK_EVERY = 1_024;

/**
 * Calls `call(i)` for i = 0, 1, 2 … synchronously for about `ms` (and at most
 * {@link MAX_CALLS_PER_SAMPLE} calls); resolves to calls per second.
 */
export function syncRate(call: (i: number) => unknown, ms: number): number {
  const start = performance.now();
  const deadline = start + ms;
  let i = 0;
  while (i < MAX_CALLS_PER_SAMPLE) {
    const stop = i + CHECK_EVERY;
    for (; i < stop; i++) call(i);
    if (performance.now() >= deadline) break;
  }
  return i / ((performance.now() - start) / 1000);
}

/**
 * Keeps `inFlight` calls of `call(i)` running at once for about `ms` (and at most
 * {@link MAX_CALLS_PER_SAMPLE} calls); resolves to completed calls per second.
 */
export async function asyncRate(
  call: (i: number) => Promise<unknown>,
  inFlight: number,
  ms: number,
): Promise<number> {
  const start = performance.now();
  const deadline = start + ms;
  let issued = 0;
  let completed = 0;
  const worker = async (): Promise<void> => {
    while (issued < MAX_CALLS_PER_SAMPLE && performance.now() < deadline) {
      await call(issued++);
      completed++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return completed / ((performance.now() - start) / 1000);
}

/** Warm-up, then `settings.samples` samples; the median and every sample. */
export async function sampleRate(
  settings: MicroSettings,
  once: (ms: number) => number | Promise<number>,
): Promise<{ perSecond: number; samples: number[] }> {
  await once(settings.warmupMs);
  const samples: number[] = [];
  for (let s = 0; s < settings.samples; s++) samples.push(await once(settings.sampleMs));
  return { perSecond: median(samples) ?? 0, samples };
}
