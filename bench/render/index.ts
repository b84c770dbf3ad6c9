/**
 * Renders `RESULTS.md` from `results.json`. Every number in the document comes from the JSON; the
 * prose around them is fixed text, or sentences built from the numbers.
 *
 * @module
 */
import type { ProfileSummary } from '../http/profile.js';
import {
  bareOf,
  noopGuardOf,
  VARIANTS,
  type HttpPlatformName,
  type VariantName,
} from '../http/variants.js';
import type { BenchResults, HttpCase, HttpSuite } from '../support/results.js';
import { median, ratio } from '../support/stats.js';
import { atLeast, DASH, fixed, int, mb, percent, table, verdict, type Target } from './format.js';
import { microSection, microTargets } from './micro.js';

// ---------------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------------

function loadAverage(values: readonly number[] | undefined): string {
  return values === undefined ? DASH : values.map((v) => v.toFixed(2)).join(' / ');
}

function duration(seconds: number | undefined): string {
  if (seconds === undefined) return DASH;
  const whole = Math.round(seconds);
  return `${Math.floor(whole / 60)} min ${whole % 60} s`;
}

// ---------------------------------------------------------------------------------------------
// Lookups
// ---------------------------------------------------------------------------------------------

function suite(results: BenchResults, id: HttpSuite['id']): HttpSuite | undefined {
  return results.http.suites.find((s) => s.id === id);
}

function httpCase(
  results: BenchResults,
  id: HttpSuite['id'],
  variant: VariantName,
  users = 1,
): HttpCase | undefined {
  return suite(results, id)?.cases.find((c) => c.variant === variant && c.users === users);
}

/**
 * The fastest run of a case over the fastest run of the bare app (same adapter) with the same users: a
 * secondary statistic for a noisy machine, where disturbances slow runs down but never speed
 * them up. The targets are judged on medians.
 */
function fastestRatio(results: BenchResults, id: HttpSuite['id'], c: HttpCase): number | undefined {
  const bare = httpCase(results, id, bareOf(c.variant), c.users);
  if (bare === undefined || bare.runs.length === 0 || c.runs.length === 0) return undefined;
  const best = (runs: readonly { requestsPerSecond: number }[]): number =>
    Math.max(...runs.map((r) => r.requestsPerSecond));
  return best(c.runs) / best(bare.runs);
}

/**
 * The median over repetitions of `lots`' req/s over `one`'s in the same repetition: the same
 * variant with many users against one, each pair measured minutes apart at most, with no bare
 * run in between (the two bare medians a target divides by add their own noise). Secondary, like
 * {@link fastestRatio}; the targets are judged on medians against the bare app.
 */
function pairedRatio(one: HttpCase | undefined, lots: HttpCase | undefined): number | undefined {
  if (one === undefined || lots === undefined) return undefined;
  const oneByRep = new Map(one.runs.map((run) => [run.repetition, run.requestsPerSecond]));
  const ratios = lots.runs.flatMap((run) => {
    const base = oneByRep.get(run.repetition);
    return base === undefined || base === 0 ? [] : [run.requestsPerSecond / base];
  });
  return median(ratios);
}

/** Server CPU per request of the no-op guard over a case's, in the main suite. */
interface CpuRatio {
  /** The no-op guard's median µs/req over the case's median. */
  readonly median: number | undefined;
  /** Smallest and largest of the same over the runs of each repetition. */
  readonly range: readonly [number, number] | undefined;
}

/**
 * How close a case's server CPU per request is to the no-op guard's on the same adapter: the
 * guard's µs/req over the case's, so that 1 is "costs nothing beyond any guard" and, like the
 * throughput ratios, higher is better. CPU per request, not req/s, is what the Fastify targets
 * compare: on Fastify the load generator can saturate its core before the server does.
 */
