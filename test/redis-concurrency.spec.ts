/**
 * Exactness when several application instances share one Redis: 4 Nest apps in this process, each
 * with its own ioredis client, take 1000 concurrent requests from one user against a limit of
 * 100. Exactly 100 are admitted, every round, for both Redis backends.
 */
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  RateLimitModule,
  RedisBackend,
  SlidingRedisBackend,
  type RateLimitBackend,
} from 'nestjs-ratelimit';
import { headerAuth, HelloController } from './support/nest-app.js';
import { startRedisServer, type RedisServerHandle } from './support/redis-harness.js';

const INSTANCES = 4;
const REQUESTS = 1000;
const LIMIT = 100;
const ROUNDS = 10;

async function startInstance(
  backend: RateLimitBackend,
): Promise<{ app: INestApplication; url: string }> {
  const moduleRef = await Test.createTestingModule({
    imports: [
      RateLimitModule.forRoot({
        backend,
        authenticate: headerAuth,
        config: { '/': [{ minute: LIMIT }] },
        // The default backend timeout: a reply that waits on the busy event loop is not a
        // timeout (test/flood.spec.ts), so the fail-open policy never admits one here.
      }),
    ],
    controllers: [HelloController],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.listen(0, '127.0.0.1');
  return { app, url: (await app.getUrl()).replace('[::1]', '127.0.0.1') };
}

describe.each([
  ['RedisBackend', (url: string) => new RedisBackend(url)],
  ['SlidingRedisBackend', (url: string) => new SlidingRedisBackend(url)],
])('%s with 4 app instances', (_name, createBackend) => {
  let server: RedisServerHandle;
  let instances: { app: INestApplication; url: string }[] = [];

  beforeAll(async () => {
    server = await startRedisServer();
    instances = await Promise.all(
      Array.from({ length: INSTANCES }, () => startInstance(createBackend(server.url))),
    );
  }, 60_000);

  afterAll(async () => {
    await Promise.all(instances.map(({ app }) => app.close()));
    await server?.stop();
  });

  it(`admits exactly ${LIMIT} of ${REQUESTS} concurrent requests from one user, ${ROUNDS} rounds in a row`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const user = `user-${round}-${Date.now()}`;
      const statuses = await Promise.all(
        Array.from({ length: REQUESTS }, (_, i) =>
          fetch(`${instances[i % INSTANCES]!.url}/hello`, {
            headers: { user },
            signal: AbortSignal.timeout(20_000),
          }).then(async (response) => {
            await response.arrayBuffer();
            return response.status;
          }),
        ),
      );
      const admitted = statuses.filter((status) => status === 200).length;
      const rejected = statuses.filter((status) => status === 429).length;
      expect({ round, admitted, rejected }).toEqual({
        round,
        admitted: LIMIT,
        rejected: REQUESTS - LIMIT,
      });
    }
  }, 120_000);
});
