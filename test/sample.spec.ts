/**
 * The sample application, booted as `npm start` and `npm run start:fastify` boot it (same module,
 * same middleware), on a memory backend with a test clock, on each HTTP adapter. Keeps the sample
 * honest: every feature it shows is checked, on Express and on Fastify.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Test } from '@nestjs/testing';
import type { INestApplication } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { MemoryBackend, type RateLimitBackend } from 'nestjs-ratelimit';
import { io, type Socket } from 'socket.io-client';
import request from 'supertest';
import { AppModule } from '../sample/app.module.js';
import {
  adapterFromEnvironment,
  configureApp,
  createHttpAdapter,
  type SampleAdapter,
} from '../sample/setup.js';
import { DEMOS, localBase, tryIt } from '../sample/try-it.js';
import { TestClock } from './support/nest-app.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const ADAPTERS: readonly SampleAdapter[] = ['express', 'fastify'];

/** The sample's module and middleware on `adapter`, initialised (not yet listening). */
async function bootSample(
  adapter: SampleAdapter,
  backend: RateLimitBackend,
): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [AppModule.register(backend, adapter)],
  }).compile();
  const app = moduleRef.createNestApplication(createHttpAdapter(adapter), { logger: false });
  await configureApp(app);
  await app.init();
  // Fastify serves requests once its plugins (the session, Mercurius) have loaded.
  if (adapter === 'fastify') {
    await (app as NestFastifyApplication).getHttpAdapter().getInstance().ready();
  }
  return app;
}