function cpuRatioToNoop(results: BenchResults, c: HttpCase): CpuRatio {
  const noop = httpCase(results, 'main', noopGuardOf(c.variant), c.users);
  const median = ratio(noop?.summary?.serverCpuUsPerRequest, c.summary?.serverCpuUsPerRequest);
  const noopByRep = new Map(noop?.runs.map((run) => [run.repetition, run]) ?? []);
  const ratios = c.runs
    .map((run) =>
      ratio(noopByRep.get(run.repetition)?.serverCpuUsPerRequest, run.serverCpuUsPerRequest),
    )
    .filter((value): value is number => value !== undefined);
  return {
    median,
    range: ratios.length > 0 ? [Math.min(...ratios), Math.max(...ratios)] : undefined,
  };
}

// ---------------------------------------------------------------------------------------------
// Targets
// ---------------------------------------------------------------------------------------------

/** How much worse the many-users ratio may be than the one-user ratio and still count as equal. */
const USERS_TOLERANCE = 0.03;

function targets(results: BenchResults): Target[] {
  const list: Target[] = [];
  const ratioTarget = (variant: VariantName, bound: number): void => {
    const c = httpCase(results, 'main', variant);
    const summary = c?.summary;
    const range = summary?.ratioRange;
    const fastest = c === undefined ? undefined : fastestRatio(results, 'main', c);
    list.push({
      target: `HTTP: ${VARIANTS[variant].label} ≥ ${bound.toFixed(2)}× bare (medians)`,
      measured:
        `${fixed(summary?.ratioToBare, 3)}× bare` +
        (range === undefined ? '' : ` (runs ${fixed(range[0], 3)}–${fixed(range[1], 3)}`) +
        (fastest === undefined ? '' : `; fastest runs ${fixed(fastest, 3)}×`) +
        (range === undefined ? '' : ')'),
      pass: atLeast(summary?.ratioToBare, bound),
    });
  };
  ratioTarget('ratelimit-memory', 0.95);
  ratioTarget('ratelimit-redis', 0.9);
  ratioTarget('ratelimit-all-429', 0.9);

  // Issue 15: with the hot-key shortcut, rejecting on Redis costs what it costs on memory.
  {
    const redis = httpCase(results, 'main', 'ratelimit-redis-all-429')?.summary;
    const memory = httpCase(results, 'main', 'ratelimit-all-429')?.summary;
    const cpuRatio = ratio(redis?.serverCpuUsPerRequest, memory?.serverCpuUsPerRequest);
    list.push({
      target:
        'HTTP: all 429 on RedisBackend as cheap as on memory (server CPU/req within 5 %, with localRejectCache)',
      measured:
        `${fixed(redis?.serverCpuUsPerRequest, 1)} vs ${fixed(memory?.serverCpuUsPerRequest, 1)} µs/req ` +
        `(Redis ÷ memory ${fixed(cpuRatio, 3)})`,
      pass: cpuRatio === undefined ? undefined : cpuRatio <= 1.05,
    });
    const uncached = httpCase(results, 'main', 'ratelimit-redis-all-429-uncached')?.summary;
    const perRequest = redis?.redisCommandsPerRequest;
    list.push({
      target:
        'HTTP: all 429 from a blocked caller on RedisBackend, Redis commands per rejected request with localRejectCache ≤ 0.01 (beside the same path without it)',
      measured:
        `${fixed(perRequest, 4)} with, ${fixed(uncached?.redisCommandsPerRequest, 2)} without; ` +
        `server CPU ${fixed(redis?.serverCpuUsPerRequest, 1)} vs ` +
        `${fixed(uncached?.serverCpuUsPerRequest, 1)} µs/req, Redis CPU ` +
        `${fixed(redis?.redisCpuUsPerRequest, 1)} vs ${fixed(uncached?.redisCpuUsPerRequest, 1)} µs/req`,
      pass: perRequest === undefined ? undefined : perRequest <= 0.01,
    });
  }

  // Issue 13: Fastify's bare app is about twice as fast as Express's, so the limiter's own cost
  // weighs twice as much there; compared on server CPU per request against the no-op guard.
  const cpuTarget = (variant: VariantName, bound: number): void => {
    const c = httpCase(results, 'main', variant);
    const noop = httpCase(results, 'main', noopGuardOf(variant));
    const r =
      c === undefined ? { median: undefined, range: undefined } : cpuRatioToNoop(results, c);
    list.push({
      target:
        `HTTP on ${VARIANTS[variant].platform === 'fastify' ? 'Fastify' : 'Express'}: ` +
        `${VARIANTS[variant].label.replace(/^Fastify: /, '')}, server CPU/req ` +
        `within ${fixed((1 - bound) * 100, 0)} % of the no-op guard ` +
        `(no-op ÷ this ≥ ${bound.toFixed(2)}, medians)`,
      measured:
        `${fixed(r.median, 3)} (${fixed(noop?.summary?.serverCpuUsPerRequest, 1)} vs ` +
        `${fixed(c?.summary?.serverCpuUsPerRequest, 1)} µs/req` +
        (r.range === undefined ? '' : `; runs ${fixed(r.range[0], 3)}–${fixed(r.range[1], 3)}`) +
        ')',
      pass: atLeast(r.median, bound),
    });
  };
  cpuTarget('fastify-ratelimit-memory', 0.95);
  cpuTarget('fastify-ratelimit-redis', 0.95);

  const many = results.http.settings.manyUsers;
  for (const variant of ['ratelimit-memory', 'ratelimit-redis'] as const) {
    const oneCase = httpCase(results, 'users', variant, 1);
    const lotsCase = httpCase(results, 'users', variant, many);
    const one = oneCase?.summary?.ratioToBare;
    const lots = lotsCase?.summary?.ratioToBare;
    const fastest = (c: HttpCase | undefined): string =>
      fixed(c === undefined ? undefined : fastestRatio(results, 'users', c), 3);
    list.push({
      target: `HTTP: ${VARIANTS[variant].label}, ${int(many)} users no worse than 1 (medians, within ${USERS_TOLERANCE})`,
      measured:
        `${fixed(lots, 3)}× bare with ${int(many)} users, ${fixed(one, 3)}× with 1 ` +
        `(fastest runs ${fastest(lotsCase)}× and ${fastest(oneCase)}×; ${int(many)} users ` +
        `over 1 in the same repetition, median ${fixed(pairedRatio(oneCase, lotsCase), 3)}×)`,
      pass: one === undefined || lots === undefined ? undefined : lots >= one - USERS_TOLERANCE,
    });
  }
  list.push(...microTargets(results));
  return list;
}

