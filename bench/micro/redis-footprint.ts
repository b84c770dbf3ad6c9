/**
 * What a decision costs Redis besides time: the commands it runs (`INFO commandstats` and
 * `MONITOR`) and the memory one counter keeps (`MEMORY USAGE` of every key it wrote).
 *
 * @module
 */
import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import type { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { parseCommandStats } from '../support/commandstats.js';
import type { MicroSettings } from '../support/mode.js';
import type { CommandCount, RedisMemory } from '../support/results.js';
import { sleep } from '../support/stats.js';
import { NEST_LAB_SUBJECT, REDIS_ALGORITHMS, redisSubject, RLF_REDIS_SUBJECT } from './jobs.js';
import {
  LIMIT,
  queries,
  readyClient,
  redisBackend,
  userId,
  WINDOW_SECONDS,
  type AsyncSubject,
} from './subjects.js';

const MONITOR_SETTLE_MS = 2_000;
/** Decisions of the second memory reading: a log grows with them, a counter does not. */
const LATER_DECISIONS = 100;

/**
 * Commands per decision: INFO commandstats before and after N decisions (one at a time), which
 * counts commands run inside scripts as well; then MONITOR during M more decisions, which tells
 * the commands the client sent from those a script ran (source "lua").
 */
export async function countCommands(
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

/** Every key in the (flushed) database and the sum of their `MEMORY USAGE`. */
async function usage(admin: Redis): Promise<{ keys: string[]; bytes: number }> {
  const keys = (await admin.keys('*')).sort();
  let bytes = 0;
  for (const key of keys) {
    const reply = await admin.call('MEMORY', 'USAGE', key, 'SAMPLES', '0');
    bytes += Number(reply);
  }
  return { keys, bytes };
}

/** One counter of the one-unit rule: `decide()` counts one admitted request for user 0. */
async function footprint(
  subject: string,
  admin: Redis,
  decide: () => Promise<unknown>,
): Promise<RedisMemory> {
  await admin.flushall();
  await decide();
  const one = await usage(admin);
  for (let i = 1; i < LATER_DECISIONS; i++) await decide();
  const later = await usage(admin);
  return {
    subject,
    keys: one.keys,
    bytesAfterOne: one.bytes,
    decisionsLater: LATER_DECISIONS,
    bytesAfterLater: later.bytes,
  };
}

/**
 * The memory one counter keeps in Redis, for RedisBackend with every algorithm and for the
 * peers' Redis stores, each after 1 and after {@link LATER_DECISIONS} decisions of one user.
 * Each result is handed to `report` as soon as it is read; a failing subject goes to `fail`.
 */
export async function measureRedisMemory(
  url: string,
  admin: Redis,
  report: (memory: RedisMemory) => Promise<void>,
  fail: (subject: string, error: unknown) => Promise<void>,
): Promise<void> {
  const query = queries(1)[0]!;
  for (const algorithm of REDIS_ALGORITHMS) {
    const subject = redisSubject(algorithm, 'own');
    try {
      const { backend, close } = await redisBackend(url, algorithm, 'own');
      try {
        await report(await footprint(subject, admin, async () => backend.consume(query)));
      } finally {
        await close();
      }
    } catch (error) {
      await fail(subject, error);
    }
  }
  const client = await readyClient(url);
  try {
    const limiter = new RateLimiterRedis({
      storeClient: client,
      points: LIMIT,
      duration: WINDOW_SECONDS,
    });
    await report(await footprint(RLF_REDIS_SUBJECT, admin, () => limiter.consume(userId(0))));
    const storage = new ThrottlerStorageRedisService(client);
    const windowMs = WINDOW_SECONDS * 1000;
    await report(
      await footprint(NEST_LAB_SUBJECT, admin, () =>
        storage.increment(userId(0), windowMs, LIMIT, windowMs, 'default'),
      ),
    );
  } catch (error) {
    await fail('the peers', error);
  } finally {
    await client.quit();
  }
}
