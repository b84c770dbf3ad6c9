/**
 * The micro-benchmark parts of `RESULTS.md`: their targets (issues 4, 12 and 14) and their plain
 * tables. Every number comes from `results.json`; rows are found by subject name (`jobs.ts`).
 *
 * @module
 */
import type { RateLimitAlgorithm } from 'nestjs-ratelimit';
import {
  INCR_SUBJECT,
  MEMORY_AT_CAPACITY_SUBJECT,
  memorySubject,
  O1_ALGORITHMS,
  REDIS_ALGORITHMS,
  redisSubject,
  RLF_REDIS_PLAIN_SUBJECT,
  RLF_REDIS_SUBJECT,
  SLIDING_REDIS_SUBJECT,
  type ClientOrigin,
} from '../micro/jobs.js';
import type { BenchResults, DecisionRate, MicroResults } from '../support/results.js';
import { ratio } from '../support/stats.js';
import { allPass, atLeast, atMost, DASH, fixed, int, mb, table, type Target } from './format.js';

/** Calls in flight of the throughput and CPU targets. */
const IN_FLIGHT = 256;

/** Issue 14: Redis CPU per decision, own client, one-unit rule, 256 in flight, µs. */
const REDIS_CPU_BOUNDS: readonly [RateLimitAlgorithm, number][] = [
  ['fixed-window', 4],
  ['token-bucket', 4],
  ['sliding-window', 5],
];
/** Issue 14: decisions/s at least raw INCR's, own client, for these. */
const AS_FAST_AS_INCR: readonly RateLimitAlgorithm[] = ['fixed-window', 'token-bucket'];
const MEMORY_RATE_BOUND = 3_000_000;
const MEMORY_RATE_ALGORITHMS: readonly RateLimitAlgorithm[] = ['fixed-window', 'token-bucket'];
const HEAP_BOUND = 150;

function rate(
  results: BenchResults,
  subject: string,
  keys: number,
  inFlight: number | undefined,
): DecisionRate | undefined {
  return results.micro?.decisions.find(
    (d) => d.subject === subject && d.keys === keys && d.inFlight === inFlight,
  );
}

function keyCounts(results: BenchResults): number[] {
  return [1, results.micro?.settings.manyKeys ?? 100_000];
}

function keysLabel(keys: number): string {
  return `${int(keys)} key${keys === 1 ? '' : 's'}`;
}

/** The rate-limiter-flexible row on the same kind of client as `subject`. */
function rlfPeer(subject: string): string {
  return subject.endsWith('passed in') ? RLF_REDIS_PLAIN_SUBJECT : RLF_REDIS_SUBJECT;
}

/** Redis CPU per decision of an algorithm's subject, against rate-limiter-flexible's. */
function redisCpuTarget(
  results: BenchResults,
  algorithm: RateLimitAlgorithm,
  origin: ClientOrigin,
  bound: number | undefined,
): Target {
  const subject = redisSubject(algorithm, origin);
  const peer = rlfPeer(subject);
  const parts = keyCounts(results).map((keys) => {
    const ours = rate(results, subject, keys, IN_FLIGHT)?.redisCpuUsPerCall;
    const theirs = rate(results, peer, keys, IN_FLIGHT)?.redisCpuUsPerCall;
    const r = ratio(ours, theirs);
    return {
      text: `${keysLabel(keys)}: ${fixed(ours, 2)} vs ${fixed(theirs, 2)} µs = ${fixed(r, 2)}×`,
      pass:
        origin === 'own'
          ? allPass([atMost(ours, bound ?? Infinity), atMost(r, 0.5)])
          : atMost(r, 1),
    };
  });
  const what =
    origin === 'own'
      ? `≤ ${bound} µs and ≤ 0.5× RateLimiterRedis (its README client)`
      : 'no worse than RateLimiterRedis on the same plain client';
  return {
    target:
      `RedisBackend ${algorithm}, ${origin === 'own' ? 'own client' : 'new Redis(url) passed in'}: ` +
      `Redis CPU per decision at ${IN_FLIGHT} in flight ${what}`,
    measured: parts.map((p) => p.text).join('; '),
    pass: allPass(parts.map((p) => p.pass)),
  };
}

