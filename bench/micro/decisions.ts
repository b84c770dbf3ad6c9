/**
 * Micro-benchmarks without HTTP, in their own process (`node decisions.js '<job as JSON>'`, forked
 * with IPC): decisions per second of MemoryBackend with each O(1) algorithm on 1 key and on many
 * keys (and at maxKeys, every decision a new identity), of `RateLimitService.check()`, of the
 * in-memory peers, and of every Redis subject with 1 and 256 calls in flight beside raw ioredis
 * `INCR` (the bound); then the Redis commands one decision costs and the memory one counter keeps.
 *
 * @module
 */
import 'reflect-metadata';
import { Controller, Get, Module, type ExecutionContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MemoryBackend, RateLimitModule, RateLimitService } from 'nestjs-ratelimit';
import type { MicroSettings } from '../support/mode.js';
import {
  INCR_AUTO_PIPELINING_SUBJECT,
  MEMORY_AT_CAPACITY_SUBJECT,
  memorySubject,
  O1_ALGORITHMS,
  RLF_REDIS_PLAIN_SUBJECT,
  type DecisionsJob,
  type DecisionsMessage,
} from './jobs.js';
import { asyncRate, RateSamples, sampleRate, syncRate, type Sample } from './measure.js';
import { countCommands, measureRedisMemory } from './redis-footprint.js';
import {
  LIMIT,
  memoryBackendLoop,
  memoryPeerSubjects,
  queries,
  readyClient,
  redisSubjects,
  type AsyncSubject,
  type SubjectMaker,
} from './subjects.js';

const IN_FLIGHT = [1, 256] as const;

const SERVICE_CHECK_SUBJECT = 'nestjs-ratelimit RateLimitService.check(), fake HTTP context';

/** Sends one message to the driver; resolves once it has left (so none is lost on exit). */
function send(message: DecisionsMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    process.send!(message, (error: Error | null) => (error ? reject(error) : resolve()));
  });
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A subject ready to be sampled: the synchronous loop or the calls in flight, already chosen. */
interface Sampled {
  sample(ms: number): Sample | Promise<Sample>;
  rejected(): number;
  close(): Promise<void>;
}

/** The awaited subjects of one case, each sampled with `inFlight` calls at once. */
function inFlightOf(
  makers: Record<string, SubjectMaker>,
  keys: number,
  inFlight: number,
): Record<string, () => Promise<Sampled>> {
  return Object.fromEntries(
    Object.entries(makers).map(([name, make]) => [
      name,
      async (): Promise<Sampled> => {
        const subject: AsyncSubject = await make(keys);
        return {
          sample: (ms) => asyncRate((i) => subject.decide(i), inFlight, ms),
          rejected: () => subject.rejected(),
          close: () => subject.close(),
        };
      },
    ]),
  );
}

/** Failures already reported, as `<subject>: <error>`. */
const reported = new Set<string>();

/** One subject of an interleaved case, with its samples so far. */
interface Entrant {
  readonly name: string;
  readonly subject: Sampled;
  readonly samples: RateSamples;
  failed: boolean;
}

/**
 * Measures the subjects of one case (key count, calls in flight or synchronous) interleaved, as
 * the HTTP suites are: every subject is made and warmed up, then each takes one sample per round
 * (a b c … a b c …), the first subject of a round moving on by one each round. This VM's speed
 * drifts by tens of per cent over minutes, so subjects measured one after the other compared
 * badly (ioredis `INCR` alone ranged from 88k to 122k/s between two runs); interleaved, the drift
 * falls on every subject alike and each ratio compares samples taken seconds apart. A subject
 * that fails is reported as a problem and leaves the rounds; the others go on.
 */
async function measureInterleaved(
  makers: Record<string, () => Promise<Sampled>>,
  keys: number,
  inFlight: number | undefined,
  settings: MicroSettings,
  /** redis-server's PID for the Redis subjects, to split the CPU per decision. */
  redisPid?: number,
): Promise<void> {
  const entrants: Entrant[] = [];
  const calls = inFlight === undefined ? 'synchronous' : `${inFlight} in flight`;
  const fail = async (name: string, error: unknown): Promise<void> => {
    // A subject that cannot be made fails alike in every case: one problem says it.
    const reason = `${name}: ${describeError(error)}`;
    if (reported.has(reason)) return;
    reported.add(reason);
    await send({
      type: 'problem',
      text: `${name}, ${keys} keys, ${calls} failed (and in every later case where it fails alike): ${describeError(error)}`,
    });
  };
  try {
    for (const [name, make] of Object.entries(makers)) {
      let entrant: Entrant | undefined;
      try {
        const subject = await make();
        entrant = { name, subject, samples: new RateSamples(redisPid), failed: false };
        entrants.push(entrant);
        await subject.sample(settings.warmupMs);
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
          await entrant.samples.take((ms) => entrant.subject.sample(ms), settings.sampleMs);
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
        line: `${name}, ${keys} keys, ${calls}: ${Math.round(rate.perSecond)}/s`,
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

/** MemoryBackend with each O(1) algorithm, called synchronously in a tight loop. */
function memoryMakers(keys: number): Record<string, () => Promise<Sampled>> {
  return Object.fromEntries(
    O1_ALGORITHMS.map((algorithm) => [
      memorySubject(algorithm),
      async (): Promise<Sampled> => {
        const loop = memoryBackendLoop(algorithm, keys);
        return {
          sample: (ms) => syncRate(loop.decide, ms),
          rejected: loop.rejected,
          close: loop.close,
        };
      },
    ]),
  );
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

  // 1. MemoryBackend, each O(1) algorithm: synchronous, called in a tight loop, interleaved.
  for (const keys of keyCounts)
    await measureInterleaved(memoryMakers(keys), keys, undefined, settings);

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
  for (const keys of keyCounts) {
    await measureInterleaved(inFlightOf(memoryPeerSubjects(), keys, 1), keys, 1, settings);
  }

  // 3. Redis: every subject, 1 and many keys, 1 and 256 calls in flight; then commands and memory.
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
        const makers = inFlightOf(redisSubjects(url, inFlight), keys, inFlight);
        await measureInterleaved(makers, keys, inFlight, settings, job.redisPid);
      }
    }
    for (const [name, make] of Object.entries(redisSubjects(url, 1))) {
      // The same commands as plain INCR, and as the client of rate-limiter-flexible's README.
      if (name === INCR_AUTO_PIPELINING_SUBJECT || name === RLF_REDIS_PLAIN_SUBJECT) continue;
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
    await measureRedisMemory(
      url,
      admin,
      (memory) => send({ type: 'redisMemory', memory }),
      (subject, error) =>
        send({
          type: 'problem',
          text: `Redis memory per counter of ${subject} failed: ${describeError(error)}`,
        }),
    );
  } finally {
    await admin.quit();
  }
}

main().then(
  () => send({ type: 'done' }).then(() => process.exit(0)),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exit(1);
  },
);
