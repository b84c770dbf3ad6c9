/** How long and how often each part of the benchmark runs, for `npm run bench` and `--quick`. */

export interface HttpSettings {
  /** Concurrent connections of the load generator. */
  readonly connections: number;
  /** Seconds of load discarded when a variant's server has started (JIT warm-up, caches). */
  readonly warmupSeconds: number;
  /** Seconds of load discarded before each measured run (after the flush of Redis, if any). */
  readonly runWarmupSeconds: number;
  /** Seconds of each measured run. */
  readonly durationSeconds: number;
  /**
   * Interleaved passes over every variant (a b c … c b a …) of the one-busy-key suite. Even, so
   * that as many passes go each way.
   */
  readonly repetitions: number;
  /** Interleaved passes of the 1-vs-many-users suite (even, for the same reason). */
  readonly usersRepetitions: number;
  /** Distinct users of the many-users suite. */
  readonly manyUsers: number;
  /**
   * Longest total time, over the whole run, spent waiting before a run for other processes on
   * the machine to go quiet (below 15 % of a core). Bounds the benchmark's length on a busy
   * machine; once spent, runs start whatever the load, and the report shows it per run.
   */
  readonly quietWaitBudgetSeconds: number;
}

export interface MicroSettings {
  /** Measured time of one decisions/s sample, ms (also bounded by a count). */
  readonly sampleMs: number;
  /** Unmeasured time before the samples of one case, ms. */
  readonly warmupMs: number;
  /** Samples per case; the median is reported. */
  readonly samples: number;
  /** Keys of the "many keys" decisions/s case. */
  readonly manyKeys: number;
  /** Keys filled for the heap-per-key measurement. */
  readonly heapKeys: number;
  /** Decisions whose Redis commands are counted from INFO commandstats. */
  readonly commandStatsDecisions: number;
  /** Decisions watched with MONITOR to tell client commands from commands run inside scripts. */
  readonly monitorDecisions: number;
}

export interface BenchMode {
  readonly name: 'full' | 'quick';
  /** `--micro-only`: the micro-benchmarks alone, no HTTP suite (a smoke run of them). */
  readonly microOnly: boolean;
  readonly http: HttpSettings;
  readonly micro: MicroSettings;
}

export const FULL: BenchMode = {
  name: 'full',
  microOnly: false,
  http: {
    connections: 50,
    warmupSeconds: 3,
    runWarmupSeconds: 1,
    durationSeconds: 4,
    repetitions: 8,
    usersRepetitions: 6,
    manyUsers: 10_000,
    quietWaitBudgetSeconds: 180,
  },
  micro: {
    sampleMs: 1_500,
    warmupMs: 500,
    samples: 5,
    manyKeys: 100_000,
    heapKeys: 1_000_000,
    commandStatsDecisions: 10_000,
    monitorDecisions: 1_000,
  },
};

export const QUICK: BenchMode = {
  name: 'quick',
  microOnly: false,
  http: {
    connections: 50,
    warmupSeconds: 1,
    runWarmupSeconds: 0.5,
    durationSeconds: 2,
    repetitions: 1,
    usersRepetitions: 1,
    manyUsers: 10_000,
    quietWaitBudgetSeconds: 30,
  },
  micro: {
    sampleMs: 500,
    warmupMs: 250,
    samples: 1,
    manyKeys: 100_000,
    heapKeys: 1_000_000,
    commandStatsDecisions: 2_000,
    monitorDecisions: 200,
  },
};

const OPTIONS = ['--quick', '--micro-only'];

/** `--quick` (short runs) and `--micro-only` (no HTTP suite), in any combination. */
export function modeFromArgs(args: readonly string[]): BenchMode {
  const unknown = args.filter((arg) => !OPTIONS.includes(arg));
  if (unknown.length > 0) {
    throw new Error(
      `Unknown argument(s) ${unknown.join(' ')}; the options are ${OPTIONS.join(', ')}`,
    );
  }
  const mode = args.includes('--quick') ? QUICK : FULL;
  return args.includes('--micro-only') ? { ...mode, microOnly: true } : mode;
}
