/**
 * Timing loops of the micro-benchmarks. Every loop is bounded by a count and by a time.
 *
 * @module
 */
import type { MicroSettings } from '../support/mode.js';
import { processCpuMicros } from '../support/cpu.js';
import { median } from '../support/stats.js';

/** No sample ever makes more calls than this, however fast the subject is. */
export const MAX_CALLS_PER_SAMPLE = 200_000_000;

/** Calls between two clock reads in the synchronous loop. */
const CHECK_EVERY = 1_024;

/** What one sample did: how many calls completed, in how many seconds. */
export interface Sample {
  readonly calls: number;
  readonly seconds: number;
}

/**
 * Calls `call(i)` for i = 0, 1, 2 … synchronously for about `ms` (and at most
 * {@link MAX_CALLS_PER_SAMPLE} calls).
 */
export function syncRate(call: (i: number) => unknown, ms: number): Sample {
  const start = performance.now();
  const deadline = start + ms;
  let i = 0;
  while (i < MAX_CALLS_PER_SAMPLE) {
    const stop = i + CHECK_EVERY;
    for (; i < stop; i++) call(i);
    if (performance.now() >= deadline) break;
  }
  return { calls: i, seconds: (performance.now() - start) / 1000 };
}

/**
 * Keeps `inFlight` calls of `call(i)` running at once for about `ms` (and at most
 * {@link MAX_CALLS_PER_SAMPLE} calls).
 */
export async function asyncRate(
  call: (i: number) => Promise<unknown>,
  inFlight: number,
  ms: number,
): Promise<Sample> {
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
  return { calls: completed, seconds: (performance.now() - start) / 1000 };
}

/** The median rate of a case, every sample's rate, and where its CPU went. */
export interface Rates {
  readonly perSecond: number;
  readonly samples: number[];
  /** CPU of this (the client) process per call, µs (median over the samples). */
  readonly clientCpuUsPerCall: number | undefined;
  /** CPU of redis-server per call, µs (median over the samples), when its PID is known. */
  readonly redisCpuUsPerCall: number | undefined;
}

/** The samples of one case so far, each with the CPU it cost. */
export class RateSamples {
  private readonly rates: number[] = [];
  private readonly client: number[] = [];
  private readonly server: number[] = [];

  constructor(
    /** redis-server's PID, to split its CPU per call; undefined for subjects without Redis. */
    private readonly redisPid?: number,
  ) {}

  /** Runs one sample of `ms` and records its rate and the CPU this process and Redis spent. */
  async take(once: (ms: number) => Sample | Promise<Sample>, ms: number): Promise<void> {
    const cpuBefore = process.cpuUsage();
    const redisBefore = this.redisCpu();
    const sample = await once(ms);
    const cpu = process.cpuUsage(cpuBefore);
    const redisAfter = this.redisCpu();
    this.rates.push(sample.calls / sample.seconds);
    if (sample.calls > 0) {
      this.client.push((cpu.user + cpu.system) / sample.calls);
      if (redisBefore !== undefined && redisAfter !== undefined) {
        this.server.push((redisAfter - redisBefore) / sample.calls);
      }
    }
  }

  /** Medians of the samples taken. */
  summary(): Rates {
    return {
      perSecond: median(this.rates) ?? 0,
      samples: [...this.rates],
      clientCpuUsPerCall: median(this.client),
      redisCpuUsPerCall: median(this.server),
    };
  }

  private redisCpu(): number | undefined {
    return this.redisPid === undefined ? undefined : processCpuMicros(this.redisPid);
  }
}

/**
 * Warm-up, then `settings.samples` samples, each with the CPU this process and (when `redisPid`
 * is given) redis-server used during it.
 */
export async function sampleRate(
  settings: MicroSettings,
  once: (ms: number) => Sample | Promise<Sample>,
  redisPid?: number,
): Promise<Rates> {
  await once(settings.warmupMs);
  const samples = new RateSamples(redisPid);
  for (let s = 0; s < settings.samples; s++) await samples.take(once, settings.sampleMs);
  return samples.summary();
}