// ---------------------------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------------------------

/** The main suite's cases on one adapter. */
function platformCases(s: HttpSuite, platform: HttpPlatformName): HttpCase[] {
  return s.cases.filter((c) => VARIANTS[c.variant].platform === platform);
}

/**
 * The main suite's table for one adapter; ratios are to the bare app on that adapter. The Fastify
 * table adds the CPU ratio to the no-op guard its targets are judged on.
 */
function httpMainTable(results: BenchResults, s: HttpSuite, platform: HttpPlatformName): string {
  const withCpuRatio = platform === 'fastify';
  return table(
    [
      'Variant',
      'req/s',
      '× bare',
      '× bare, per run',
      '× bare, fastest runs',
      'p50 ms',
      'p99 ms',
      'server CPU µs/req',
      ...(withCpuRatio ? ['no-op guard CPU/req ÷ this (per run)'] : []),
      'server RSS MB (end / peak)',
      'redis CPU µs/req',
      'Redis calls/req',
      'status',
    ],
    platformCases(s, platform).map((c) => {
      const m = c.summary;
      const range = m?.ratioRange;
      const cpu = withCpuRatio ? cpuRatioToNoop(results, c) : undefined;
      return [
        c.label,
        int(m?.requestsPerSecond),
        fixed(m?.ratioToBare, 3),
        range === undefined ? DASH : `${fixed(range[0], 3)}–${fixed(range[1], 3)}`,
        fixed(fastestRatio(results, s.id, c), 3),
        fixed(m?.p50Ms, 2),
        fixed(m?.p99Ms, 2),
        fixed(m?.serverCpuUsPerRequest, 1),
        ...(cpu === undefined
          ? []
          : [
              fixed(cpu.median, 3) +
                (cpu.range === undefined
                  ? ''
                  : ` (${fixed(cpu.range[0], 3)}–${fixed(cpu.range[1], 3)})`),
            ]),
        `${mb(m?.serverRssBytes)} / ${mb(m?.serverMaxRssBytes)}`,
        fixed(m?.redisCpuUsPerRequest, 1),
        fixed(m?.redisCommandsPerRequest, 2),
        statusCell(c),
      ];
    }),
  );
}

