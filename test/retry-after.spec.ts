/**
 * A client that obeys `Retry-After` never runs into a new block (issue 12, item 5), on every
 * backend: a real Nest application listening on loopback, and `got`, an HTTP client that retries
 * a 429 after the wait its `Retry-After` says, as a service calling a limited API would.
 *
 * Time is virtual: got hands the delay it derived from `Retry-After` to `retry.calculateDelay`,
 * which moves the backend's clock by exactly that much and lets got retry after 1 real ms. So the
 * client really reads and obeys the header, and no test sleeps for seconds.
 *
 * The scenario: `{ minute: 2, blockTime: 1 }`. The 3rd request in a minute trips the limit and
 * starts a 1 s block. Half a second later a request comes in during the block: the block has
 * 500 ms left, the minute 59.5 s. Told the block's remainder, the client would come back after
 * 1 s to an exhausted minute, be rejected by it, and so start the block again.
 */
import type { AddressInfo } from 'node:net';
import got from 'got';
import type { RateLimitBackend, RateLimitInfo } from 'nestjs-ratelimit';
import { MemoryBackend } from '../lib/backends/memory.backend.js';
import { RedisBackend } from '../lib/backends/redis/redis.backend.js';
import { SlidingRedisBackend } from '../lib/backends/redis/sliding-redis.backend.js';
import { ADAPTERS, as, createTestApp, headerAuth, TestClock } from './support/nest-app.js';
import { START_MS, useRedisTopologies } from './support/redis-topologies.js';

const redis = useRedisTopologies('rlretry');

/** One backend under test, on a clock the test moves. */
interface BackendCase {
  readonly name: string;
  create(clock: TestClock): Promise<RateLimitBackend>;
}

const cases: BackendCase[] = [
  {
    name: 'MemoryBackend',
    create: async (clock) => new MemoryBackend({ clock: clock.read, sweepIntervalMs: 0 }),
  },
];
for (const topology of redis.topologies) {
  for (const Backend of [RedisBackend, SlidingRedisBackend]) {
    cases.push({
      name: `${Backend.name} on a ${topology.name}`,
      async create(clock) {
        const backend = new Backend(await topology.client(), {
          prefix: redis.freshPrefix(),
          testClock: clock.read,
        });
        redis.closeAfterAll(backend);
        return backend;
      },
    });
  }
}

/** A rejection as `onBlocked` saw it, with the virtual time it happened at. */
interface Rejection extends Pick<RateLimitInfo, 'retryAfter' | 'blocked' | 'unit'> {
  readonly at: number;
}

describe.each(ADAPTERS)('on %s', (adapter) => {
  describe.each(cases)('a client obeying Retry-After, on $name', ({ create }) => {
    it('is admitted after one retry once a block ends, and never starts a second block', async () => {
      const clock = new TestClock();
      clock.now = START_MS;
      const rejections: Rejection[] = [];
      const t = await createTestApp({
        adapter,
        rateLimit: {
          backend: await create(clock),
          authenticate: headerAuth,
          config: { '/': [{ minute: 2, blockTime: 1 }] },
          onBlocked: ({ retryAfter, blocked, unit }) => {
            rejections.push({ at: clock.now - START_MS, retryAfter, blocked, unit });
            return undefined; // the default 429
          },
        },
      });
      try {
        await t.app.listen(0, '127.0.0.1');
        const { port } = t.app.getHttpServer().address() as AddressInfo;
        /** Each wait the client took, in virtual ms, as got computed it from Retry-After. */
        const waits: number[] = [];
        const client = got.extend({
          prefixUrl: `http://127.0.0.1:${port}`,
          headers: as('u'),
          retry: {
            limit: 3,
            calculateDelay: ({ computedValue }) => {
              if (computedValue === 0) return 0; // got would not retry
              waits.push(computedValue);
              clock.advance(computedValue);
              return 1;
            },
          },
        });
        const once = { retry: { limit: 0 }, throwHttpErrors: false } as const;

        expect((await client.get('api', once)).statusCode).toBe(200);
        expect((await client.get('api', once)).statusCode).toBe(200);
        const tripped = await client.get('api', once);
        expect([tripped.statusCode, tripped.headers['retry-after']]).toEqual([429, '60']);

        clock.advance(500); // during the block: 500 ms of it left, 59.5 s of the minute
        const response = await client.get('api');

        expect(response.statusCode).toBe(200);
        expect(response.retryCount).toBe(1);
        expect(waits).toEqual([60_000]);
        // The only rejections: the one that started the block, and the one during it. None came
        // after the block ended, so none started a second block.
        expect(rejections).toEqual([
          { at: 0, retryAfter: 60, blocked: true, unit: 'minute' },
          { at: 500, retryAfter: 60, blocked: true, unit: 'minute' },
        ]);
      } finally {
        await t.close();
      }
    });
  });
});
