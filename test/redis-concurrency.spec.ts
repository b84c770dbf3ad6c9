/**
 * Exactness when several application instances share one Redis: 4 Nest apps in this process, each
 * with its own ioredis client, take 1000 concurrent requests from one user against a limit of
 * 100. Exactly 100 are admitted, every round, for both Redis backends.
 */
import {
  RateLimitModule,
  RedisBackend,
  SlidingRedisBackend,
  type RateLimitBackend,
} from 'nestjs-ratelimit';
import { headerAuth, listenApp, type ListeningApp } from './support/nest-app.js';
import { startRedisServer, type RedisServerHandle } from './support/redis-harness.js';

const INSTANCES = 4;
const REQUESTS = 1000;
const LIMIT = 100;
const ROUNDS = 10;

function startInstance(backend: RateLimitBackend): Promise<ListeningApp> {
  return listenApp([
    RateLimitModule.forRoot({
      backend,
      authenticate: headerAuth,
      config: { '/': [{ minute: LIMIT }] },
      // The default backend timeout: a reply that waits on the busy event loop is not a
      // timeout (test/flood.spec.ts), so the fail-open policy never admits one here.
    }),
  ]);
}

describe.each([
  ['RedisBackend', (url: string) => new RedisBackend(url)],
  ['SlidingRedisBackend', (url: string) => new SlidingRedisBackend(url)],
])('%s with 4 app instances', (_name, createBackend) => {
  let server: RedisServerHandle;
  let instances: ListeningApp[] = [];

  beforeAll(async () => {
    server = await startRedisServer();
    instances = await Promise.all(
      Array.from({ length: INSTANCES }, () => startInstance(createBackend(server.url))),
    );
  }, 60_000);

  afterAll(async () => {
    await Promise.all(instances.map((instance) => instance.close()));
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