/** The sentences above the Fastify table: what it compares, and Fastify's bare app against Express's. */
function fastifyIntro(results: BenchResults, s: HttpSuite): string {
  const express = httpCase(results, 'main', 'bare')?.summary;
  const fastify = httpCase(results, 'main', 'fastify-bare')?.summary;
  const drivers = platformCases(s, 'fastify').flatMap((c) => c.runs.map((r) => r.driverCpuShare));
  const busiestDriver = drivers.length === 0 ? undefined : Math.max(...drivers);
  const speed = ratio(fastify?.requestsPerSecond, express?.requestsPerSecond);
  const cpu = ratio(express?.serverCpuUsPerRequest, fastify?.serverCpuUsPerRequest);
  return (
    'The same controller, identity (the client IP) and limits as the Express rows, on ' +
    '`@nestjs/platform-fastify` (`new FastifyAdapter()`, its defaults), measured in the same ' +
    'interleaved run; ratios are to the bare Fastify app. ' +
    `Fastify's bare app served ${fixed(speed, 2)}× the req/s of Express's and used ` +
    `${fixed(fastify?.serverCpuUsPerRequest, 1)} µs of server CPU per request against ` +
    `${fixed(express?.serverCpuUsPerRequest, 1)} (${fixed(cpu, 2)}× less), so a limiter's own ` +
    'cost weighs that much more here. ' +
    `The load generator used up to ${percent(busiestDriver)} of its core during these runs; ` +
    (busiestDriver !== undefined && busiestDriver >= 0.9
      ? 'it was close to saturation, so req/s understates the gaps, '
      : '') +
    "which is why the Fastify targets compare server CPU per request with the no-op guard's " +
    "(the guard's µs/req over the row's: 1 = nothing beyond the cost of any guard)."
  );
}

function statusCell(c: HttpCase): string {
  const m = c.summary;
  if (m === undefined || c.runs.length === 0) return 'not run';
  const problems: string[] = [];
  if (m.unexpectedStatus > 0) problems.push(`${int(m.unexpectedStatus)} not ${c.expectedStatus}`);
  if (m.errors > 0) problems.push(`${int(m.errors)} errors`);
  // This module batches the decisions of one event-loop iteration into one script call (and
  // answers a blocked caller locally), so fewer calls than requests is its design, not a lapse.
  const batches = /^(fastify-)?ratelimit-/.test(c.variant);
  if (!batches && m.redisCommandsPerRequest !== undefined && m.redisCommandsPerRequest < 0.95) {
    problems.push('requests passed without a Redis decision');
  }
  return problems.length === 0 ? `all ${c.expectedStatus}` : problems.join(', ');
}

function httpUsersTable(results: BenchResults, s: HttpSuite): string {
  return table(
    [
      'Variant',
      'users',
      'req/s',
      '× bare (same users)',
      '× bare, fastest runs',
      'p50 ms',
      'p99 ms',
      'server CPU µs/req',
      'server RSS MB (end / peak)',
      'status',
    ],
    s.cases.map((c) => {
      const m = c.summary;
      return [
        c.label,
        int(c.users),
        int(m?.requestsPerSecond),
        fixed(m?.ratioToBare, 3),
        fixed(fastestRatio(results, s.id, c), 3),
        fixed(m?.p50Ms, 2),
        fixed(m?.p99Ms, 2),
        fixed(m?.serverCpuUsPerRequest, 1),
        `${mb(m?.serverRssBytes)} / ${mb(m?.serverMaxRssBytes)}`,
        statusCell(c),
      ];
    }),
  );
}

