/**
 * Shutdown never hangs: `app.close()` of a real Nest app returns within a bound while Redis stops
 * answering behind a fault proxy that keeps the TCP connection open (a blackhole), both for a
 * client the backend created (which it must drop) and for one the application passed in (which it
 * must leave alone).
 */
import { Redis } from 'ioredis';
import { RedisBackend, SlidingRedisBackend, type RateLimitBackend } from 'nestjs-ratelimit';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { as, createTestApp, headerAuth, type TestApp } from './support/nest-app.js';
import {
  findFreePort,
  startOwnedRedisServer,
  type OwnedRedisServerHandle,
} from './support/redis-harness.js';

/**
 * What `app.close()` may take while Redis is black-holed: the backend waits 500 ms for `QUIT`'s
 * reply, then its client destroys the half-open socket within 500 ms; the rest is slack for a
 * loaded machine. Before the fix it never returned.
 */
const CLOSE_BOUND_MS = 2_000;

/** Waits, bounded by count and time, until `predicate` holds. */
async function waitFor(what: string, predicate: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < timeoutMs / 10 && Date.now() < deadline; i++) {
    if (predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
}

function startApp(backend: RateLimitBackend): Promise<TestApp> {
  return createTestApp({
    rateLimit: { backend, authenticate: headerAuth, config: { '/': [{ minute: 1 }] } },
  });
}

let users = 0;

/** Two requests of a new user: admitted, then limited, so Redis decided both through the proxy. */
async function expectRedisDecides(t: TestApp): Promise<void> {
  const user = `user-${++users}`;
  await t.http.get('/').set(as(user)).expect(200);
  await t.http.get('/').set(as(user)).expect(429);
}

/** Runs `close` and resolves how long it took, failing (instead of hanging) past twice the bound. */
async function timed(close: () => Promise<void>): Promise<number> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('app.close() did not return')), 2 * CLOSE_BOUND_MS);
  });
  try {
    await Promise.race([close(), hung]);
  } finally {
    clearTimeout(timer);
  }
  return performance.now() - started;
}

let server: OwnedRedisServerHandle;
let proxy: FaultProxy;

beforeAll(async () => {
  server = await startOwnedRedisServer();
});
afterAll(() => server.stop());
beforeEach(async () => {
  proxy = await startFaultProxy(server);
});
afterEach(() => proxy.stop());

describe.each([
  ['RedisBackend', (url: string) => new RedisBackend(url)],
  ['SlidingRedisBackend', (url: string) => new SlidingRedisBackend(url)],
])('%s with a client of its own', (_name, createBackend) => {
  it('closes within the bound while Redis is black-holed, leaving no connection behind', async () => {
    const t = await startApp(createBackend(proxy.url));
    await expectRedisDecides(t);
    expect(proxy.connections()).toBe(1);

    proxy.blackhole();
    expect(await timed(() => t.close())).toBeLessThan(CLOSE_BOUND_MS);
    await waitFor('the backend to close its connection', () => proxy.connections() === 0);
  });

  it('closes within the bound when Redis was black-holed before the first connection', async () => {
    proxy.blackhole();
    const t = await startApp(createBackend(proxy.url));
    expect(await timed(() => t.close())).toBeLessThan(CLOSE_BOUND_MS);
    await waitFor('the backend to close its connection', () => proxy.connections() === 0);
  });
});

describe('a backend whose Redis is down', () => {
  it('closes at once while its client waits to reconnect, and the client stops retrying', async () => {
    const port = await findFreePort();
    const backend = new RedisBackend(`redis://127.0.0.1:${port}`);
    const t = await startApp(backend);
    const client = await backend.getClient();
    await waitFor('a failed attempt', () => client.status === 'reconnecting');
    let attempts = 0;
    client.on('connecting', () => attempts++);

    // Before: it waited a whole second for an 'end' event that ioredis never sends then.
    expect(await timed(() => t.close())).toBeLessThan(250);
    // Longer than the longest retry delay (500 ms): no attempt is made any more.
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(attempts).toBe(0);
  });
});

describe('a client the application passed in', () => {
  it('is left untouched by close(), which does not wait for the black-holed Redis', async () => {
    const client = new Redis(proxy.port, proxy.host, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
    });
    let closes = 0;
    client.on('close', () => closes++);
    try {
      await waitFor('the client to connect', () => client.status === 'ready', 5_000);
      const t = await startApp(new RedisBackend(client));
      await expectRedisDecides(t);

      proxy.blackhole();
      expect(await timed(() => t.close())).toBeLessThan(CLOSE_BOUND_MS);

      // No QUIT, no disconnect: the same connection is still open and, once the proxy forwards
      // again, answers on it (the proxy resets connections whose bytes it dropped: none here).
      expect(client.status).toBe('ready');
      proxy.forward();
      expect(await client.ping()).toBe('PONG');
      expect(closes).toBe(0);
    } finally {
      client.disconnect();
    }
  });
});
