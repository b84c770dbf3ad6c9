/**
 * The shape of `bench/results.json`: everything a run measured, from which `RESULTS.md` is
 * rendered. Numbers are never typed by hand.
 *
 * @module
 */
import type { HttpSettings, MicroSettings } from './mode.js';
import type { GuardTiming } from '../http/driver.js';
import type { ProfileSummary } from '../http/profile.js';
import type { IdentityMode, VariantName } from '../http/variants.js';

export interface MachineInfo {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryBytes: number;
  readonly os: string;
  readonly kernel: string;
}

/** One measured HTTP run (after its warm-up). */
export interface HttpRun {
  readonly repetition: number;
  readonly durationSeconds: number;
  /** Responses received during the measured run. */
  readonly responses: number;
  readonly requestsPerSecond: number;
  /** Latency percentiles of every response, ms (measured by the driver, sub-millisecond). */
  readonly p50Ms: number | undefined;
  readonly p99Ms: number | undefined;
  readonly statusCounts: Readonly<Record<string, number>>;
  /** Responses whose status was not the variant's expected one. */
  readonly unexpectedStatus: number;
  readonly errors: number;
  readonly timeouts: number;
  /** Server process CPU (user + system) during the run, µs per response. */
  readonly serverCpuUsPerRequest: number | undefined;
  /** Server CPU use during the run, as a share of one core. */
  readonly serverCpuShare: number | undefined;
  /** Server RSS at the end of the run, and its peak since the process started. */
  readonly serverRssBytes: number;
  readonly serverMaxRssBytes: number;
  /** redis-server CPU during the run, µs per response (Redis variants, Linux). */
  readonly redisCpuUsPerRequest: number | undefined;
  /** The driver's own CPU during the run, as a share of one core (load-generator saturation). */
  readonly driverCpuShare: number;
  /**
   * CPU used on the machine by processes other than the driver, the server and redis-server,
   * in cores (from /proc/stat): interference from outside the benchmark. Linux only.
   */
  readonly otherCpuShare: number | undefined;
  /**
   * Redis variants: limiter calls Redis answered during the run, per response (script calls
   * when the limiter uses scripts, else commands). About 1 when every request was decided by
   * Redis; well below 1 means requests passed without a decision (a failure policy failing open).
   */
  readonly redisCommandsPerRequest: number | undefined;
  /** Seconds waited before the run for other processes to go quiet. */
  readonly waitedForQuietSeconds?: number;
  /**
   * Set when a first attempt was discarded because other processes used this share of a core
   * during it; the numbers are those of the second attempt.
   */
  readonly remeasuredAfterOtherCpuShare?: number;
}

/** Medians over the repetitions of one (variant, users) case. */
export interface HttpSummary {
  readonly requestsPerSecond: number | undefined;
  /** Median requests/s divided by the median of the bare app in the same suite. */
  readonly ratioToBare: number | undefined;
  /** Smallest and largest per-repetition ratio (each run against bare in the same repetition). */
  readonly ratioRange: readonly [number, number] | undefined;
  readonly p50Ms: number | undefined;
  readonly p99Ms: number | undefined;
  readonly serverCpuUsPerRequest: number | undefined;
  readonly serverRssBytes: number | undefined;
  readonly serverMaxRssBytes: number | undefined;
  readonly redisCpuUsPerRequest: number | undefined;
  readonly redisCommandsPerRequest: number | undefined;
  readonly driverCpuShare: number | undefined;
  readonly otherCpuShare: number | undefined;
  /** Sum over all repetitions. */
  readonly unexpectedStatus: number;
  readonly errors: number;
}

export interface HttpCase {
  readonly variant: VariantName;
  readonly label: string;
  readonly identity: IdentityMode;
  readonly users: number;
  readonly expectedStatus: number;
  readonly runs: HttpRun[];
  summary?: HttpSummary;
}

