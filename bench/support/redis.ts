/**
 * The benchmark's own Redis: one `redis-server` started by the test harness on a free 127.0.0.1
 * port (never 6379, never an external server), flushed between runs and stopped at the end.
 *
 * @module
 */
import { Redis } from 'ioredis';
import {
  startOwnedRedisServer,
  type OwnedRedisServerHandle,
} from '../../test/support/redis-harness.js';
import { parseCommandStats } from './commandstats.js';
import { processCpuMicros } from './cpu.js';

export interface BenchRedis {
  readonly url: string;
  readonly version: string;
  /** PID of the redis-server process. */
  readonly pid: number;
  /** FLUSHALL, and reset INFO commandstats. */
  reset(): Promise<void>;
  /** `INFO commandstats` as command → calls. */
  commandStats(): Promise<Map<string, number>>;
  /** User + system CPU of the redis-server process so far, in µs; undefined off Linux. */
  cpuMicros(): number | undefined;
  stop(): Promise<void>;
}

export async function startBenchRedis(): Promise<BenchRedis> {
  const server: OwnedRedisServerHandle = await startOwnedRedisServer();
  let admin: Redis | undefined;
  try {
    admin = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await admin.connect();
    const info = await admin.info('server');
    const version = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
    const client = admin;
    return {
      url: server.url,
      version,
      pid: server.pid,
      async reset(): Promise<void> {
        await client.flushall();
        await client.config('RESETSTAT');
      },
      async commandStats(): Promise<Map<string, number>> {
        return parseCommandStats(await client.info('commandstats'));
      },
      cpuMicros: () => processCpuMicros(server.pid),
      async stop(): Promise<void> {
        client.disconnect();
        await server.stop();
      },
    };
  } catch (error) {
    admin?.disconnect();
    await server.stop();
    throw error;
  }
}
