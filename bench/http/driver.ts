/**
 * The HTTP benchmark driver: starts each variant's server in its own process, loads it with
 * autocannon (in this process) over loopback, reads the server's CPU and RSS over IPC, and
 * repeats the variants interleaved (a b c … a b c …).
 *
 * @module
 */
import autocannon from 'autocannon';
import { request as httpRequest } from 'node:http';
import { fileURLToPath } from 'node:url';
import { forkTracked, waitForMessage, type TrackedChild } from '../support/children.js';
import type { HttpSettings } from '../support/mode.js';
import { machineBusyMicros, othersBusyShare, pin, processCpuMicros } from '../support/cpu.js';
import type { BenchRedis } from '../support/redis.js';
import type { HttpCase, HttpRun, HttpSuite, HttpSummary } from '../support/results.js';
import { median, ratio, sleep } from '../support/stats.js';
import {
  bareOf,
  VARIANTS,
  type IdentityMode,
  type ServerMessage,
  type ServerSample,
  type ServerSpec,
  type VariantName,
} from './variants.js';

const SERVER_PATH = fileURLToPath(new URL('./server.js', import.meta.url));
const READY_TIMEOUT_MS = 30_000;
const SAMPLE_TIMEOUT_MS = 5_000;
const STOP_TIMEOUT_MS = 8_000;
const PREFLIGHT_TIMEOUT_MS = 5_000;
const RETRY_DELAY_MS = 5_000;
/** Other processes below this share of a core count as a quiet machine. */
const QUIET_SHARE = 0.15;
const QUIET_PROBE_MS = 500;
/** A run during which other processes used this share of a core or more is measured again. */
const DISTURBED_SHARE = 0.25;
/** At most this share of all runs is measured again (bounds the benchmark's length). */
const REMEASURE_SHARE = 0.15;
/** Most latencies kept per run: far above what 50 connections answer in a run on loopback. */
const MAX_LATENCY_SAMPLES = 5_000_000;

/** One case of a suite, before it is measured. */
export interface CasePlan {
  readonly variant: VariantName;
  readonly identity: IdentityMode;
  /** Distinct `x-user` values cycled through (identity 'header'); 1 for identity 'ip'. */
  readonly users: number;
}

export interface SuitePlan {
  readonly id: HttpSuite['id'];
  readonly title: string;
  readonly cases: readonly CasePlan[];
}

interface LoadResult {
  readonly durationSeconds: number;
  readonly responses: number;
  readonly statusCounts: Record<string, number>;
  readonly errors: number;
  readonly timeouts: number;
  readonly latencies: Float64Array;
}

function userIds(users: number): string[] {
  return Array.from({ length: users }, (_, i) => `user-${i}`);
}

/** One autocannon run of `seconds` against `port`, recording every response's latency. */
function load(
  port: number,
  plan: CasePlan,
  settings: HttpSettings,
  seconds: number,
): Promise<LoadResult> {
  const options: autocannon.Options = {
    url: `http://127.0.0.1:${port}/hello`,
    connections: settings.connections,
    duration: seconds,
    timeout: 10,
    pipelining: 1,
  };
  if (plan.identity === 'header') {
    // A request per call, each with the next user id: every user is hit in turn.
    const ids = userIds(plan.users);
    let next = 0;
    options.requests = [
      {
        method: 'GET',
        path: '/hello',
        setupRequest: (request) => {
          const user = ids[next]!;
          next = next + 1 === ids.length ? 0 : next + 1;
          return { ...request, headers: { ...request.headers, 'x-user': user } };
        },
      },
    ];
  }
  let latencies = new Float64Array(65_536);
  let recorded = 0;
  return new Promise<LoadResult>((resolve, reject) => {
    const instance = autocannon(options, (error, result) => {
      if (error) {
        reject(error);
        return;
      }
      const statusCounts: Record<string, number> = {};
      let responses = 0;
      for (const [status, { count }] of Object.entries(result.statusCodeStats)) {
        statusCounts[status] = Number(count);
        responses += Number(count);
      }
      resolve({
        durationSeconds: result.duration,
        responses,
        statusCounts,
        errors: result.errors,
        timeouts: result.timeouts,
        latencies: latencies.subarray(0, recorded),
      });
    });
    instance.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => {
      if (recorded === latencies.length) {
        if (recorded >= MAX_LATENCY_SAMPLES) return;
        const grown = new Float64Array(Math.min(MAX_LATENCY_SAMPLES, recorded * 2));
        grown.set(latencies);
        latencies = grown;
      }
      latencies[recorded++] = ms;
    });
  });
}