/** The micro-benchmark rows of the targets table. */
export function microTargets(results: BenchResults): Target[] {
  const list: Target[] = [];
  const micro = results.micro;
  const manyKeys = micro?.settings.manyKeys ?? 100_000;

  const memoryRates = MEMORY_RATE_ALGORITHMS.map((algorithm) => ({
    algorithm,
    perSecond: rate(results, memorySubject(algorithm), manyKeys, undefined)?.perSecond,
  }));
  list.push({
    target: `MemoryBackend ≥ ${int(MEMORY_RATE_BOUND)} decisions/s on ${int(manyKeys)} keys, ${MEMORY_RATE_ALGORITHMS.join(' and ')}`,
    measured: memoryRates.map((r) => `${r.algorithm} ${int(r.perSecond)}/s`).join('; '),
    pass: allPass(memoryRates.map((r) => atLeast(r.perSecond, MEMORY_RATE_BOUND))),
  });

  // Issue 12: eviction must stay O(1), so a flood of new identities cannot stall the backend.
  const notFull = memoryRates[0]?.perSecond;
  const full = rate(results, MEMORY_AT_CAPACITY_SUBJECT, manyKeys, undefined)?.perSecond;
  const fullRatio = ratio(full, notFull);
  list.push({
    target: `MemoryBackend at maxKeys ${int(manyKeys)}, a new identity per decision ≥ 0.10× not full (fixed-window)`,
    measured: `${int(full)} vs ${int(notFull)} decisions/s = ${fixed(fullRatio, 3)}×`,
    pass: atLeast(fullRatio, 0.1),
  });

  const heaps = O1_ALGORITHMS.map((algorithm) => ({
    algorithm,
    heap: micro?.heap.find((h) => h.subject === memorySubject(algorithm)),
  }));
  list.push({
    target: `MemoryBackend ≤ ${HEAP_BOUND} bytes per tracked key, every O(1) algorithm`,
    measured:
      heaps.map((h) => `${h.algorithm} ${fixed(h.heap?.bytesPerKey, 1)}`).join(', ') +
      ` bytes/key (${int(micro?.settings.heapKeys)} keys)`,
    pass: allPass(heaps.map((h) => atMost(h.heap?.bytesPerKey, HEAP_BOUND))),
  });

  const timers = O1_ALGORITHMS.map((algorithm) => {
    const phases = micro?.timers.filter((t) => t.subject === memorySubject(algorithm)) ?? [];
    const intervals = phases.reduce((sum, t) => sum + t.setInterval, 0);
    const timeouts = phases.reduce((sum, t) => sum + t.setTimeout, 0);
    return {
      text: `${algorithm} ${phases.length === 0 ? DASH : `${intervals} / ${timeouts}`}`,
      pass: phases.length === 0 ? undefined : intervals <= 1 && timeouts === 0,
    };
  });
  list.push({
    target: 'MemoryBackend: no growth in timers (at most the one sweep setInterval, no setTimeout)',
    measured: `setInterval / setTimeout calls over the fill and as many decisions again: ${timers.map((t) => t.text).join(', ')}`,
    pass: allPass(timers.map((t) => t.pass)),
  });

  const commands = [
    ...REDIS_ALGORITHMS.map((a) => redisSubject(a, 'own')),
    SLIDING_REDIS_SUBJECT,
  ].map((subject) => {
    const count = micro?.commands.find((c) => c.subject === subject);
    return {
      text: `${subject.replace(/^nestjs-ratelimit (RedisBackend, )?/, '').replace(', own client', '')} ${fixed(count?.sentPerDecision, 2)}`,
      pass: count?.sentPerDecision === undefined ? undefined : count.sentPerDecision === 1,
    };
  });
  list.push({
    target:
      'RedisBackend (every algorithm) and SlidingRedisBackend: exactly one command per decision',
    measured: `sent per decision (MONITOR): ${commands.map((c) => c.text).join(', ')}`,
    pass: allPass(commands.map((c) => c.pass)),
  });

  for (const [algorithm, bound] of REDIS_CPU_BOUNDS) {
    list.push(redisCpuTarget(results, algorithm, 'own', bound));
  }
  for (const [algorithm] of REDIS_CPU_BOUNDS) {
    list.push(redisCpuTarget(results, algorithm, 'passed', undefined));
  }
  for (const algorithm of AS_FAST_AS_INCR) {
    const subject = redisSubject(algorithm, 'own');
    const parts = keyCounts(results).map((keys) => {
      const ours = rate(results, subject, keys, IN_FLIGHT)?.perSecond;
      const bound = rate(results, INCR_SUBJECT, keys, IN_FLIGHT)?.perSecond;
      const r = ratio(ours, bound);
      return {
        text: `${keysLabel(keys)}: ${int(ours)} vs ${int(bound)}/s = ${fixed(r, 3)}×`,
        pass: atLeast(r, 1),
      };
    });
    list.push({
      target: `RedisBackend ${algorithm}, own client: decisions/s at ${IN_FLIGHT} in flight ≥ raw ioredis INCR`,
      measured: parts.map((p) => p.text).join('; '),
      pass: allPass(parts.map((p) => p.pass)),
    });
  }
  return list;
}

