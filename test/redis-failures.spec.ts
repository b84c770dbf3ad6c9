/**
 * Redis outages against real servers: killed mid-run and restarted, paused with CLIENT PAUSE,
 * nothing listening at start-up, scripts flushed mid-run. Each case checks the failure policy,
 * the time bound, that nothing of Redis's errors reaches the client, and that limiting resumes.
 */
import { Cluster, Redis } from 'ioredis';
import {
  RateLimitModule,
  RedisBackend,
  SlidingRedisBackend,
  type FailurePolicy,
  type RateLimitBackend,
} from 'nestjs-ratelimit';
import { captureBackendLogs } from './support/backend-logs.js';
import { startFaultProxy } from './support/fault-proxy.js';
import {
  ADAPTERS,
  as,
  headerAuth,
  listenApp,
  type AdapterName,
  type ListeningApp,
} from './support/nest-app.js';
import {
  findFreePort,
  startOwnedRedisServer,
  type OwnedRedisServerHandle,
} from './support/redis-harness.js';

const TIMEOUT_MS = 250;
/** What a request may take at most during an outage: the backend timeout plus HTTP overhead. */
const REQUEST_BOUND_MS = TIMEOUT_MS + 500;

type Running = ListeningApp;

async function startApp(
  backend: RateLimitBackend | (() => RateLimitBackend),
  failurePolicy: FailurePolicy = 'open',
  adapter: AdapterName = 'express',
): Promise<Running> {
  const options = (made: RateLimitBackend) => ({
    backend: made,
    failurePolicy,
    backendTimeoutMs: TIMEOUT_MS,
    authenticate: headerAuth,
    config: { '/': [{ minute: 2 }] },
  });
  return listenApp(
    [
      // A factory goes through forRootAsync, so the backend is made inside Nest's DI.
      typeof backend === 'function'
        ? RateLimitModule.forRootAsync({ useFactory: () => options(backend()) })
        : RateLimitModule.forRoot(options(backend)),
    ],
    adapter,
  );
}

/** One GET as `user`, timed. */
async function hit(
  running: Running,
  user: string,
): Promise<{ status: number; body: string; ms: number; retryAfter: string | null }> {
  const started = performance.now();
  const response = await fetch(`${running.url}/hello`, {
    headers: as(user),
    signal: AbortSignal.timeout(5_000),
  });
  const body = await response.text();
  return {
    status: response.status,
    body,
    ms: performance.now() - started,
    retryAfter: response.headers.get('retry-after'),
  };
}

/** Polls (bounded by count and time) until `user` is limited again; returns how long it took. */
async function msUntilLimited(running: Running, user: string, maxMs = 5_000): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < 200 && performance.now() - started < maxMs; i++) {
    if ((await hit(running, user)).status === 429) return performance.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${user} was not limited again within ${maxMs} ms`);
}

const logs = captureBackendLogs();
afterAll(() => logs.restore());
beforeEach(() => logs.clear());

function expectNoRedisDetails(body: string): void {
  expect(body).not.toMatch(
    /redis|ECONNREFUSED|NOSCRIPT|ioredis|Stream isn't writeable|Connection is closed/i,
  );
}

const BACKENDS = [
  { name: 'RedisBackend', createBackend: (url: string) => new RedisBackend(url) },
  { name: 'SlidingRedisBackend', createBackend: (url: string) => new SlidingRedisBackend(url) },
] as const;

/** A fresh Redis server for each test, and the app under test, stopped after it. */
function useServerPerTest(): { server(): OwnedRedisServerHandle; run(app: Running): Running } {
  let server: OwnedRedisServerHandle;
  let running: Running | undefined;
  beforeEach(async () => {
    server = await startOwnedRedisServer();
  });
  afterEach(async () => {
    await running?.close();
    running = undefined;
    await server.stop();
  });
  return {
    server: () => server,
    run: (app) => (running = app),
  };
}

describe.each(ADAPTERS.flatMap((adapter) => BACKENDS.map((backend) => ({ ...backend, adapter }))))(
  '$name outages on $adapter',
  ({ name, createBackend, adapter }) => {
    const servers = useServerPerTest();
    let server: OwnedRedisServerHandle;
    let running: Running;
    const start = async (policy: FailurePolicy = 'open') => {
      server = servers.server();
      running = servers.run(await startApp(createBackend(server.url), policy, adapter));
    };

    it('killed mid-run: fails open within the bound, logs once, and limits again soon after restart', async () => {
      await start();
      expect((await hit(running, 'a')).status).toBe(200);
      expect((await hit(running, 'a')).status).toBe(200);
      expect((await hit(running, 'a')).status).toBe(429);

      await server.kill();
      // 'a' was told to come back in a minute: the instance remembers it (localRejectCache, on
      // by default for Redis backends) and keeps the limit without Redis.
      expect((await hit(running, 'a')).status).toBe(429);
      for (let i = 0; i < 5; i++) {
        const res = await hit(running, 'b');
        expect(res.status).toBe(200);
        expect(res.body).toBe('Hello world!');
        expect(res.ms).toBeLessThan(REQUEST_BOUND_MS);
      }
      expect(logs.warnings()).toHaveLength(1);
      // The warning names the backend and the server it tried, not only ioredis's error.
      expect(logs.warnings()[0]).toContain(
        `The rate-limit backend ${name}(redis://127.0.0.1:${server.port}) failed (`,
      );

      await server.restart();
      // Redis came back empty (no persistence): a user gets a fresh window of 2, then a 429.
      const ms = await msUntilLimited(running, 'c');
      expect(ms).toBeLessThan(2_500);
      expect(logs.infos().some((line) => /answers again/.test(line))).toBe(true);
      expect(logs.warnings()).toHaveLength(1);
    }, 30_000);

    it('killed mid-run with failurePolicy closed: a 503 with Retry-After and no Redis error text', async () => {
      await start('closed');
      expect((await hit(running, 'b')).status).toBe(200);
      await server.kill();
      const res = await hit(running, 'b');
      expect(res.status).toBe(503);
      expect(res.retryAfter).toBe('1');
      expect(res.ms).toBeLessThan(REQUEST_BOUND_MS);
      expectNoRedisDetails(res.body);
    }, 30_000);

    it('SCRIPT FLUSH mid-run: the next decisions are still right and nothing fails', async () => {
      await start('closed');
      expect((await hit(running, 'd')).status).toBe(200);
      const admin = new Redis(server.port, server.host, { maxRetriesPerRequest: 0 });
      try {
        await admin.script('FLUSH');
      } finally {
        admin.disconnect();
      }
      expect((await hit(running, 'd')).status).toBe(200);
      expect((await hit(running, 'd')).status).toBe(429);
      expect(logs.warnings()).toHaveLength(0);
    }, 30_000);
  },
);

