/**
 * Micro-benchmarks without HTTP, in their own process (`node decisions.js '<job as JSON>'`, forked
 * with IPC): decisions per second of each backend on 1 key and on many keys (and of MemoryBackend
 * at maxKeys, every decision a new identity), the Redis backends with 1 and 256 calls in flight
 * beside raw ioredis `INCR` (the bound), and the Redis commands one decision costs.
 *
 * @module
 */
import 'reflect-metadata';
import { Controller, Get, Module, type ExecutionContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import { ThrottlerStorageService } from '@nestjs/throttler';
import { Redis } from 'ioredis';
import {
  MemoryBackend,
  RateLimitModule,
  RateLimitService,
  RedisBackend,
  Rule,
  SlidingRedisBackend,
  type ConsumeQuery,
  type RateLimitBackend,
} from 'nestjs-ratelimit';
import { RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible';
import type { MicroSettings } from '../support/mode.js';
import { parseCommandStats } from '../support/commandstats.js';
import type { CommandCount } from '../support/results.js';
import { sleep } from '../support/stats.js';
import { MEMORY_AT_CAPACITY_SUBJECT, type DecisionsJob, type DecisionsMessage } from './jobs.js';
import { asyncRate, RateSamples, sampleRate, syncRate } from './measure.js';

/** Far above any sample's calls, so every decision is admitted (limit 1e8 per minute). */
const LIMIT = 100_000_000;
const WINDOW_SECONDS = 60;
const MONITOR_SETTLE_MS = 2_000;
const IN_FLIGHT = [1, 256] as const;

const rule = new Rule({ minute: LIMIT });
const MEMORY_SUBJECT = 'nestjs-ratelimit MemoryBackend';
const SERVICE_CHECK_SUBJECT = 'nestjs-ratelimit RateLimitService.check(), fake HTTP context';

function userId(i: number): string {
  return `user-${i}`;
}

/** One ConsumeQuery per key, built up front: the backend's cost, not the query's. */
function queries(keys: number): ConsumeQuery[] {
  return Array.from({ length: keys }, (_, i) => ({
    counter: { user: userId(i), scope: 'path:/hello', method: '*' },
    limits: rule.limits,
    blockMs: 0,
  }));
}

/** What one decision is, for a subject measured with calls in flight. */
interface AsyncSubject {
  readonly name: string;
  /** Decides (or counts) for key number `key`. */
  decide(key: number): Promise<unknown>;
  /** Rejections seen (should stay 0: every limit is far above the calls made). */
  rejected(): number;
  close(): Promise<void>;
}

function backendSubject(name: string, backend: RateLimitBackend, keys: number): AsyncSubject {
  const list = queries(keys);
  let rejected = 0;
  return {
    name,
    async decide(key) {
      const result = await backend.consume(list[key % keys]!);
      if (!result.allowed) rejected++;
    },
    rejected: () => rejected,
    close: async () => {
      await backend.close();
    },
  };
}

async function readyClient(
  url: string,
  options: { enableAutoPipelining?: boolean; enableOfflineQueue?: boolean } = {},
): Promise<Redis> {
  const client = new Redis(url, { ...options, lazyConnect: true, connectTimeout: 5_000 });
  await client.connect();
  return client;
}

/** Plain `INCR` of one key per user: the least any Redis limiter can send per decision. */
function incrSubject(name: string, client: Redis, keys: number): AsyncSubject {
  const names = Array.from({ length: keys }, (_, i) => `bench:incr:${userId(i)}`);
  return {
    name,
    decide: (key) => client.incr(names[key % keys]!),
    rejected: () => 0,
    close: async () => void (await client.quit()),
  };
}

/** Every subject measured against Redis, by name. Each call makes a fresh subject. */
function redisSubjects(url: string): Record<string, (keys: number) => Promise<AsyncSubject>> {
  return {
    'nestjs-ratelimit RedisBackend': async (keys) =>
      backendSubject('nestjs-ratelimit RedisBackend', new RedisBackend(url), keys),
    'nestjs-ratelimit SlidingRedisBackend': async (keys) =>
      backendSubject('nestjs-ratelimit SlidingRedisBackend', new SlidingRedisBackend(url), keys),
    'ioredis INCR (the bound)': async (keys) =>
      incrSubject('ioredis INCR (the bound)', await readyClient(url), keys),
    'ioredis INCR, enableAutoPipelining': async (keys) =>
      incrSubject(
        'ioredis INCR, enableAutoPipelining',
        await readyClient(url, { enableAutoPipelining: true }),
        keys,
      ),
    'rate-limiter-flexible RateLimiterRedis': async (keys) => {
      const client = await readyClient(url, { enableOfflineQueue: false });
      const limiter = new RateLimiterRedis({
        storeClient: client,
        points: LIMIT,
        duration: WINDOW_SECONDS,
      });
      return rateLimiterFlexibleSubject(
        'rate-limiter-flexible RateLimiterRedis',
        limiter,
        keys,
        async () => void (await client.quit()),
      );
    },
    '@nest-lab/throttler-storage-redis': async (keys) => {
      const client = await readyClient(url);
      return throttlerStorageSubject(
        '@nest-lab/throttler-storage-redis',
        new ThrottlerStorageRedisService(client),
        keys,
        async () => void (await client.quit()),
      );
    },
  };
}

/** In-memory peers: their APIs return promises, so each call is awaited before the next. */
function memoryPeerSubjects(): Record<string, (keys: number) => Promise<AsyncSubject>> {
  return {
    'rate-limiter-flexible RateLimiterMemory': async (keys) => {
      const limiter = new RateLimiterMemory({ points: LIMIT, duration: WINDOW_SECONDS });
      return rateLimiterFlexibleSubject(
        'rate-limiter-flexible RateLimiterMemory',
        limiter,
        keys,
        async () => {},
      );
    },
    '@nestjs/throttler ThrottlerStorageService': async (keys) => {
      const storage = new ThrottlerStorageService();
      return throttlerStorageSubject(
        '@nestjs/throttler ThrottlerStorageService',
        storage,
        keys,
        async () => storage.onApplicationShutdown(),
      );
    },
  };
}

/**
 * A peer subject keyed by user id: `decide(user, reject)` makes one call for that user and calls
 * `reject` when the peer turned it down. The peer's own promise is returned as it is, with no
 * wrapper of ours around it, so the harness adds the same (nothing) to every peer.
 */
function keyedSubject(
  name: string,
  keys: number,
  decide: (user: string, reject: () => void) => Promise<unknown>,
  close: () => Promise<void>,
): AsyncSubject {
  const names = Array.from({ length: keys }, (_, i) => userId(i));
  let rejected = 0;
  const reject = (): void => {
    rejected++;
  };
  return {
    name,
    decide: (key) => decide(names[key % keys]!, reject),
    rejected: () => rejected,
    close,
  };
}

/** A rate-limiter-flexible limiter (memory or Redis): `consume()` rejects when over the limit. */
function rateLimiterFlexibleSubject(
  name: string,
  limiter: { consume(key: string): Promise<unknown> },
  keys: number,
  close: () => Promise<void>,
): AsyncSubject {
  return keyedSubject(name, keys, (user, reject) => limiter.consume(user).catch(reject), close);
}

/** A @nestjs/throttler storage (its own, or the Redis one): `increment()` as its guard calls it. */
function throttlerStorageSubject(
  name: string,
  storage: Pick<ThrottlerStorageService, 'increment'>,
  keys: number,
  close: () => Promise<void>,
): AsyncSubject {
  const windowMs = WINDOW_SECONDS * 1000;
  return keyedSubject(
    name,
    keys,
    async (user, reject) => {
      const record = await storage.increment(user, windowMs, LIMIT, windowMs, 'default');
      if (record.isBlocked) reject();
    },
    close,
  );
}

/** Sends one message to the driver; resolves once it has left (so none is lost on exit). */
function send(message: DecisionsMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    process.send!(message, (error: Error | null) => (error ? reject(error) : resolve()));
  });
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** One subject of an interleaved case, with its samples so far. */
interface Entrant {
  readonly name: string;
  readonly subject: AsyncSubject;
  readonly samples: RateSamples;
  failed: boolean;
}

/**
 * Measures the subjects of one case (key count, calls in flight) interleaved, as the HTTP suites
 * are: every subject is made and warmed up, then each takes one sample per round (a b c … a b c
 * …), the first subject of a round moving on by one each round. This VM's speed drifts by tens
 * of per cent over minutes, so subjects measured one after the other compared badly (ioredis
 * `INCR` alone ranged from 88k to 122k/s between two runs); interleaved, the drift falls on every
 * subject alike and each ratio compares samples taken seconds apart. A subject that fails is
 * reported as a problem and leaves the rounds; the others go on.
 */
async function measureInterleaved(
  makers: Record<string, (keys: number) => Promise<AsyncSubject>>,
  keys: number,
  inFlight: number,
  settings: MicroSettings,
  /** redis-server's PID for the Redis subjects, to split the CPU per decision. */
  redisPid?: number,
): Promise<void> {
  const entrants: Entrant[] = [];
  const fail = async (name: string, error: unknown): Promise<void> => {
    await send({
      type: 'problem',
      text: `${name}, ${keys} keys, ${inFlight} in flight failed: ${describeError(error)}`,
    });
  };
  const sampleOf = (subject: AsyncSubject) => (ms: number) =>
    asyncRate((i) => subject.decide(i), inFlight, ms);
  try {
    for (const [name, make] of Object.entries(makers)) {
      let entrant: Entrant | undefined;
      try {
        const subject = await make(keys);
        entrant = { name, subject, samples: new RateSamples(redisPid), failed: false };
        entrants.push(entrant);
        await sampleOf(subject)(settings.warmupMs);
      } catch (error) {
        if (entrant !== undefined) entrant.failed = true;
        await fail(name, error);
      }
    }
    for (let round = 0; round < settings.samples; round++) {
      for (let k = 0; k < entrants.length; k++) {
        const entrant = entrants[(round + k) % entrants.length]!;
        if (entrant.failed) continue;
        try {
          await entrant.samples.take(sampleOf(entrant.subject), settings.sampleMs);
        } catch (error) {
          entrant.failed = true;
          await fail(entrant.name, error);
        }
      }
    }
    for (const { name, subject, samples, failed } of entrants) {
      if (failed) continue;
      const rate = samples.summary();
      await send({ type: 'decision', decision: { subject: name, keys, inFlight, ...rate } });
      await send({
        type: 'progress',
        line: `${name}, ${keys} keys, ${inFlight} in flight: ${Math.round(rate.perSecond)}/s`,
      });
      if (subject.rejected() > 0) {
        await send({
          type: 'problem',
          text: `${name} rejected ${subject.rejected()} calls (${keys} keys)`,
        });
      }
    }
  } finally {
    for (const { subject } of entrants) await subject.close().catch(() => undefined);
  }
}

@Controller()
class CheckController {
  @Get('hello')
  hello(): string {
    return 'world';
  }
}

/**
 * `RateLimitService.check()` (every step of a decision: rule selection, the default IP
 * resolver, the memory backend) called in a loop on a fake HTTP execution context, each call
 * with a fresh request object (the identity is cached per request). No HTTP, no Nest pipeline:
 * what the decision itself costs.
 */
async function measureServiceCheck(settings: MicroSettings): Promise<void> {
  @Module({
    imports: [
      RateLimitModule.forRoot({
        backend: new MemoryBackend(),
        config: { '^/': [{ minute: LIMIT }] },
      }),
    ],
    controllers: [CheckController],
  })
  class CheckModule {}
  const app = await NestFactory.createApplicationContext(CheckModule, { logger: false });
  try {
    const service = app.get(RateLimitService);
    const handler = CheckController.prototype.hello;
    const expressApp = { get: (): unknown => false };
    const response = {};
    let rejected = 0;
    const context = (): ExecutionContext => {
      const request = {
        method: 'GET',
        url: '/hello',
        originalUrl: '/hello',
        headers: { host: '127.0.0.1' },
        socket: { remoteAddress: '127.0.0.1' },
        ip: '127.0.0.1',
        app: expressApp,
      };
      return {
        getType: () => 'http',
        getHandler: () => handler,
        getClass: () => CheckController,
        switchToHttp: () => ({ getRequest: () => request, getResponse: () => response }),
        getArgByIndex: (index: number) => [request, response][index],
      } as unknown as ExecutionContext;
    };
    const rate = await sampleRate(settings, (ms) =>
      syncRate(() => {
        const decision = service.check(context());
        if (decision instanceof Promise || decision?.allowed !== true) rejected++;
      }, ms),
    );
    if (rejected > 0) {
      await send({
        type: 'problem',
        text: `RateLimitService.check() was asynchronous or rejected ${rejected} times`,
      });
    }
    await send({
      type: 'decision',
      decision: { subject: SERVICE_CHECK_SUBJECT, keys: 1, inFlight: undefined, ...rate },
    });
    await send({
      type: 'progress',
      line: `RateLimitService.check(): ${Math.round(rate.perSecond)} decisions/s`,
    });
  } finally {
    await app.close();
  }
}

/**
 * MemoryBackend at `maxKeys` (the many-keys count) under a flood of new identities, beside the
 * rows of the same keys not full: every decision starts a window and evicts the oldest. The
 * queries cycle over twice `maxKeys` users, so each user was evicted (oldest first) before it
 * comes round again: every decision is a new identity to the backend, and no query is built in
 * the loop.
 */
async function measureMemoryAtCapacity(settings: MicroSettings): Promise<void> {
  const maxKeys = settings.manyKeys;
  const backend = new MemoryBackend({ maxKeys });
  const list = queries(2 * maxKeys);
  let next = 0; // across samples, so no sample starts again on users still held
  let rejected = 0;
  const decide = (): void => {
    if (!backend.consume(list[next++ % list.length]!).allowed) rejected++;
  };
  for (let i = 0; i < maxKeys; i++) decide(); // full before the warm-up
  const rate = await sampleRate(settings, (ms) => syncRate(decide, ms));
  const size = backend.size;
  await backend.close();
  if (rejected > 0 || size !== maxKeys) {
    await send({
      type: 'problem',
      text: `MemoryBackend at capacity rejected ${rejected} decisions and held ${size} keys (maxKeys ${maxKeys})`,
    });
  }
  await send({
    type: 'decision',
    decision: { subject: MEMORY_AT_CAPACITY_SUBJECT, keys: maxKeys, inFlight: undefined, ...rate },
  });
  await send({
    type: 'progress',
    line: `MemoryBackend at capacity, ${maxKeys} keys: ${Math.round(rate.perSecond)} decisions/s`,
  });
}

async function main(): Promise<void> {
  if (process.send === undefined) throw new Error('decisions.js must be forked with IPC');
  process.on('disconnect', () => process.exit(0));
  const job = JSON.parse(process.argv[2] ?? '') as DecisionsJob;
  const { settings } = job;
  const keyCounts = [1, settings.manyKeys];

  // 1. MemoryBackend: synchronous, called in a tight loop.
  for (const keys of keyCounts) {
    const backend = new MemoryBackend();
    const list = queries(keys);
    let rejected = 0;
    const rate = await sampleRate(settings, (ms) =>
      syncRate((i) => {
        if (!backend.consume(list[i % keys]!).allowed) rejected++;
      }, ms),
    );
    await backend.close();
    if (rejected > 0) {
      await send({ type: 'problem', text: `MemoryBackend rejected ${rejected} decisions` });
    }
    const decision = { subject: MEMORY_SUBJECT, keys, inFlight: undefined, ...rate };
    await send({ type: 'decision', decision });
    await send({
      type: 'progress',
      line: `MemoryBackend, ${keys} keys: ${Math.round(rate.perSecond)} decisions/s`,
    });
  }

  // 1a. MemoryBackend full, every decision a new identity.
  await measureMemoryAtCapacity(settings);

  // 1b. The whole decision of the module, without HTTP.
  try {
    await measureServiceCheck(settings);
  } catch (error) {
    await send({
      type: 'problem',
      text: `RateLimitService.check() micro-benchmark failed: ${describeError(error)}`,
    });
  }

  // 2. In-memory peers, interleaved, each call awaited before the next.
  for (const keys of keyCounts) await measureInterleaved(memoryPeerSubjects(), keys, 1, settings);

  // 3. Redis: every subject, 1 and many keys, 1 and 256 calls in flight; then commands.
  if (job.redisUrl === undefined) {
    await send({ type: 'problem', text: 'No Redis: the Redis micro-benchmarks were skipped' });
    return;
  }
  const url = job.redisUrl;
  const admin = await readyClient(url);
  try {
    for (const keys of keyCounts) {
      for (const inFlight of IN_FLIGHT) {
        await admin.flushall();
        await measureInterleaved(redisSubjects(url), keys, inFlight, settings, job.redisPid);
      }
    }
    for (const [name, make] of Object.entries(redisSubjects(url))) {
      if (name.includes('enableAutoPipelining')) continue; // the same commands as plain INCR
      await admin.flushall();
      let subject: AsyncSubject | undefined;
      try {
        subject = await make(settings.manyKeys);
        const count = await countCommands(name, subject, admin, url, settings);
        await send({ type: 'commands', count });
        await send({ type: 'progress', line: `${name}: ${count.sentPerDecision} sent/decision` });
      } catch (error) {
        await send({
          type: 'problem',
          text: `Counting the commands of ${name} failed: ${describeError(error)}`,
        });
      } finally {
        await subject?.close().catch(() => undefined);
      }
    }
  } finally {
    await admin.quit();
  }
}

/**
 * Commands per decision: INFO commandstats before and after N decisions (one at a time), which
 * counts commands run inside scripts as well; then MONITOR during M more decisions, which tells
 * the commands the client sent from those a script ran (source "lua").
 */
async function countCommands(
  name: string,
  subject: AsyncSubject,
  admin: Redis,
  url: string,
  settings: MicroSettings,
): Promise<CommandCount> {
  // Warm-up: connects, loads scripts (a first EVALSHA may answer NOSCRIPT and fall back to EVAL).
  for (let i = 0; i < 100; i++) await subject.decide(i);

  const n = settings.commandStatsDecisions;
  await admin.config('RESETSTAT');
  for (let i = 0; i < n; i++) await subject.decide(i);
  const stats = parseCommandStats(await admin.info('commandstats'));
  const byCommand: Record<string, number> = {};
  let executed = 0;
  for (const [command, calls] of stats) {
    // The admin connection's own CONFIG RESETSTAT and INFO are not the subject's.
    if (command === 'info' || command.startsWith('config')) continue;
    byCommand[command] = calls / n;
    executed += calls;
  }

  const m = settings.monitorDecisions;
  const watcher = await readyClient(url);
  let sent = 0;
  let inScripts = 0;
  let seen = 0;
  try {
    const monitor = await watcher.monitor();
    try {
      monitor.on('monitor', (_time: string, _args: string[], source: string) => {
        seen++;
        if (source === 'lua') inScripts++;
        else sent++;
      });
      await sleep(100); // MONITOR starts streaming once Redis has answered OK
      for (let i = 0; i < m; i++) await subject.decide(i);
      // Events trail the replies: wait until the count stops moving (bounded).
      for (let waited = 0, last = -1; waited < MONITOR_SETTLE_MS && seen !== last; waited += 100) {
        last = seen;
        await sleep(100);
      }
    } finally {
      monitor.disconnect();
    }
  } finally {
    watcher.disconnect();
  }
  return {
    subject: name,
    decisions: n,
    executedPerDecision: executed / n,
    byCommand,
    sentPerDecision: sent / m,
    inScriptsPerDecision: inScripts / m,
  };
}

main().then(
  () => send({ type: 'done' }).then(() => process.exit(0)),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exit(1);
  },
);