function runsTable(s: HttpSuite): string {
  const rows: string[][] = [];
  for (const c of s.cases) {
    for (const run of c.runs) {
      rows.push([
        `${c.label}${s.id === 'users' ? `, ${int(c.users)} users` : ''}`,
        String(run.repetition),
        int(run.requestsPerSecond),
        fixed(run.p50Ms, 2),
        fixed(run.p99Ms, 2),
        fixed(run.serverCpuUsPerRequest, 1),
        percent(run.serverCpuShare),
        percent(run.driverCpuShare),
        percent(run.otherCpuShare) +
          (run.remeasuredAfterOtherCpuShare === undefined
            ? ''
            : ` (2nd attempt; 1st: ${percent(run.remeasuredAfterOtherCpuShare)})`),
        fixed(run.waitedForQuietSeconds, 0),
      ]);
    }
  }
  return table(
    [
      'Case',
      'rep',
      'req/s',
      'p50 ms',
      'p99 ms',
      'server µs/req',
      'server CPU',
      'driver CPU',
      'other processes CPU',
      'waited for quiet, s',
    ],
    rows,
  );
}

function isolatedText(inServerUs: number | undefined, isolatedUs: number): string {
  const factor = inServerUs === undefined ? undefined : inServerUs / isolatedUs;
  return (
    `In isolation (micro-benchmarks), \`RateLimitService.check()\` on a fake context takes ` +
    `${fixed(isolatedUs, 2)} µs` +
    (factor !== undefined && factor >= 2
      ? `, ${fixed(factor, 1)}× less: the same code runs much slower between real requests ` +
        '(cold caches, the garbage collection of what each request allocates, polymorphic ' +
        'request objects) than in a hot loop, so allocations and steps per request matter more ' +
        'than the loop suggests.'
      : '.')
  );
}

/** Rows of the "self time by origin" table; the rest are summed in one row. */
const TOP_ORIGINS = 14;

function profileSection(results: BenchResults): string {
  const p = results.profile;
  if (p === undefined) return '';
  const s: ProfileSummary = p.summary;
  const fn = (list: ProfileSummary['topFunctions']): string =>
    table(
      ['Function', 'origin', 'self ms', 'share'],
      list.map((f) => [f.function, f.origin, fixed(f.selfMs, 1), `${fixed(f.share * 100, 1)} %`]),
    );
  const timing = p.guardTiming;
  const check = results.micro?.decisions.find((d) =>
    d.subject.includes('RateLimitService.check()'),
  );
  const timingText: string[] =
    timing === undefined
      ? []
      : [
          '### The guard inside the server',
          '',
          `On a separate, unprofiled server under the same load, every ` +
            '`RateLimitGuard.canActivate` call was timed (wall clock; the memory backend decides ' +
            `synchronously): ${fixed(median(timing.guardUsPerRequest), 2)} µs per request ` +
            `(runs: ${timing.guardUsPerRequest.map((v) => fixed(v, 2)).join(', ')}), while the ` +
            `server spent ${fixed(median(timing.serverCpuUsPerRequest), 1)} µs of CPU per request ` +
            'in all. ' +
            (check === undefined
              ? ''
              : isolatedText(median(timing.guardUsPerRequest), 1e6 / check.perSecond)),
          '',
        ];
  return [
    `## CPU profile: ${VARIANTS[p.variant].label}`,
    '',
    `Taken because ${p.reason}: the server ran under \`node --cpu-prof\` for ${p.seconds} s of the ` +
      `same load. Self time of ${fixed(s.totalMs / 1000, 1)} s of samples, idle included. File ` +
      'names and lines are of the built JavaScript (dist/ for this library).',
    '',
    '### Self time by origin',
    '',
    table(
      ['Origin', 'self ms', 'share'],
      [
        ...s.byOrigin
          .slice(0, TOP_ORIGINS)
          .map((o) => [o.origin, fixed(o.selfMs, 1), `${fixed(o.share * 100, 1)} %`]),
        ...(s.byOrigin.length > TOP_ORIGINS
          ? [
              [
                `${s.byOrigin.length - TOP_ORIGINS} other origins`,
                fixed(
                  s.byOrigin.slice(TOP_ORIGINS).reduce((sum, o) => sum + o.selfMs, 0),
                  1,
                ),
                `${fixed(s.byOrigin.slice(TOP_ORIGINS).reduce((sum, o) => sum + o.share, 0) * 100, 1)} %`,
              ],
            ]
          : []),
      ],
    ),
    '',
    '### Top functions, every origin',
    '',
    fn(s.topFunctions),
    '',
    '### Top functions of nestjs-ratelimit (dist/)',
    '',
    fn(s.topLibraryFunctions),
    '',
    ...timingText,
  ].join('\n');
}