// Redis's pause holds the backend alike under every adapter; what the adapter writes on a
// failure (the 503) is covered on both above. Express only, as this is the slowest outage.
describe.each(BACKENDS)('$name paused', ({ createBackend }) => {
  const servers = useServerPerTest();

  it('paused with CLIENT PAUSE: requests wait at most the timeout, then limiting resumes', async () => {
    const server = servers.server();
    const running = servers.run(await startApp(createBackend(server.url), 'closed'));
    expect((await hit(running, 'c')).status).toBe(200);
    const admin = new Redis(server.port, server.host, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
    });
    try {
      await admin.connect();
      await admin.call('CLIENT', 'PAUSE', '3000', 'ALL');
      const res = await hit(running, 'c');
      expect(res.status).toBe(503);
      expect(res.ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 10);
      expect(res.ms).toBeLessThan(REQUEST_BOUND_MS);
      expectNoRedisDetails(res.body);
      await admin.call('CLIENT', 'UNPAUSE');
    } finally {
      admin.disconnect();
    }
    // The paused call completes late (Redis runs it after the pause), and later calls decide
    // again: the 2-per-minute limit is reached within a couple of seconds.
    const ms = await msUntilLimited(running, 'c');
    expect(ms).toBeLessThan(2_500);
  }, 30_000);
});

describe('nothing listening at start-up', () => {
  it.each<[FailurePolicy, number, AdapterName]>(
    ADAPTERS.flatMap((adapter) => [
      ['open', 200, adapter],
      ['closed', 503, adapter],
    ]),
  )(
    'the app starts within 2 s and answers %s requests with a %s within the bound, on %s',
    async (policy, status, adapter) => {
      const port = await findFreePort();
      const started = performance.now();
      const running = await startApp(
        new RedisBackend(`redis://127.0.0.1:${port}`),
        policy,
        adapter,
      );
      try {
        expect(performance.now() - started).toBeLessThan(2_000);
        const res = await hit(running, 'e');
        expect(res.status).toBe(status);
        expect(res.ms).toBeLessThan(REQUEST_BOUND_MS);
        expectNoRedisDetails(res.body);
      } finally {
        await running.close();
      }
    },
    30_000,
  );

  it('limits as soon as the server appears, and says so once', async () => {
    // Start with a server that is down, then bring it up on the same port.
    const server = await startOwnedRedisServer();
    await server.kill();
    const running = await startApp(new RedisBackend(server.url));
    try {
      await waitForStartupReport();
      expect((await hit(running, 'f')).status).toBe(200);
      await server.restart();
      const ms = await msUntilLimited(running, 'f');
      expect(ms).toBeLessThan(2_500);
      const connected = logs.infos().filter((line) => /has connected to Redis/.test(line));
      expect(connected).toEqual([
        `The rate-limit backend RedisBackend(${server.url}) has connected to Redis.`,
      ]);
      expect(startupReports()).toHaveLength(1);
    } finally {
      await running.close();
      await server.stop();
    }
  }, 30_000);
});

/** The start-up reports logged so far (the failure policy's own warnings left out). */
function startupReports(): string[] {
  return logs.warnings().filter((line) => line.includes('at start-up'));
}