/**
 * The calls a limiter made to Redis between two INFO commandstats readings: its script calls
 * (EVALSHA, EVAL, FCALL) when it made any (commandstats also counts the commands a script runs,
 * which are not calls), else every command. The driver's own INFO and CONFIG are left out.
 */
function clientCommands(before: Map<string, number>, after: Map<string, number>): number {
  let scripts = 0;
  let plain = 0;
  for (const [command, calls] of after) {
    if (command === 'info' || command.startsWith('config')) continue; // the driver's own
    const made = calls - (before.get(command) ?? 0);
    if (/^(evalsha|eval|evalsha_ro|eval_ro|fcall|fcall_ro)$/.test(command)) scripts += made;
    else plain += made;
  }
  return scripts > 0 ? scripts : plain;
}

function delta(before: number | undefined, after: number | undefined): number | undefined {
  return before === undefined || after === undefined ? undefined : after - before;
}

function percentile(sorted: Float64Array, p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[index];
}

/** One GET /hello, to check the variant answers as expected before it is loaded. */
function preflight(port: number, plan: CasePlan): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers = plan.identity === 'header' ? { 'x-user': 'user-0' } : {};
    const req = httpRequest(
      { host: '127.0.0.1', port, path: '/hello', headers, timeout: PREFLIGHT_TIMEOUT_MS },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('timeout', () => req.destroy(new Error('preflight request timed out')));
    req.on('error', reject);
    req.end();
  });
}

let sampleIds = 0;

async function serverSample(child: TrackedChild): Promise<ServerSample> {
  const id = ++sampleIds;
  child.process.send({ type: 'sample', id });
  return waitForMessage(child, 'server sample', SAMPLE_TIMEOUT_MS, (message) => {
    const m = message as ServerMessage;
    return m.type === 'sample' && m.id === id ? m.sample : undefined;
  });
}

async function startServer(
  spec: ServerSpec,
  cores: string | undefined,
  execArgv: readonly string[] = [],
): Promise<{ child: TrackedChild; port: number }> {
  const child = forkTracked(SERVER_PATH, [JSON.stringify(spec)], {
    env: { ...process.env, NODE_ENV: 'production' },
    execArgv,
  });
  try {
    if (cores !== undefined) pin(child.process.pid!, cores);
    const port = await waitForMessage(child, `${spec.variant} start`, READY_TIMEOUT_MS, (m) => {
      const message = m as ServerMessage;
      if (message.type === 'error') throw new Error(`${spec.variant}: ${message.message}`);
      return message.type === 'ready' ? message.port : undefined;
    });
    return { child, port };
  } catch (error) {
    await child.kill();
    throw error;
  }
}