export interface HttpSuite {
  readonly id: 'main' | 'users';
  readonly title: string;
  readonly cases: HttpCase[];
}

export interface DecisionRate {
  readonly subject: string;
  readonly keys: number;
  /** Calls in flight at once (1 = one after the other); undefined for synchronous calls. */
  readonly inFlight: number | undefined;
  /** Median decisions (or commands) per second. */
  readonly perSecond: number;
  readonly samples: readonly number[];
  /** CPU of the benchmark process per decision, µs (median over the samples). */
  readonly clientCpuUsPerCall: number | undefined;
  /** CPU of redis-server per decision, µs (median over the samples); Redis subjects only. */
  readonly redisCpuUsPerCall: number | undefined;
}

export interface CommandCount {
  readonly subject: string;
  readonly decisions: number;
  /** Every command Redis executed (INFO commandstats delta), per decision. */
  readonly executedPerDecision: number;
  /** Per command name, per decision (commandstats counts commands run inside scripts too). */
  readonly byCommand: Readonly<Record<string, number>>;
  /** From MONITOR: commands the client sent per decision (round-trip commands). */
  readonly sentPerDecision: number | undefined;
  /** From MONITOR: commands run by Lua scripts per decision. */
  readonly inScriptsPerDecision: number | undefined;
}

export interface HeapPerKey {
  readonly subject: string;
  readonly keys: number;
  /** Entries the store reports after the fill (to prove every key is tracked), when it can. */
  readonly trackedEntries: number | undefined;
  readonly heapBeforeBytes: number;
  readonly heapAfterBytes: number;
  readonly bytesPerKey: number;
  readonly fillSeconds: number;
  readonly note: string;
}

export interface TimerCount {
  readonly subject: string;
  readonly phase: string;
  readonly decisions: number;
  readonly setInterval: number;
  readonly setTimeout: number;
}

/** What one counter of a one-unit rule keeps in Redis (`MEMORY USAGE` of every key it wrote). */
export interface RedisMemory {
  readonly subject: string;
  /** The keys the counter wrote (after its first decision), as Redis names them. */
  readonly keys: readonly string[];
  /** Sum of `MEMORY USAGE <key> SAMPLES 0` over those keys after 1 decision, bytes. */
  readonly bytesAfterOne: number;
  /** Decisions of the second reading (the same counter, every one admitted). */
  readonly decisionsLater: number;
  /** The same sum after `decisionsLater` decisions (a log grows; a counter does not). */
  readonly bytesAfterLater: number;
}

export interface MicroResults {
  readonly settings: MicroSettings;
  readonly decisions: DecisionRate[];
  readonly commands: CommandCount[];
  /** Absent in results written before it was measured. */
  readonly redisMemory?: RedisMemory[];
  readonly heap: HeapPerKey[];
  readonly timers: TimerCount[];
}

export interface BenchResults {
  readonly schema: 1;
  readonly mode: 'full' | 'quick';
  readonly command: string;
  readonly startedAt: string;
  finishedAt?: string;
  totalSeconds?: number;
  readonly machine: MachineInfo;
  /** How the processes were spread over the cores. */
  readonly cpuPinning: string;
  /** os.loadavg() (1, 5, 15 minutes) when the run started and ended. */
  readonly loadAverage: { readonly start: readonly number[]; end?: readonly number[] };
  readonly versions: Record<string, string>;
  readonly http: { readonly settings: HttpSettings; readonly suites: HttpSuite[] };
  micro?: MicroResults;
  /** A CPU profile of the server of this module's memory variant, taken when it misses 0.95×. */
  profile?: {
    readonly variant: VariantName;
    readonly reason: string;
    readonly seconds: number;
    readonly summary: ProfileSummary;
    /** `RateLimitGuard.canActivate` timed inside the server, on a separate unprofiled server. */
    readonly guardTiming?: GuardTiming;
  };
  /** Problems met while running (a part that failed is reported, not hidden). */
  readonly problems: string[];
}