function decisionsTable(results: BenchResults, micro: MicroResults): string {
  return table(
    [
      'Subject',
      'keys',
      'in flight',
      'decisions/s',
      'vs INCR (same keys, in flight)',
      'client CPU µs/decision',
      'redis CPU µs/decision',
      'samples',
    ],
    micro.decisions.map((d) => {
      const bound =
        d.inFlight === undefined
          ? undefined
          : rate(results, INCR_SUBJECT, d.keys, d.inFlight)?.perSecond;
      return [
        d.subject,
        int(d.keys),
        d.inFlight === undefined ? 'sync' : String(d.inFlight),
        int(d.perSecond),
        bound === undefined || d.subject === INCR_SUBJECT
          ? DASH
          : `${fixed(d.perSecond / bound, 3)}×`,
        fixed(d.clientCpuUsPerCall, 2),
        fixed(d.redisCpuUsPerCall, 2),
        d.samples.map((x) => int(x)).join(', '),
      ];
    }),
  );
}

/** The Redis rows at 256 in flight: what each decision costs redis-server, beside the peers'. */
function redisCpuTable(results: BenchResults, micro: MicroResults): string {
  const rows = micro.decisions.filter(
    (d) => d.inFlight === IN_FLIGHT && d.redisCpuUsPerCall !== undefined,
  );
  return table(
    [
      'Subject',
      'keys',
      'redis CPU µs/decision',
      '× RateLimiterRedis (same kind of client)',
      'client CPU µs/decision',
      'decisions/s',
      '× INCR',
    ],
    rows.map((d) => {
      const peer = rlfPeer(d.subject);
      const peerCpu = rate(results, peer, d.keys, IN_FLIGHT)?.redisCpuUsPerCall;
      const incr = rate(results, INCR_SUBJECT, d.keys, IN_FLIGHT)?.perSecond;
      return [
        d.subject,
        int(d.keys),
        fixed(d.redisCpuUsPerCall, 2),
        d.subject.startsWith('nestjs-ratelimit')
          ? fixed(ratio(d.redisCpuUsPerCall, peerCpu), 2)
          : DASH,
        fixed(d.clientCpuUsPerCall, 2),
        int(d.perSecond),
        d.subject === INCR_SUBJECT ? DASH : fixed(ratio(d.perSecond, incr), 3),
      ];
    }),
  );
}

function commandsTable(micro: MicroResults): string {
  return table(
    ['Subject', 'sent per decision', 'run in scripts', 'executed (commandstats)', 'by command'],
    micro.commands.map((c) => [
      c.subject,
      fixed(c.sentPerDecision, 2),
      fixed(c.inScriptsPerDecision, 2),
      fixed(c.executedPerDecision, 2),
      Object.entries(c.byCommand)
        .sort((a, b) => b[1] - a[1])
        .map(([name, n]) => `${name} ${fixed(n, 2)}`)
        .join(', '),
    ]),
  );
}