function generatedNotes(results: BenchResults): string[] {
  const notes: string[] = [];
  const main = suite(results, 'main');
  const bare = httpCase(results, 'main', 'bare')?.summary;
  const noop = httpCase(results, 'main', 'noop-guard')?.summary;
  if (noop?.ratioToBare !== undefined && noop.ratioToBare < 1) {
    notes.push(
      `A global guard that does nothing already costs ${fixed((1 - noop.ratioToBare) * 100, 1)} % ` +
        `of the bare app's throughput here (${fixed(noop.ratioToBare, 3)}×): that is the floor ` +
        'for any guard-based limiter, this one included.',
    );
  } else if (noop?.ratioToBare !== undefined) {
    notes.push(
      `A global guard that does nothing ran at ${fixed(noop.ratioToBare, 3)}× the bare app here: ` +
        'its cost is below what this machine can measure. A ratio above 1 means no measurable ' +
        'cost, not a speed-up.',
    );
  }
  const busiestDriver = Math.max(
    0,
    // Express's rows only: the Fastify section says the same of its own.
    ...((main === undefined ? [] : platformCases(main, 'express')).flatMap((c) =>
      c.runs.map((r) => r.driverCpuShare),
    ) ?? []),
  );
  if (bare?.requestsPerSecond !== undefined) {
    notes.push(
      `The load generator (autocannon, in the driver process) used up to ` +
        `${percent(busiestDriver)} of one core in the main suite's Express runs; the server used ` +
        `${percent(median(httpCase(results, 'main', 'bare')?.runs.map((r) => r.serverCpuShare) ?? []))} ` +
        'of one core for the bare app. ' +
        (busiestDriver >= 0.9
          ? 'The driver was close to saturating its core, so the fastest variants may be held ' +
            'back by the load generator and their ratios understate the gaps.'
          : 'The server, not the driver, was the bottleneck.'),
    );
  }
  const bareRuns = httpCase(results, 'main', 'bare')?.runs.map((r) => r.requestsPerSecond) ?? [];
  if (bareRuns.length > 1) {
    const low = Math.min(...bareRuns);
    const high = Math.max(...bareRuns);
    notes.push(
      `Run-to-run noise: the same bare app served ${int(low)} to ${int(high)} req/s over its ` +
        `${bareRuns.length} runs (the fastest ${fixed((high / low - 1) * 100, 0)} % above the slowest). ` +
        'Differences between variants smaller than that spread need the per-run ratio ranges and ' +
        'the table of every run before they mean much. Such disturbances only ever slow a run ' +
        'down, so the "fastest runs" column (the best run of a variant over the best run of the ' +
        'bare app) is shown beside the medians; the targets are judged on the medians.',
    );
  }
  const waits = results.http.suites.flatMap((s) =>
    s.cases.flatMap((c) => c.runs.map((r) => r.waitedForQuietSeconds ?? 0)),
  );
  const waited = waits.filter((w) => w >= 2);
  if (waited.length > 0) {
    notes.push(
      `Before ${waited.length} of ${waits.length} HTTP runs the driver waited for other processes ` +
        `to go quiet (${fixed(
          waited.reduce((a, b) => a + b, 0),
          0,
        )} s in all, within a budget of ` +
        `${results.http.settings.quietWaitBudgetSeconds} s for the whole run).`,
    );
  }
  const others = results.http.suites.flatMap((s) =>
    s.cases.flatMap((c) => c.runs.map((r) => r.otherCpuShare ?? 0)),
  );
  if (others.length > 0) {
    const busy = others.filter((share) => share >= 0.1).length;
    notes.push(
      busy === 0
        ? 'No other process used more than 10 % of a core during any measured HTTP run ' +
            '(/proc/stat minus the driver, the server and redis-server).'
        : `Other processes on the machine used 10 % of a core or more during ${busy} of ` +
            `${others.length} measured HTTP runs (up to ${percent(Math.max(...others))}; see the ` +
            '"other processes CPU" column of every run): those runs are less reliable, and ' +
            'interleaving spreads the disturbance over the variants rather than removing it.',
    );
  }
  for (const s of results.http.suites) {
    for (const c of s.cases) {
      if (c.summary !== undefined && (c.summary.unexpectedStatus > 0 || c.summary.errors > 0)) {
        notes.push(`${c.label} (${s.id} suite): ${statusCell(c)}.`);
      }
    }
  }
  return notes;
}

