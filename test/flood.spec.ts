/**
 * A flood never switches limiting off. One application instance with the default module options
 * (failure policy `'open'`, the default backend timeout) takes bursts of 2,000 concurrent requests
 * from one user against a limit of 100. The client runs in the same process, so the burst
 * saturates the event loop the backend's replies are read on: a busy application must not look
 * like a dead backend, and exactly 100 requests are admitted in every burst.
 */
import type { Server } from 'node:http';
import {
  MemoryBackend,
  RateLimitModule,
  RedisBackend,
  SlidingRedisBackend,
  type RateLimitBackend,
} from 'nestjs-ratelimit';
import { captureBackendLogs } from './support/backend-logs.js';
import { headerAuth, listenApp, type ListeningApp } from './support/nest-app.js';
import { startRedisServer, type RedisServerHandle } from './support/redis-harness.js';

const BURST = 2_000;
const LIMIT = 100;
const BURSTS = 20;

/**
 * One instance with default options but for identity and the table.
 *
 * The HTTP server keeps idle connections for the whole test. With Node's default of 5 s, a burst
 * that takes longer than that on a loaded machine leaves sockets idle past the timeout; the next
 * burst writes its requests on them in the same tick the server's timer closes them, and fetch
 * fails with ECONNRESET. That race is the test client's, not the limiter's.
 */
async function startApp(backend: RateLimitBackend): Promise<ListeningApp> {
  const instance = await listenApp([
    RateLimitModule.forRoot({
      backend,
      authenticate: headerAuth,
      config: { '/': [{ minute: LIMIT }] },
    }),
  ]);
  (instance.app.getHttpServer() as Server).keepAliveTimeout = 600_000;
  return instance;
}

/** Sends one burst of concurrent requests as `user`; resolves the count of each status. */
async function burst(url: string, user: string): Promise<Record<number, number>> {
  const statuses = await Promise.all(
    Array.from({ length: BURST }, () =>
      fetch(`${url}/hello`, { headers: { user }, signal: AbortSignal.timeout(30_000) }).then(
        async (response) => {
          await response.arrayBuffer();
          return response.status;
        },
      ),
    ),
  );
  const counts: Record<number, number> = {};
  for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}

describe.each([
  ['MemoryBackend', () => new MemoryBackend()],
  ['RedisBackend', (url: string) => new RedisBackend(url)],
  ['SlidingRedisBackend', (url: string) => new SlidingRedisBackend(url)],
])('%s under a flood, default options', (name, createBackend) => {
  let server: RedisServerHandle | undefined;
  let instance: ListeningApp;
  let logs: ReturnType<typeof captureBackendLogs>;

  beforeAll(async () => {
    logs = captureBackendLogs();
    if (name !== 'MemoryBackend') server = await startRedisServer();
    instance = await startApp(createBackend(server?.url ?? ''));
  }, 60_000);

  afterAll(async () => {
    await instance?.close();
    await server?.stop();
    logs.restore();
  });

  it(`admits exactly ${LIMIT} of ${BURST} concurrent requests, ${BURSTS} bursts in a row`, async () => {
    for (let round = 0; round < BURSTS; round++) {
      const counts = await burst(instance.url, `flood-${round}`);
      expect({ round, counts, warnings: logs.warnings() }).toEqual({
        round,
        // A busy application is not an outage: nothing was logged as one.
        warnings: [],
        counts: { 200: LIMIT, 429: BURST - LIMIT },
      });
    }
  }, 300_000);
});