function redisMemoryTable(micro: MicroResults): string {
  const list = micro.redisMemory ?? [];
  return table(
    [
      'Subject',
      'bytes after 1 decision',
      `bytes after ${list[0]?.decisionsLater ?? DASH} decisions`,
      'keys written',
    ],
    list.map((m) => [
      m.subject,
      int(m.bytesAfterOne),
      int(m.bytesAfterLater),
      m.keys.map((k) => `\`${k}\``).join(', '),
    ]),
  );
}

/** The "Micro-benchmarks" section. */
export function microSection(results: BenchResults): string[] {
  const m = results.micro;
  if (m === undefined) return [];
  const s = m.settings;
  return [
    '## Micro-benchmarks (no HTTP)',
    '',
    'Every backend subject decides a one-unit rule (`{ minute: 1e8 }`, every decision admitted) for ' +
      "one query per key built up front. MemoryBackend runs each O(1) algorithm (the query's " +
      '`algorithm`; not the sliding log, which at that limit would measure a log of millions of ' +
      'entries), called synchronously in a loop; RedisBackend runs each algorithm (its ' +
      '`algorithm` option) on the client it creates from a URL ("own client") and on a plain ' +
      '`new Redis(url)` passed in. Awaited subjects run with 1 call in flight or 256 at once.',
    '',
    `### Decisions per second`,
    '',
    `Median of ${s.samples} sample(s) of ${s.sampleMs} ms after a ${s.warmupMs} ms warm-up. The ` +
      'subjects of one case (same keys, same calls in flight) are measured interleaved, one ' +
      'sample each per round, the first moving on each round; the samples column lists them in ' +
      'round order. Client CPU is this process (the library, ioredis), redis CPU the redis-server ' +
      'process. The row at maxKeys is a MemoryBackend with maxKeys = ' +
      `${int(s.manyKeys)}, filled, then sent a new identity each decision.`,
    '',
    decisionsTable(results, m),
    '',
    `### Redis CPU per decision, ${IN_FLIGHT} in flight`,
    '',
    "The rows above at 256 in flight, with redis-server's CPU per decision against " +
      "rate-limiter-flexible's RateLimiterRedis on the same kind of client (its README client for " +
      'an own client, the same plain `new Redis(url)` for one passed in).',
    '',
    redisCpuTable(results, m),
    '',
    '### Redis commands per decision',
    '',
    `INFO commandstats over ${int(s.commandStatsDecisions)} decisions, MONITOR over ` +
      `${int(s.monitorDecisions)} more (one at a time, ${int(s.manyKeys)} keys).`,
    '',
    commandsTable(m),
    '',
    '### Redis memory per counter',
    '',
    'One user of the one-unit rule (user `user-0`, scope `path:/hello`, method `*`): the sum of ' +
      '`MEMORY USAGE <key> SAMPLES 0` over every key in the flushed database, after the first ' +
      "decision and after more. It counts each key's name, value and overhead, not the entry of its " +
      'expiry.',
    '',
    redisMemoryTable(m),
    '',
    '### Heap per tracked key',
    '',
    table(
      ['Store', 'keys', 'entries tracked', 'bytes/key', 'heap before → after MB', 'fill s', 'note'],
      m.heap.map((h) => [
        h.subject,
        int(h.keys),
        int(h.trackedEntries),
        fixed(h.bytesPerKey, 1),
        `${mb(h.heapBeforeBytes)} → ${mb(h.heapAfterBytes)}`,
        fixed(h.fillSeconds, 2),
        h.note,
      ]),
    ),
    '',
    '### Timers created',
    '',
    'Calls of the global `setInterval` / `setTimeout` while each store runs.',
    '',
    table(
      ['Store', 'phase', 'setInterval', 'setTimeout'],
      m.timers.map((t) => [t.subject, t.phase, int(t.setInterval), int(t.setTimeout)]),
    ),
    '',
  ];
}