const FIXED_NOTES = [
  'Every process of the benchmark shares one machine: the driver (autocannon), the server under ' +
    'test and, for the Redis variants, redis-server. When it can, the benchmark pins each HTTP ' +
    'server alone on the last core and the driver with redis-server on the others, so the load ' +
    "generator never takes the server's core; the server's garbage collector threads then share " +
    'its one core too, as in a one-vCPU container. The micro-benchmarks run unpinned. Absolute ' +
    'numbers are lower than on a dedicated load generator and a multi-core server.',
  'Each variant runs in its own server process, started once per suite and warmed up; the runs ' +
    'then go interleaved (a b c … c b a …: odd repetitions in order, even ones in reverse, so ' +
    'no variant always follows the same one), each after a short warm-up (and, for the Redis ' +
    'variants, a FLUSHALL), so drift in the machine spreads over every variant and each run of a ' +
    'variant is close in time to a run of the bare app. Ratios are the median req/s of a variant ' +
    'over the median of the bare app in the same suite; "per run" is the range of each run ' +
    'against the bare run of the same repetition.',
  'Latency percentiles are computed by the driver from every response (sub-millisecond, not ' +
    "autocannon's 1 ms histogram buckets). Server CPU is process.cpuUsage() of the server " +
    'process over the measured run divided by its responses; RSS is read at the end of the run ' +
    '(peak = maxRSS since the process started). Redis CPU is the redis-server process from ' +
    '/proc/<pid>/stat (clock-tick resolution).',
  "@nestjs/throttler's in-memory storage keeps one array entry per hit inside the window and " +
    'filters the array on every request, so with one busy key its cost grows with the window: the ' +
    '60 s row and the 1 s row show that effect.',
  'Micro-benchmarks run in their own processes: decisions/s in one, and each heap-per-key ' +
    'measurement in a fresh process with --expose-gc (heapUsed after full GCs, before and after ' +
    'filling the keys, divided by the keys). The Map yardstick holds the same flat key strings the ' +
    "MemoryBackend stores. rate-limiter-flexible's and @nestjs/throttler's stores are filled " +
    'with the bare user ids through their own APIs.',
  'Commands per decision: INFO commandstats counts every command Redis executed, including those ' +
    'a Lua script runs; MONITOR tells them apart (source "lua"), so "sent per decision" is the ' +
    'number of commands (round trips) the client sent.',
];