async function stopServer(child: TrackedChild): Promise<void> {
  if (child.process.connected) child.process.send({ type: 'stop' });
  const timer = setTimeout(() => void child.kill(), STOP_TIMEOUT_MS);
  try {
    await child.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** How long the profiled server is loaded: its warm-up and two measured runs' worth. */
export function profileSeconds(settings: HttpSettings): number {
  return settings.warmupSeconds + 2 * settings.durationSeconds;
}

/**
 * Runs one case under `node --cpu-prof` (warm-up and one measured-length run), for the profile
 * section; resolves once the server has exited and written its profile into `dir`.
 */
export async function profileRun(
  plan: CasePlan,
  settings: HttpSettings,
  redis: BenchRedis | undefined,
  cores: string | undefined,
  dir: string,
): Promise<void> {
  const info = VARIANTS[plan.variant];
  if (info.redis) await redis!.reset();
  const spec: ServerSpec = {
    variant: plan.variant,
    identity: plan.identity,
    ...(info.redis ? { redisUrl: redis!.url } : {}),
  };
  const { child, port } = await startServer(spec, cores, ['--cpu-prof', '--cpu-prof-dir', dir]);
  try {
    await load(port, plan, settings, profileSeconds(settings));
  } finally {
    await stopServer(child);
  }
}

/** What the in-server timing of `RateLimitGuard.canActivate` found. */
export interface GuardTiming {
  /** Wall time of the guard per request (its synchronous part), µs, one value per run. */
  readonly guardUsPerRequest: number[];
  /** The server's whole CPU per request during the same runs, µs. */
  readonly serverCpuUsPerRequest: number[];
}

/**
 * Runs one case on a server that times every `RateLimitGuard.canActivate` call: warm-up, then
 * `runs` measured runs. Diagnostics for the profile section, kept apart from the measured suites.
 */
export async function guardTimingRun(
  plan: CasePlan,
  settings: HttpSettings,
  cores: string | undefined,
  runs: number,
): Promise<GuardTiming> {
  const spec: ServerSpec = { ...specFor(plan, undefined), timeGuard: true };
  const { child, port } = await startServer(spec, cores);
  const timing: GuardTiming = { guardUsPerRequest: [], serverCpuUsPerRequest: [] };
  try {
    await load(port, plan, settings, settings.warmupSeconds);
    for (let run = 0; run < runs; run++) {
      const before = await serverSample(child);
      const result = await load(port, plan, settings, settings.durationSeconds);
      const after = await serverSample(child);
      const calls = (after.guardCalls ?? 0) - (before.guardCalls ?? 0);
      const cpuUs = after.userUs + after.systemUs - (before.userUs + before.systemUs);
      if (calls > 0) {
        timing.guardUsPerRequest.push(
          ((after.guardNs ?? 0) - (before.guardNs ?? 0)) / calls / 1000,
        );
      }
      if (result.responses > 0) timing.serverCpuUsPerRequest.push(cpuUs / result.responses);
    }
    return timing;
  } finally {
    await stopServer(child);
  }
}

/** A variant's server, started once per suite and kept for every repetition. */
interface RunningServer {
  readonly spec: ServerSpec;
  readonly child: TrackedChild;
  readonly port: number;
}

function specFor(plan: CasePlan, redis: BenchRedis | undefined): ServerSpec {
  const info = VARIANTS[plan.variant];
  if (info.redis && redis === undefined) throw new Error(`${plan.variant} needs Redis`);
  return {
    variant: plan.variant,
    identity: plan.identity,
    ...(info.redis ? { redisUrl: redis!.url } : {}),
  };
}

/** Starts a variant's server, checks it answers as expected, and warms it up (JIT, caches). */
async function startVariant(
  plan: CasePlan,
  settings: HttpSettings,
  redis: BenchRedis | undefined,
  cores: string | undefined,
): Promise<RunningServer> {
  const info = VARIANTS[plan.variant];
  if (info.redis) await redis!.reset();
  const spec = specFor(plan, redis);
  const { child, port } = await startServer(spec, cores);
  try {
    for (let i = 0; i < (info.primingRequests ?? 0); i++) await preflight(port, plan);
    const status = await preflight(port, plan);
    if (status !== info.expectedStatus) {
      throw new Error(
        `${plan.variant}: GET /hello answered ${status}, expected ${info.expectedStatus}`,
      );
    }
    await load(port, plan, settings, settings.warmupSeconds);
    return { spec, child, port };
  } catch (error) {
    await stopServer(child);
    throw error;
  }
}

/**
 * Measures one case once on its running server: a flushed Redis for the Redis variants, a short
 * warm-up, then the measured run, with the server's CPU and RSS read over IPC around it.
 */
async function measure(
  server: RunningServer,
  plan: CasePlan,
  repetition: number,
  settings: HttpSettings,
  redis: BenchRedis | undefined,
): Promise<HttpRun> {
  const info = VARIANTS[plan.variant];
  const { child, port } = server;
  if (info.redis) await redis!.reset();
  await load(port, plan, settings, settings.runWarmupSeconds);

  const pid = child.process.pid!;
  const statsBefore = info.redis ? await redis!.commandStats() : undefined;
  const before = await serverSample(child);
  const redisBefore = redis?.cpuMicros();
  const machineBefore = machineBusyMicros();
  const serverProcBefore = processCpuMicros(pid);
  const driverProcBefore = processCpuMicros(process.pid);
  const driverBefore = process.cpuUsage();
  const startedAt = performance.now();
  const result = await load(port, plan, settings, settings.durationSeconds);
  const wallUs = (performance.now() - startedAt) * 1000;
  const driverCpu = process.cpuUsage(driverBefore);
  const driverProcAfter = processCpuMicros(process.pid);
  const serverProcAfter = processCpuMicros(pid);
  const machineAfter = machineBusyMicros();
  const redisAfter = redis?.cpuMicros();
  const after = await serverSample(child);
  const statsAfter = info.redis ? await redis!.commandStats() : undefined;
  const redisUs = delta(redisBefore, redisAfter) ?? 0;
  const machineUs = delta(machineBefore, machineAfter);
  const serverProcUs = delta(serverProcBefore, serverProcAfter);
  const driverProcUs = delta(driverProcBefore, driverProcAfter);
  const otherUs =
    machineUs === undefined || serverProcUs === undefined || driverProcUs === undefined
      ? undefined
      : Math.max(0, machineUs - serverProcUs - driverProcUs - redisUs);

  const serverCpuUs = after.userUs - before.userUs + (after.systemUs - before.systemUs);
  const sorted = result.latencies.sort();
  const expected = String(info.expectedStatus);
  return {
    repetition,
    durationSeconds: result.durationSeconds,
    responses: result.responses,
    requestsPerSecond: result.responses / result.durationSeconds,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    statusCounts: result.statusCounts,
    unexpectedStatus: result.responses - (result.statusCounts[expected] ?? 0),
    errors: result.errors,
    timeouts: result.timeouts,
    serverCpuUsPerRequest: result.responses > 0 ? serverCpuUs / result.responses : undefined,
    serverCpuShare: serverCpuUs / wallUs,
    serverRssBytes: after.rssBytes,
    serverMaxRssBytes: after.maxRssBytes,
    redisCpuUsPerRequest:
      info.redis && redisBefore !== undefined && result.responses > 0
        ? redisUs / result.responses
        : undefined,
    driverCpuShare: (driverCpu.user + driverCpu.system) / wallUs,
    otherCpuShare: otherUs === undefined ? undefined : otherUs / wallUs,
    redisCommandsPerRequest:
      statsBefore === undefined || statsAfter === undefined || result.responses === 0
        ? undefined
        : clientCommands(statsBefore, statsAfter) / result.responses,
  };
}

/** The server's warning and error lines (Nest logger), at most a few. */
function serverWarnings(child: TrackedChild): string[] {
  return child
    .output()
    .split('\n')
    .filter((line) => /\b(WARN|ERROR)\b/.test(line))
    .slice(0, 5)
    .map((line) => line.trim());
}

/**
 * Waits, within what is left of `budget`, until processes other than the benchmark's use less
 * than {@link QUIET_SHARE} of a core (another test run on the same machine, for example).
 * Resolves to the milliseconds waited.
 */
async function waitForQuiet(
  budget: { remainingMs: number },
  redis: BenchRedis | undefined,
): Promise<number> {
  const started = performance.now();
  const ours = [process.pid, ...(redis?.pid === undefined ? [] : [redis.pid])];
  while (budget.remainingMs > 0) {
    const probeStarted = performance.now();
    const others = await othersBusyShare(QUIET_PROBE_MS, ours);
    budget.remainingMs -= performance.now() - probeStarted;
    if (others === undefined || others < QUIET_SHARE) break;
  }
  return performance.now() - started;
}

/**
 * Medians of every case; ratios against the bare case on the same adapter (Express or Fastify)
 * with the same number of users.
 */
function summarize(cases: readonly HttpCase[]): void {
  for (const c of cases) {
    const bareName = bareOf(c.variant);
    const bare = cases.find((other) => other.variant === bareName && other.users === c.users);
    const bareByRep = new Map(bare?.runs.map((run) => [run.repetition, run]) ?? []);
    const bareRps = median(bare?.runs.map((run) => run.requestsPerSecond) ?? []);
    const rps = median(c.runs.map((run) => run.requestsPerSecond));
    const ratios = c.runs
      .map((run) => ratio(run.requestsPerSecond, bareByRep.get(run.repetition)?.requestsPerSecond))
      .filter((value): value is number => value !== undefined);
    const summary: HttpSummary = {
      requestsPerSecond: rps,
      ratioToBare: ratio(rps, bareRps),
      ratioRange: ratios.length > 0 ? [Math.min(...ratios), Math.max(...ratios)] : undefined,
      p50Ms: median(c.runs.map((run) => run.p50Ms)),
      p99Ms: median(c.runs.map((run) => run.p99Ms)),
      serverCpuUsPerRequest: median(c.runs.map((run) => run.serverCpuUsPerRequest)),
      serverRssBytes: median(c.runs.map((run) => run.serverRssBytes)),
      serverMaxRssBytes: median(c.runs.map((run) => run.serverMaxRssBytes)),
      redisCpuUsPerRequest: median(c.runs.map((run) => run.redisCpuUsPerRequest)),
      redisCommandsPerRequest: median(c.runs.map((run) => run.redisCommandsPerRequest)),
      driverCpuShare: median(c.runs.map((run) => run.driverCpuShare)),
      otherCpuShare: median(c.runs.map((run) => run.otherCpuShare)),
      unexpectedStatus: c.runs.reduce((sum, run) => sum + run.unexpectedStatus, 0),
      errors: c.runs.reduce((sum, run) => sum + run.errors, 0),
    };
    c.summary = summary;
  }
}

/**
 * Runs every suite. Each variant's server starts once per suite (and is warmed up); then the
 * cases are measured interleaved: repetition 1 of every case, then repetition 2, and so on, so
 * slow drift of the machine spreads over every variant. Odd repetitions go through the cases in
 * order and even ones in reverse, so no case always follows the same neighbour. With one order
 * only, the place in it biased the users suite: there each variant runs with 1 user and then with
 * 10,000, and the second beat the first by a median 3-7 % for every variant, the bare app too.
 * A case that fails is recorded in `problems` (its server restarted once) and the others go on.
 */
export async function runHttpSuites(
  plans: readonly SuitePlan[],
  settings: HttpSettings,
  redis: BenchRedis | undefined,
  /** Cores to pin each server to (taskset list), or undefined to leave them unpinned. */
  cores: string | undefined,
  problems: string[],
  log: (line: string) => void,
): Promise<HttpSuite[]> {
  const suites: HttpSuite[] = [];
  const quietBudget = { remainingMs: settings.quietWaitBudgetSeconds * 1000 };
  const totalRuns = plans.reduce(
    (sum, plan) =>
      sum +
      plan.cases.length * (plan.id === 'users' ? settings.usersRepetitions : settings.repetitions),
    0,
  );
  const remeasures = { left: Math.ceil(totalRuns * REMEASURE_SHARE) };
  for (const plan of plans) {
    const cases: HttpCase[] = plan.cases.map((c) => ({
      variant: c.variant,
      label: VARIANTS[c.variant].label,
      identity: c.identity,
      users: c.users,
      expectedStatus: VARIANTS[c.variant].expectedStatus,
      runs: [],
    }));
    const servers = new Map<string, RunningServer>();
    const serverKey = (c: CasePlan): string => `${c.variant}/${c.identity}`;
    const start = async (c: CasePlan): Promise<RunningServer> => {
      const server = await startVariant(c, settings, redis, cores);
      servers.set(serverKey(c), server);
      return server;
    };
    const stop = async (c: CasePlan): Promise<void> => {
      const server = servers.get(serverKey(c));
      if (server === undefined) return;
      servers.delete(serverKey(c));
      await stopServer(server.child);
      for (const line of serverWarnings(server.child)) {
        problems.push(`${plan.id}: the ${c.variant} server logged: ${line}`);
      }
    };
    try {
      for (const c of plan.cases) {
        if (servers.has(serverKey(c))) continue;
        try {
          await start(c);
          log(`${plan.id}: started and warmed up ${c.variant} (${c.identity})`);
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          problems.push(`${plan.id}: ${c.variant} did not start: ${message}`);
          log(`${plan.id}: ${c.variant} did not start: ${message.split('\n')[0]}`);
        }
      }
      const repetitions = plan.id === 'users' ? settings.usersRepetitions : settings.repetitions;
      const total = repetitions * plan.cases.length;
      let done = 0;
      const forward = plan.cases.map((_, i) => i);
      const backward = [...forward].reverse();
      for (let repetition = 1; repetition <= repetitions; repetition++) {
        for (const i of repetition % 2 === 1 ? forward : backward) {
          const casePlan = plan.cases[i]!;
          done++;
          const what = `${plan.id} ${done}/${total}: ${casePlan.variant}, ${casePlan.users} user(s)`;
          const waitedMs = await waitForQuiet(quietBudget, redis);
          if (waitedMs >= 2 * QUIET_PROBE_MS) {
            log(`${what}: waited ${Math.round(waitedMs / 1000)} s for other processes to go quiet`);
          }
          try {
            let run: HttpRun;
            try {
              const server = servers.get(serverKey(casePlan)) ?? (await start(casePlan));
              run = await measure(server, casePlan, repetition, settings, redis);
            } catch (error) {
              // One retry on a fresh server: a shared machine can have a bad moment.
              const message = error instanceof Error ? error.message : String(error);
              problems.push(`${what} failed once and was retried on a new server: ${message}`);
              log(`${what}: failed (${message.split('\n')[0]}), retrying on a new server`);
              await stop(casePlan);
              await sleep(RETRY_DELAY_MS);
              run = await measure(await start(casePlan), casePlan, repetition, settings, redis);
            }
            let waited = waitedMs;
            let disturbedShare: number | undefined;
            if (
              (run.otherCpuShare ?? 0) >= DISTURBED_SHARE &&
              remeasures.left > 0 &&
              quietBudget.remainingMs > 0
            ) {
              // Another process took a real share of the CPU during this run: measure it again,
              // once, after waiting for quiet. Both are reported.
              remeasures.left--;
              disturbedShare = run.otherCpuShare!;
              log(
                `${what}: other processes used ${Math.round(disturbedShare * 100)} % of a core, ` +
                  'measuring again',
              );
              waited += await waitForQuiet(quietBudget, redis);
              const server = servers.get(serverKey(casePlan))!;
              run = await measure(server, casePlan, repetition, settings, redis);
              problems.push(
                `${what} was measured again: other processes used ` +
                  `${Math.round(disturbedShare * 100)} % of a core during the first attempt ` +
                  `(${Math.round((run.otherCpuShare ?? 0) * 100)} % during the second).`,
              );
            }
            cases[i]!.runs.push({
              ...run,
              waitedForQuietSeconds: waited / 1000,
              ...(disturbedShare === undefined
                ? {}
                : { remeasuredAfterOtherCpuShare: disturbedShare }),
            });
            log(
              `${what}: ${Math.round(run.requestsPerSecond)} req/s, p50 ${run.p50Ms?.toFixed(2)} ms, ` +
                `p99 ${run.p99Ms?.toFixed(2)} ms, server ${run.serverCpuUsPerRequest?.toFixed(1)} µs/req` +
                (run.unexpectedStatus > 0 ? `, ${run.unexpectedStatus} UNEXPECTED statuses` : ''),
            );
          } catch (error) {
            const message = error instanceof Error ? error.message : String(error);
            problems.push(`${what} failed: ${message}`);
            log(`${what}: FAILED ${message}`);
          }
        }
      }
    } finally {
      for (const c of plan.cases) await stop(c);
    }
    summarize(cases);
    suites.push({ id: plan.id, title: plan.title, cases });
  }
  return suites;
}