/** Waits (bounded by count and time) for the first start-up report and returns it. */
async function waitForStartupReport(maxMs = 4_000): Promise<string> {
  const started = performance.now();
  for (let i = 0; i < 400 && performance.now() - started < maxMs; i++) {
    const [report] = startupReports();
    if (report !== undefined) return report;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`No start-up report within ${maxMs} ms`);
}

describe('start-up report of an unreachable Redis', () => {
  const SAFE = { enableOfflineQueue: false, maxRetriesPerRequest: 0 } as const;
  let port: number;
  beforeEach(async () => {
    port = await findFreePort();
  });

  const FOLLOWS = '; requests follow the failure policy until it is reachable.';

  it.each<[string, () => RateLimitBackend, string]>([
    [
      'a URL, without its password',
      () => new RedisBackend(`redis://:hunter2@127.0.0.1:${port}/0`),
      'RedisBackend(redis://127.0.0.1:PORT/0)',
    ],
    [
      'ioredis options',
      () => new SlidingRedisBackend({ host: '127.0.0.1', port, password: 'hunter2' }),
      'SlidingRedisBackend(127.0.0.1:PORT)',
    ],
    [
      'a client passed in',
      () => {
        const client = new Redis(port, '127.0.0.1', { ...SAFE, password: 'hunter2' });
        client.on('error', () => undefined); // as an application would; ioredis prints errors otherwise
        return new RedisBackend(client);
      },
      'RedisBackend(127.0.0.1:PORT)',
    ],
  ])(
    'names the address of %s and the error, once, without holding up start-up',
    async (_name, create, described) => {
      const backend = create();
      const started = performance.now();
      const running = await startApp(backend);
      try {
        expect(performance.now() - started).toBeLessThan(2_000);
        const report = await waitForStartupReport();
        expect(backend.describe()).toBe(described.replace('PORT', String(port)));
        expect(report).toBe(
          `The rate-limit backend ${backend.describe()} cannot reach Redis at start-up ` +
            `(connect ECONNREFUSED 127.0.0.1:${port})${FOLLOWS}`,
        );
        expect(report).not.toContain('hunter2');
        // Requests are decided by the failure policy; the client keeps retrying (every 500 ms at
        // most, each attempt an error event), and the report is not repeated.
        expect((await hit(running, 'g')).status).toBe(200);
        await new Promise((resolve) => setTimeout(resolve, 700));
        expect(startupReports()).toHaveLength(1);
      } finally {
        await running.close();
        const client = await (backend as RedisBackend).getClient();
        client.disconnect();
      }
    },
    30_000,
  );

  it('is made for a backend built in forRootAsync, whose provider is a factory', async () => {
    const running = await startApp(() => new RedisBackend(`redis://127.0.0.1:${port}`));
    try {
      expect(await waitForStartupReport()).toMatch(
        new RegExp(
          `RedisBackend\\(redis://127\\.0\\.0\\.1:${port}\\) cannot reach Redis.*ECONNREFUSED`,
        ),
      );
    } finally {
      await running.close();
    }
  }, 30_000);

  it('names the Cluster node that failed', async () => {
    const cluster = new Cluster([{ host: '127.0.0.1', port }], {
      enableOfflineQueue: false,
      redisOptions: { maxRetriesPerRequest: 0 },
    });
    cluster.on('error', () => undefined); // as an application would; ioredis prints errors otherwise
    const backend = new RedisBackend(cluster);
    const running = await startApp(backend);
    try {
      expect(backend.describe()).toBe('RedisBackend(Redis Cluster)');
      expect(await waitForStartupReport()).toBe(
        `The rate-limit backend RedisBackend(Redis Cluster) cannot reach Redis at start-up ` +
          `(node 127.0.0.1:${port}: Connection is closed.)${FOLLOWS}`, // all ioredis tells of it
      );
    } finally {
      await running.close();
      cluster.disconnect();
    }
  }, 30_000);

  it('says so when the server accepts the connection but never answers', async () => {
    const server = await startOwnedRedisServer();
    const proxy = await startFaultProxy(server);
    proxy.blackhole();
    const backend = new RedisBackend(proxy.url);
    const running = await startApp(backend);
    try {
      // The connection is made (no error event); the report comes when 2 s pass without 'ready'.
      expect(await waitForStartupReport()).toBe(
        `The rate-limit backend RedisBackend(${proxy.url}) cannot reach Redis at start-up ` +
          `(not ready 2000 ms after start-up (status 'connect'))${FOLLOWS}`,
      );
    } finally {
      await running.close();
      await proxy.stop();
      await server.stop();
    }
  }, 30_000);

  it('stays silent when Redis is reachable', async () => {
    const server = await startOwnedRedisServer();
    const backend = new RedisBackend(server.url);
    const running = await startApp(backend);
    try {
      expect((await hit(running, 'h')).status).toBe(200);
      expect(backend.describe()).toBe(`RedisBackend(${server.url})`);
      expect(logs.warnings()).toEqual([]);
    } finally {
      await running.close();
      await server.stop();
    }
  }, 30_000);
});
