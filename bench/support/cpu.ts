/**
 * CPU time of other processes and of the whole machine, from /proc (Linux). Used to report what
 * redis-server costs per request, and how busy the machine was with work that is not the
 * benchmark's (another test run, for example). Everything is undefined off Linux.
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc CPU times. */
const CLOCK_TICKS = ((): number => {
  try {
    const value = Number(execFileSync('getconf', ['CLK_TCK'], { timeout: 2_000 }).toString());
    return Number.isInteger(value) && value > 0 ? value : 100;
  } catch {
    return 100;
  }
})();

function ticksToMicros(ticks: number): number {
  return (ticks * 1_000_000) / CLOCK_TICKS;
}

/** User + system CPU of one process so far (all its threads), µs. */
export function processCpuMicros(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces: split after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // fields 14 and 15 of the full line
    return Number.isFinite(ticks) ? ticksToMicros(ticks) : undefined;
  } catch {
    return undefined;
  }
}

/** Busy CPU of the whole machine so far (every core, everything but idle and iowait), µs. */
export function machineBusyMicros(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
    const ticks = user! + nice! + system! + irq! + softirq! + (steal ?? 0);
    return Number.isFinite(ticks) ? ticksToMicros(ticks) : undefined;
  } catch {
    return undefined;
  }
}

/** Which cores the benchmark's processes run on, when it can pin them. */
export interface CpuPlan {
  /** Cores of the process under test: an HTTP server or a micro-benchmark child. */
  readonly subject: string;
  /** Cores of the driver (the load generator) and of redis-server, which it starts. */
  readonly driver: string;
  /** Every core: the micro-benchmarks run unpinned. */
  readonly all: string;
  readonly description: string;
}

function tasksetPath(): string | undefined {
  try {
    execFileSync('taskset', ['-V'], { timeout: 2_000, stdio: 'ignore' });
    return 'taskset';
  } catch {
    return undefined;
  }
}

/**
 * The core split: the process under test alone on the last core, everything else (the driver,
 * redis-server) on the others, so the load generator never takes the server's core. Undefined
 * (no pinning) with fewer than 2 cores or without `taskset`.
 */
export function cpuPlan(cores: number): CpuPlan | undefined {
  if (cores < 2 || process.platform !== 'linux' || tasksetPath() === undefined) return undefined;
  const last = cores - 1;
  const driver = last === 1 ? '0' : `0-${last - 1}`;
  return {
    subject: String(last),
    driver,
    all: `0-${last}`,
    description:
      `HTTP suites: the server under test pinned to core ${last}, the driver (autocannon) and ` +
      `redis-server to core${driver.includes('-') ? 's' : ''} ${driver} (taskset); ` +
      'micro-benchmarks: unpinned',
  };
}

/** Pins every thread of `pid` to `cores` (a taskset list such as "1" or "0-2"). */
export function pin(pid: number, cores: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cores, String(pid)], {
    timeout: 5_000,
    stdio: 'ignore',
  });
}

/**
 * CPU used by processes other than `ours` over `ms` milliseconds, in cores (0.5 = half a core),
 * from /proc; undefined off Linux.
 */
export async function othersBusyShare(
  ms: number,
  ours: readonly number[],
): Promise<number | undefined> {
  const machineBefore = machineBusyMicros();
  const oursBefore = ours.map(processCpuMicros);
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const wallUs = (performance.now() - started) * 1000;
  const machineAfter = machineBusyMicros();
  if (machineBefore === undefined || machineAfter === undefined) return undefined;
  let oursUs = 0;
  ours.forEach((pid, i) => {
    const after = processCpuMicros(pid);
    const before = oursBefore[i];
    if (after !== undefined && before !== undefined) oursUs += after - before;
  });
  return Math.max(0, machineAfter - machineBefore - oursUs) / wallUs;
}