/** Listens on a free loopback port; the base URL. */
async function listenLoopback(app: INestApplication): Promise<string> {
  await app.listen(0, '127.0.0.1');
  return `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
}

/** A socket.io client of the sample's gateway, connected; its own connection (no multiplexing). */
async function connectChat(base: string, headers: Record<string, string> = {}): Promise<Socket> {
  const socket = io(base, { forceNew: true, reconnection: false, extraHeaders: headers });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('socket.io: no connection in 5s')), 5_000);
    socket.once('connect', () => (clearTimeout(timer), resolve()));
    socket.once('connect_error', (error) => (clearTimeout(timer), reject(error)));
  });
  return socket;
}

/** Sends one `chat` message: the gateway's reply (the ack) or the `exception` event, whichever. */
function chat(socket: Socket, text: string): Promise<{ reply?: unknown; exception?: unknown }> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      socket.off('exception', onException);
    };
    const onException = (exception: unknown): void => (done(), resolve({ exception }));
    const timer = setTimeout(
      () => (done(), reject(new Error(`no answer to ${text} in 5s`))),
      5_000,
    );
    socket.once('exception', onException);
    socket.emit('chat', text, (reply: unknown) => (done(), resolve({ reply })));
  });
}

describe('HTTP_ADAPTER (what npm run start:fastify sets)', () => {
  it('picks Express by default, Fastify when asked, and refuses anything else', () => {
    expect(adapterFromEnvironment({})).toBe('express');
    expect(adapterFromEnvironment({ HTTP_ADAPTER: 'fastify' })).toBe('fastify');
    expect(() => adapterFromEnvironment({ HTTP_ADAPTER: 'Fastify' })).toThrow(
      'HTTP_ADAPTER must be "express" or "fastify", got "Fastify"',
    );
  });
});

const forecastQuery = { query: '{ forecast }' };
const overLimit = 'Over the minute limit; retry in 60s.';

describe.each(ADAPTERS)('the sample app on %s', (adapter) => {
  let app: INestApplication;
  let clock: TestClock;
  let http: ReturnType<typeof request>;

  beforeEach(async () => {
    clock = new TestClock();
    app = await bootSample(adapter, new MemoryBackend({ clock: clock.read, sweepIntervalMs: 0 }));
    http = request(app.getHttpServer());
  });
  afterEach(() => app.close());

  const statuses = async (count: number, send: () => request.Test): Promise<number[]> => {
    const seen: number[] = [];
    for (let i = 0; i < count; i++) seen.push((await send()).status);
    return seen;
  };

  it('serves the try-it page unlimited', async () => {
    const res = await http.get('/').expect(200);
    expect(res.text).toBe(tryIt(localBase()));
  });

  it('limits /hello per client IP with the catch-all rule, with IETF headers', async () => {
    const res = await http.get('/hello').expect(200);
    expect(res.headers['ratelimit-policy']).toBe('"minute";q=30;w=60');
    expect(res.headers['ratelimit']).toBe('"minute";r=29;t=60');
    expect(await statuses(30, () => http.get('/hello'))).toEqual([...Array(29).fill(200), 429]);
  });

  it('answers with the custom 429 body', async () => {
    await statuses(30, () => http.get('/hello'));
    const res = await http.get('/hello').expect(429).expect('retry-after', '60');
    expect(res.body).toEqual({
      error: 'rate_limited',
      message: 'Over the minute limit; retry in 60s.',
      retryAfter: 60,
    });
  });

  it('applies per-method rules on /towns', async () => {
    expect(await statuses(3, () => http.get('/towns'))).toEqual([200, 200, 429]);
    expect(await statuses(4, () => http.post('/towns').send({ name: 'X' }))).toEqual([
      201, 201, 201, 429,
    ]);
  });

  it('shares the nature zone between /forests and /lakes', async () => {
    expect(await statuses(5, () => http.get('/forests/1'))).toEqual([200, 200, 200, 200, 200]);
    await http.get('/lakes/1').expect(429);
  });

  it('blocks a caller everywhere after too many logins, and the admin API lifts it', async () => {
    expect(await statuses(6, () => http.post('/auth/login'))).toEqual([
      201, 201, 201, 201, 201, 429,
    ]);
    const blocked = await http.get('/towns').expect(429).expect('retry-after', '120');
    expect(blocked.body.message).toBe('Blocked for 120s after going over the limit.');
    clock.advance(60_000);
    await http.get('/towns').expect(429).expect('retry-after', '60');
    // The admin API is for admins only, and is not limited, so a blocked admin can reach it.
    await http.post('/admin/rate-limits/unblock/127.0.0.1').expect(403);
    const { body } = await http.get('/auth/admin-token').expect(200);
    const admin = { Authorization: `Bearer ${body.token}` };
    await http
      .get('/admin/rate-limits/peek')
      .query({ user: '127.0.0.1', scope: 'path:/towns', method: 'GET' })
      .set(admin)
      .expect(200, { blockedMs: 60_000, units: [{ unit: 'second', limit: 2, remaining: 2 }] });
    // The user is the normalised address: the IPv4-mapped spelling names nobody.
    await http
      .post('/admin/rate-limits/unblock/::ffff:127.0.0.1')
      .set(admin)
      .expect(201, { unblocked: false });
    await http
      .post('/admin/rate-limits/unblock/127.0.0.1')
      .set(admin)
      .expect(201, { unblocked: true });
    await http.get('/towns').expect(200);
    await http
      .post('/admin/rate-limits/block/127.0.0.1')
      .send({ seconds: 30 })
      .set(admin)
      .expect(201, { blockedForMs: 30_000 });
    await http.get('/towns').expect(429).expect('retry-after', '30');
  });

  it('counts a logged-in session user separately from its IP', async () => {
    const alice = request.agent(app.getHttpServer());
    await alice.post('/auth/login').send({ user: 'alice' }).expect(201);
    await statuses(30, () => http.get('/hello'));
    await http.get('/hello').expect(429);
    // Same address, but the session identifies alice: her own counter.
    await alice.get('/hello').expect(200);
  });

  it('applies decorator rules and @SkipRateLimit on /reports', async () => {
    expect(await statuses(3, () => http.get('/reports/export'))).toEqual([200, 200, 429]);
    expect(await statuses(11, () => http.get('/reports/daily'))).toEqual([
      ...Array(10).fill(200),
      429,
    ]);
    expect(await statuses(15, () => http.get('/reports/health'))).toEqual(Array(15).fill(200));
  });

  it('leaves admins with a JWT unlimited', async () => {
    const { body } = await http.get('/auth/admin-token').expect(200);
    const admin = () => http.get('/reports/export').set('Authorization', `Bearer ${body.token}`);
    expect(await statuses(5, admin)).toEqual([200, 200, 200, 200, 200]);
    expect(
      await statuses(40, () => http.get('/hello').set('Authorization', `Bearer ${body.token}`)),
    ).toEqual(Array(40).fill(200));
  });

  it('identifies API-key callers through the injected ApiKeyService, per plan', async () => {
    const partner = () => http.get('/hello').set('X-Api-Key', 'demo-partner-key');
    const res = await partner().expect(200);
    expect(res.headers['ratelimit']).toBe('"minute";r=299;t=60');
    const free = await http.get('/hello').set('X-Api-Key', 'demo-free-key').expect(200);
    expect(free.headers['ratelimit']).toBe('"minute";r=29;t=60');
  });

  it('limits the GraphQL forecast query per caller: a TOO_MANY_REQUESTS error, Retry-After', async () => {
    const forecast = () => http.post('/graphql').send(forecastQuery);
    for (let i = 0; i < 2; i++) {
      await forecast().expect(200, { data: { forecast: 'sunny' } });
    }
    const rejected = await forecast().expect(200).expect('retry-after', '60');
    expect(rejected.body.data).toBeNull();
    expect(rejected.body.errors).toHaveLength(1);
    const [error] = rejected.body.errors;
    expect(error.message).toBe(overLimit);
    expect(error.path).toEqual(['forecast']);
    expect(error.extensions).toEqual({ code: 'TOO_MANY_REQUESTS', retryAfter: 60 });
    // The API-key resolver reads the GraphQL request too: key:acme has a counter of its own.
    await forecast()
      .set('X-Api-Key', 'demo-free-key')
      .expect(200, { data: { forecast: 'sunny' } });
    clock.advance(60_000);
    await forecast().expect(200, { data: { forecast: 'sunny' } });
  });

  it('counts each root field of one GraphQL request: three aliases of forecast, the third rejected', async () => {
    const res = await http
      .post('/graphql')
      .send({ query: '{ a: forecast b: forecast c: forecast }' })
      .expect(200);
    expect(res.body.data).toBeNull();
    expect(res.body.errors.map((error: { path: string[] }) => error.path)).toEqual([['c']]);
    expect(res.body.errors[0].extensions.code).toBe('TOO_MANY_REQUESTS');
  });

  it('limits chat messages per caller on the socket.io gateway; the connection stays open', async () => {
    const base = await listenLoopback(app);
    const socket = await connectChat(base);
    const partner = await connectChat(base, { 'x-api-key': 'demo-free-key' });
    try {
      for (const text of ['hi 1', 'hi 2', 'hi 3']) {
        expect(await chat(socket, text)).toEqual({ reply: `echo: ${text}` });
      }
      expect(await chat(socket, 'hi 4')).toEqual({
        exception: { status: 'error', statusCode: 429, message: overLimit, retryAfter: 60 },
      });
      expect(socket.connected).toBe(true);
      // The handshake's X-Api-Key identifies this client: key:acme, not the same address.
      expect(await chat(partner, 'hello')).toEqual({ reply: 'echo: hello' });
      clock.advance(60_000);
      expect(await chat(socket, 'hi 5')).toEqual({ reply: 'echo: hi 5' });
    } finally {
      socket.close();
      partner.close();
    }
  });
});

/** The printed page split into its demos: a description, then the indented lines to paste. */
function printedDemos(page: string): { description: string; commands: string[] }[] {
  const demos: { description: string; commands: string[] }[] = [];
  // The first two lines are the title and a blank line.
  for (const line of page.split('\n').slice(2)) {
    if (line === '') continue;
    const last = demos.at(-1);
    if (line.startsWith('  ')) last!.commands.push(line.slice(2));
    else if (last && last.commands.length === 0) last.description += `\n${line}`;
    else demos.push({ description: line, commands: [] });
  }
  return demos;
}

/**
 * What a user does with the page `npm start` prints: paste every line, in the printed order,
 * into a shell (here bash, with the real curl, sed and grep) against the running sample, on a
 * frozen clock so that every window and Retry-After is the one a quick paste sees.
 */
describe.each(ADAPTERS)('the try-it lines on %s, pasted in printed order', (adapter) => {
  let app: INestApplication;
  let dir: string;
  let base: string;

  beforeAll(async () => {
    try {
      await run('curl', ['--version'], { timeout: 5_000 });
    } catch {
      throw new Error(
        "curl is not on the PATH, and this test pastes the sample's curl lines into bash. " +
          'Install it: apt-get install curl (Debian, Ubuntu), brew install curl (macOS).',
      );
    }
    const frozen = (): number => 1_000_000;
    app = await bootSample(adapter, new MemoryBackend({ clock: frozen, sweepIntervalMs: 0 }));
    base = await listenLoopback(app);
    // The session demo writes its cookie jar into the working directory. HOME points here too,
    // so the developer's own ~/.curlrc is not read, and this one bounds every curl call. The
    // WebSocket demo runs `node -e` with socket.io-client, which a user pastes in the
    // repository: here the directory links to the repository's node_modules instead.
    dir = mkdtempSync(join(tmpdir(), 'sample-try-it-'));
    writeFileSync(join(dir, '.curlrc'), 'max-time = 5\nconnect-timeout = 2\n');
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  });
  afterAll(async () => {
    await app?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs one demo's lines as one paste; its output without `\r` and trailing blanks. */
  async function paste(commands: string[]): Promise<string> {
    const { stdout, stderr } = await run('bash', ['-c', commands.join('\n')], {
      cwd: dir,
      // No proxy variables: the lines must reach the loopback server directly.
      env: { PATH: process.env.PATH, HOME: dir, LC_ALL: 'C' },
      timeout: 15_000,
      killSignal: 'SIGKILL',
    }).catch((error: { stdout?: string; stderr?: string; message: string }) => ({
      stdout: error.stdout ?? '',
      stderr: `${error.stderr ?? ''}${error.message}`,
    }));
    const output = stdout
      .replace(/\r/g, '')
      .split('\n')
      .map((line) => line.trimEnd())
      .join('\n')
      .trimEnd();
    return stderr === '' ? output : `${output}\n[stderr] ${stderr.trim()}`;
  }

  it('prints the demos of try-it.ts, in their order', () => {
    expect(printedDemos(tryIt(base))).toEqual(
      DEMOS.map(({ description, commands }) => ({ description, commands: commands(base) })),
    );
  });

  it('shows each feature when the lines are pasted in order', async () => {
    const outputs: string[] = [];
    for (const { commands } of printedDemos(tryIt(base))) outputs.push(await paste(commands));
    expect(outputs).toEqual(DEMOS.map((demo) => demo.output));
  }, 120_000);
});