export function render(results: BenchResults): string {
  const out: string[] = [];
  const quick = results.mode === 'quick';
  out.push(
    `# Benchmark results${quick ? ' (quick smoke run: too short to quote)' : ''}`,
    '',
    `Generated by \`${results.command}\` from \`${quick ? 'dist-bench/results.quick.json' : 'bench/results.json'}\`; ` +
      'every number below comes from that file. Do not edit by hand: run the benchmark again.',
    '',
    `- Date: ${results.startedAt} to ${results.finishedAt ?? DASH} (total ${duration(results.totalSeconds)})`,
    `- Machine: ${results.machine.cpuModel}, ${results.machine.cores} cores, ` +
      `${fixed(results.machine.memoryBytes / 1024 ** 3, 1)} GiB RAM, ${results.machine.os}, kernel ${results.machine.kernel}`,
    `- Versions: ${Object.entries(results.versions)
      .map(([name, version]) => `${name} ${version}`)
      .join(', ')}`,
    `- CPU: ${results.cpuPinning}. Load average (1/5/15 min) ${loadAverage(results.loadAverage.start)} ` +
      `at the start, ${loadAverage(results.loadAverage.end)} at the end.`,
    `- HTTP load: autocannon as a library, ${results.http.settings.connections} connections, ` +
      `pipelining 1, loopback (127.0.0.1) only; each server warmed up for ${results.http.settings.warmupSeconds} s ` +
      `when it starts, then ${results.http.settings.runWarmupSeconds} s warm-up + ` +
      `${results.http.settings.durationSeconds} s measured per run; ${results.http.settings.repetitions} ` +
      `interleaved repetition(s) of the one-busy-key suite and ${results.http.settings.usersRepetitions} ` +
      'of the users suite, medians.',
    '',
    '## How to run',
    '',
    '```sh',
    'npm run bench        # the full run: builds dist/, compiles bench/, writes bench/results.json and this file',
    'npm run bench:quick  # a smoke run of a few minutes; writes dist-bench/results.quick.json and RESULTS.quick.md',
    'npm run bench:quick -- --micro-only  # the micro-benchmarks alone, about a minute; writes dist-bench/results.quick-micro.json and RESULTS.quick-micro.md',
    '```',
    '',
    'It needs `redis-server` on the PATH: the benchmark starts its own on a free loopback port ' +
      'through the test harness (`test/support/redis-harness.ts`) and stops it at the end.',
    '',
    '## Targets of issues 4, 12, 13, 14 and 15',
    '',
    table(
      ['Target', 'Measured', 'Result'],
      targets(results).map((t) => [t.target, t.measured, verdict(t.pass)]),
    ),
    '',
    'Each **miss** is analysed by hand, with a CPU profile and a plan, in ' +
      '[`MISSES.md`](MISSES.md), which names the run it was written for.',
    '',
  );

  const main = suite(results, 'main');
  if (main !== undefined) {
    out.push(`## HTTP on Express: ${main.title}`, '', httpMainTable(results, main, 'express'), '');
    if (platformCases(main, 'fastify').length > 0) {
      out.push(
        `## HTTP on Fastify: ${main.title}`,
        '',
        fastifyIntro(results, main),
        '',
        httpMainTable(results, main, 'fastify'),
        '',
      );
    }
  }
  const users = suite(results, 'users');
  if (users !== undefined) {
    out.push(
      `## HTTP: ${users.title}`,
      '',
      'Every variant identifies the caller by the `x-user` header here (a custom `authenticate` ' +
        'function for this module, `getTracker` for @nestjs/throttler, the key passed to ' +
        '`consume()` for rate-limiter-flexible); the driver cycles the user ids request by ' +
        'request. Ratios are against the bare app loaded the same way.',
      '',
      httpUsersTable(results, users),
      '',
    );
  }

  out.push(...microSection(results));

  const profile = profileSection(results);
  if (profile !== '') out.push(profile);

  out.push('## Notes', '');
  for (const note of [...generatedNotes(results), ...FIXED_NOTES]) out.push(`- ${note}`);
  out.push('');
  if (results.problems.length > 0) {
    out.push('## Problems during the run', '');
    for (const problem of results.problems) out.push(`- ${problem.split('\n')[0]}`);
    out.push('');
  }
  if (main !== undefined || users !== undefined) {
    out.push('## Every HTTP run', '');
    for (const s of [main, users]) {
      if (s !== undefined) out.push(`### ${s.title}`, '', runsTable(s), '');
    }
  }
  out.push('## Variants', '');
  for (const info of Object.values(VARIANTS)) out.push(`- **${info.label}**: ${info.description}`);
  out.push('');
  return out.join('\n');
}
