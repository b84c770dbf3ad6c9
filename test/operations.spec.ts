/**
 * The operations features of SPEC 7 through real Nest applications, on both HTTP adapters and on
 * the memory backend and a real Redis server (started here): limits from the caller's plan,
 * counting only failures or successes, shadow mode, decision events, `skip`, `@RateLimitState()`
 * and `enabled: false`. Time is the test's: the memory backend's clock and the Redis backend's
 * `testClock` both read one {@link TestClock}.
 */
import {
  Body,
  Controller,
  Get,
  HttpCode,
  Injectable,
  Module,
  Post,
  UnauthorizedException,
  type Type,
} from '@nestjs/common';
import {
  MemoryBackend,
  RateLimit,
  RateLimitAdmin,
  RateLimitBackend,
  RateLimitModule,
  RateLimitState,
  RedisBackend,
  SkipRateLimit,
  type RateLimitEvent,
  type RateLimitModuleOptions,
} from 'nestjs-ratelimit';
import { DataPointType, type DataPoint, type Histogram } from '@opentelemetry/sdk-metrics';
import { Redis } from 'ioredis';
import { captureLogs } from './support/captured-logs.js';
import { sdkProvider, type OnDemandReader } from './support/metric-reader.js';
import {
  ADAPTERS,
  as,
  createTestApp,
  headerAuth,
  HelloController,
  TestClock,
  type AdapterName,
  type TestApp,
} from './support/nest-app.js';
import { RecordingBackend } from './support/recording-backend.js';
import { commandCalls } from './support/command-stats.js';
import { startRedisServer, type RedisServerHandle } from './support/redis-harness.js';

/** The data points of one collected metric, by name. */
async function pointsOf(reader: OnDemandReader, name: string): Promise<DataPoint<unknown>[]> {
  const { resourceMetrics, errors } = await reader.collect();
  expect(errors).toEqual([]);
  const metric = resourceMetrics.scopeMetrics
    .flatMap((scope) => scope.metrics)
    .find((candidate) => candidate.descriptor.name === name);
  if (name === 'ratelimit.decisions') expect(metric?.dataPointType).toBe(DataPointType.SUM);
  return (metric?.dataPoints ?? []) as DataPoint<unknown>[];
}

const BACKENDS = ['memory', 'redis'] as const;
type BackendName = (typeof BACKENDS)[number];

let server: RedisServerHandle;
let prefixes = 0;
const run = Math.random().toString(36).slice(2, 8);

beforeAll(async () => {
  server = await startRedisServer();
}, 30_000);

afterAll(async () => {
  await server?.stop();
});

/** A backend of `kind` on `clock`; each Redis backend gets a key prefix of its own. */
function backendOn(kind: BackendName, clock: TestClock): RateLimitBackend {
  if (kind === 'memory') return new MemoryBackend({ clock: clock.read, sweepIntervalMs: 0 });
  return new RedisBackend(server.url, {
    prefix: `ops-${run}-${++prefixes}:`,
    testClock: clock.read,
  });
}

@Controller('login')
class LoginController {
  /** Five failed logins a minute; a good password is never counted. */
  @RateLimit({ minute: 5, count: 'failures' })
  @Post()
  @HttpCode(200)
  login(@Body() body: { password?: string }): string {
    if (body.password !== 'right') throw new UnauthorizedException('wrong password');
    return 'welcome';
  }
}

@Controller('signup')
class SignupController {
  /** Two accounts a minute; a rejected form (400) is never counted. */
  @RateLimit({ minute: 2, count: 'successes' })
  @Post()
  signup(@Body() body: { name?: string }): string {
    if (!body.name) throw new UnauthorizedException('no name');
    return 'created';
  }
}

/** Holds every call until the test opens the gate, to keep many requests in flight at once. */
class Gate {
  entered = 0;
  private open!: () => void;
  readonly opened = new Promise<void>((resolve) => (this.open = resolve));
  release(): void {
    this.open();
  }
}
const gate = { current: new Gate() };

@Controller('slow-login')
class SlowLoginController {
  @RateLimit({ minute: 5, count: 'failures' })
  @Post()
  async login(): Promise<string> {
    gate.current.entered++;
    await gate.current.opened;
    throw new UnauthorizedException('wrong password');
  }
}

@Controller('state')
class StateController {
  @RateLimit({ minute: 3 })
  @Get()
  limited(@RateLimitState() state?: RateLimitState): unknown {
    return { outcome: state?.outcome, units: state?.units, scope: state?.counter.scope };
  }

  @SkipRateLimit()
  @Get('free')
  free(@RateLimitState() state?: RateLimitState): unknown {
    return { state: state ?? null };
  }
}

@Controller('health')
class HealthController {
  @Get()
  health(): string {
    return 'ok';
  }
}

@SkipRateLimit()
@Controller('skipped')
class SkippedController {
  @Get()
  skipped(): string {
    return 'not limited';
  }
}

describe.each(ADAPTERS.flatMap((adapter) => BACKENDS.map((kind) => [adapter, kind] as const)))(
  'on %s with the %s backend',
  (adapter: AdapterName, kind: BackendName) => {
    async function withApp(
      options: RateLimitModuleOptions,
      body: (t: TestApp, clock: TestClock) => Promise<void>,
      controllers: Type[] = [LoginController],
    ): Promise<void> {
      const clock = new TestClock();
      const t = await createTestApp({
        adapter,
        controllers,
        rateLimit: { authenticate: headerAuth, backend: backendOn(kind, clock), ...options },
      });
      try {
        await body(t, clock);
      } finally {
        await t.close();
      }
    }

    describe("count: 'failures'", () => {
      it('rejects the sixth failed login and never counts a good one', async () => {
        await withApp({}, async (t, clock) => {
          for (let i = 0; i < 10; i++) {
            await t.http.post('/login').set(as('u')).send({ password: 'right' }).expect(200);
          }
          for (let i = 0; i < 5; i++) {
            await t.http.post('/login').set(as('u')).send({ password: 'wrong' }).expect(401);
          }
          // Even the right password waits now: the limit is on attempts while failures pile up.
          const rejected = await t.http.post('/login').set(as('u')).send({ password: 'right' });
          expect(rejected.status).toBe(429);
          expect(rejected.headers['retry-after']).toBe('60');
          // Another user is not affected, and the window's end frees the first one.
          await t.http.post('/login').set(as('v')).send({ password: 'wrong' }).expect(401);
          clock.advance(60_000);
          await t.http.post('/login').set(as('u')).send({ password: 'right' }).expect(200);
        });
      });

      it('admits at most the limit of 200 concurrent failing requests', async () => {
        gate.current = new Gate();
        await withApp(
          {},
          async (t) => {
            const statuses: number[] = [];
            const requests = Array.from({ length: 200 }, () =>
              t.http
                .post('/slow-login')
                .set(as('u'))
                .then((res) => statuses.push(res.status)),
            );
            // Every request but the five inside the handler is answered before the gate opens.
            const deadline = Date.now() + 20_000;
            while (statuses.length < 195 && Date.now() < deadline) {
              await new Promise((resolve) => setTimeout(resolve, 10));
            }
            expect(statuses.length).toBe(195);
            gate.current.release();
            await Promise.all(requests);
            expect(gate.current.entered).toBe(5);
            expect(statuses.filter((status) => status === 429)).toHaveLength(195);
            expect(statuses.filter((status) => status === 401)).toHaveLength(5);
          },
          [SlowLoginController],
        );
      }, 30_000);
    });

    describe("count: 'successes'", () => {
      it('counts created accounts only', async () => {
        await withApp(
          {},
          async (t) => {
            for (let i = 0; i < 4; i++) {
              await t.http.post('/signup').set(as('u')).send({}).expect(401);
            }
            await t.http.post('/signup').set(as('u')).send({ name: 'a' }).expect(201);
            await t.http.post('/signup').set(as('u')).send({ name: 'b' }).expect(201);
            await t.http.post('/signup').set(as('u')).send({ name: 'c' }).expect(429);
          },
          [SignupController],
        );
      });
    });

    describe('shadow mode', () => {
      it('counts as enforced, never rejects, and reports the would-be rejections', async () => {
        const events: RateLimitEvent[] = [];
        await withApp(
          {
            headers: 'draft-10',
            onDecision: (event) => events.push(event),
            config: { '^/$': [{ minute: 2, mode: 'shadow' }] },
          },
          async (t, clock) => {
            for (let i = 0; i < 2; i++) await t.http.get('/').set(as('u')).expect(200);
            const over = await t.http.get('/').set(as('u')).expect(200);
            expect(over.headers['ratelimit']).toBe('"minute";r=0;t=60');
            expect(over.headers['retry-after']).toBeUndefined();
            await t.http.get('/').set(as('u')).expect(200);
            clock.advance(60_000);
            await t.http.get('/').set(as('u')).expect(200);
            expect(events.map((event) => event.outcome)).toEqual([
              'allowed',
              'allowed',
              'shadow-rejected',
              'shadow-rejected',
              'allowed',
            ]);
            expect(events[2]).toMatchObject({
              counter: { user: 'u', scope: 'path:/', method: '*' },
              identity: { user: 'u', group: 'default' },
              retryAfterMs: 60_000,
              contextType: 'http',
            });
          },
          [HelloController],
        );
      });

      it("takes a rule's own mode over the module's", async () => {
        await withApp(
          {
            mode: 'shadow',
            config: { '^/strict': [{ minute: 1, mode: 'enforce' }], '^/': [{ minute: 1 }] },
          },
          async (t) => {
            await t.http.get('/loose').set(as('u')).expect(200);
            await t.http.get('/loose').set(as('u')).expect(200);
            await t.http.get('/strict').set(as('u')).expect(200);
            await t.http.get('/strict').set(as('u')).expect(429);
          },
          [HelloController],
        );
      });

      it('never starts a block that would reject enforced rules', async () => {
        const events: RateLimitEvent[] = [];
        await withApp(
          {
            onDecision: (event) => events.push(event),
            config: {
              '^/new': [{ second: 1, blockTime: 600, mode: 'shadow' }],
              '^/': [{ minute: 100 }],
            },
          },
          async (t) => {
            await t.http.get('/new').set(as('u')).expect(200);
            await t.http.get('/new').set(as('u')).expect(200);
            await t.http.get('/other').set(as('u')).expect(200);
            expect(events.map((event) => event.outcome)).toEqual([
              'allowed',
              'shadow-rejected',
              'allowed',
            ]);
          },
          [HelloController],
        );
      });
    });

    describe('RateLimitAdmin', () => {
      it('peeks, resets, blocks and unblocks through the running app', async () => {
        await withApp(
          { config: { '^/': [{ minute: 3 }] } },
          async (t, clock) => {
            const admin = t.app.get(RateLimitAdmin);
            const counter = { user: 'u', scope: 'path:/a', method: '*' };
            const fresh = await admin.peek(counter);
            expect(fresh.blockedMs).toBe(0);
            expect(fresh.units).toEqual([
              { unit: 'minute', limit: 3, windowMs: 60_000, remaining: 3, resetMs: 60_000 },
            ]);
            for (let i = 0; i < 3; i++) await t.http.get('/a').set(as('u')).expect(200);
            await t.http.get('/a').set(as('u')).expect(429);
            clock.advance(10_000);
            const used = await admin.peek(counter);
            expect(used.units[0]).toMatchObject({ remaining: 0, resetMs: 50_000 });
            // Peeking counts nothing: the next request is decided as before.
            await t.http.get('/a').set(as('u')).expect(429);
            expect(await admin.reset(counter)).toBe(true);
            await t.http.get('/a').set(as('u')).expect(200);

            await admin.block('u', 30_000);
            expect(await admin.blockedFor('u')).toBe(30_000);
            const blocked = await t.http.get('/b').set(as('u')).expect(429);
            expect(blocked.headers['retry-after']).toBe('30');
            clock.advance(5_000);
            expect(await admin.blockedFor('u')).toBe(25_000);
            expect(await admin.unblock('u')).toBe(true);
            expect(await admin.blockedFor('u')).toBe(0);
            await t.http.get('/b').set(as('u')).expect(200);
            await expect(
              admin.peek({ user: 'u', scope: 'path:/a', method: 'GET' }),
            ).rejects.toThrow(/no limited rule of group 'default' counts under/);
          },
          [HelloController],
        );
      });
    });

    describe('metrics', () => {
      it('counts decisions by outcome and times the backend, through an SDK meter', async () => {
        const { provider, reader } = sdkProvider();
        await withApp(
          {
            metrics: { meter: provider.getMeter('test') },
            config: { '^/': [{ minute: 2 }] },
          },
          async (t) => {
            for (let i = 0; i < 3; i++) await t.http.get('/').set(as('u'));
            const decisions = await pointsOf(reader, 'ratelimit.decisions');
            expect(
              decisions
                .map(({ attributes, value }) => [
                  attributes.outcome,
                  attributes.context_type,
                  value,
                ])
                .sort(),
            ).toEqual([
              ['allowed', 'http', 2],
              ['rejected', 'http', 1],
            ]);
            const durations = await pointsOf(reader, 'ratelimit.backend.duration');
            const counts = durations.map(({ attributes, value }) => [
              attributes.outcome,
              (value as Histogram).count,
            ]);
            expect(counts.sort()).toEqual([
              ['allowed', 2],
              ['rejected', 1],
            ]);
          },
          [HelloController],
        );
        await provider.shutdown();
      });
    });

    describe('dynamic limits', () => {
      it('limits each caller by the plan an injected service looks up, once per request', async () => {
        const lookups: string[] = [];
        @Injectable()
        class Plans {
          async limitOf(user: string): Promise<number> {
            lookups.push(user);
            return user.startsWith('pro-') ? 3 : 1;
          }
        }
        @Module({ providers: [Plans], exports: [Plans] })
        class PlansModule {}
        const clock = new TestClock();
        const t = await createTestApp({
          adapter,
          controllers: [HelloController],
          rateLimitModule: [
            RateLimitModule.forRootAsync({
              imports: [PlansModule],
              inject: [Plans],
              useFactory: (plans: Plans) => ({
                authenticate: headerAuth,
                backend: backendOn(kind, clock),
                headers: 'draft-10' as const,
                config: { '^/': [{ minute: (identity) => plans.limitOf(identity.user) }] },
              }),
            }),
          ],
        });
        try {
          const first = await t.http.get('/').set(as('pro-1')).expect(200);
          expect(first.headers['ratelimit-policy']).toBe('"minute";q=3;w=60');
          expect(first.headers['ratelimit']).toBe('"minute";r=2;t=60');
          await t.http.get('/').set(as('pro-1')).expect(200);
          await t.http.get('/').set(as('pro-1')).expect(200);
          await t.http.get('/').set(as('pro-1')).expect(429);
          const free = await t.http.get('/').set(as('free-1')).expect(200);
          expect(free.headers['ratelimit-policy']).toBe('"minute";q=1;w=60');
          await t.http.get('/').set(as('free-1')).expect(429);
          expect(lookups).toEqual(['pro-1', 'pro-1', 'pro-1', 'pro-1', 'free-1', 'free-1']);
        } finally {
          await t.close();
        }
      });
    });

    describe('@RateLimitState()', () => {
      it("hands the handler its own request's decision, and undefined where none applied", async () => {
        await withApp(
          {},
          async (t) => {
            const first = await t.http.get('/state').set(as('u')).expect(200);
            expect(first.body).toEqual({
              outcome: 'allowed',
              scope: 'handler:StateController.limited',
              units: [
                { unit: 'minute', limit: 3, windowMs: 60_000, remaining: 2, resetMs: 60_000 },
              ],
            });
            const second = await t.http.get('/state').set(as('u')).expect(200);
            expect(second.body.units[0].remaining).toBe(1);
            const free = await t.http.get('/state/free').set(as('u')).expect(200);
            expect(free.body).toEqual({ state: null });
          },
          [StateController],
        );
      });
    });
  },
);

describe.each(ADAPTERS)('the hot-key shortcut on %s with Redis', (adapter: AdapterName) => {
  it('sends Redis one script call per block for a flood from a blocked user', async () => {
    const clock = new TestClock();
    const redis = new Redis(server.port, server.host);
    const t = await createTestApp({
      adapter,
      controllers: [HelloController],
      rateLimit: {
        authenticate: headerAuth,
        backend: backendOn('redis', clock),
        config: { '^/': [{ second: 2, blockTime: 60 }] },
      },
    });
    try {
      const scriptCalls = async (): Promise<number> => {
        const calls = await commandCalls(redis);
        return (calls.get('evalsha') ?? 0) + (calls.get('eval') ?? 0);
      };
      await t.http.get('/').set(as('u')).expect(200);
      await t.http.get('/').set(as('u')).expect(200);
      const before = await scriptCalls();
      const statuses = new Set<number>();
      for (let i = 0; i < 200; i++) {
        statuses.add((await t.http.get('/').set(as('u'))).status);
        clock.advance(250); // 50 s of the 60 s block
      }
      expect([...statuses]).toEqual([429]);
      // The request that started the block, and nothing more until it ends.
      expect((await scriptCalls()) - before).toBe(1);
      // Reset and unblock through the admin clear this instance's memory of the rejection.
      expect(await t.app.get(RateLimitAdmin).unblock('u')).toBe(true);
      await t.app.get(RateLimitAdmin).reset({ user: 'u', scope: 'path:/', method: '*' });
      await t.http.get('/').set(as('u')).expect(200);
    } finally {
      await t.close();
      redis.disconnect();
    }
  });
});

describe.each(ADAPTERS)('on %s', (adapter: AdapterName) => {
  async function withApp(
    options: RateLimitModuleOptions,
    body: (t: TestApp) => Promise<void>,
    controllers: Type[] = [HelloController],
  ): Promise<void> {
    const t = await createTestApp({
      adapter,
      controllers,
      rateLimit: { authenticate: headerAuth, ...options },
    });
    try {
      await body(t);
    } finally {
      await t.close();
    }
  }

  describe('onDecision', () => {
    it('is called once per decided request, never for skipped or unlimited ones', async () => {
      const events: RateLimitEvent[] = [];
      await withApp(
        {
          onDecision: (event) => events.push(event),
          config: { '^/open': [{ group: 'default' }], '^/': [{ minute: 1 }] },
        },
        async (t) => {
          await t.http.get('/a').set(as('u')).expect(200);
          await t.http.get('/a').set(as('u')).expect(429);
          await t.http.get('/open').set(as('u')).expect(200);
          await t.http.get('/skipped').set(as('u')).expect(200);
          expect(events.map((event) => [event.outcome, event.counter.scope])).toEqual([
            ['allowed', 'path:/a'],
            ['rejected', 'path:/a'],
          ]);
          expect(events[1]!.retryAfterMs).toBe(60_000);
          expect(events[0]!.durationMs).toBeGreaterThanOrEqual(0);
        },
        [SkippedController, HelloController],
      );
    });

    it('reports backend failures, and a throwing listener fails no request', async () => {
      class FailingBackend extends RecordingBackend {
        override consume(): never {
          throw new Error('connection refused');
        }
      }
      let calls = 0;
      await withApp(
        {
          backend: new FailingBackend(),
          onDecision: (event) => {
            calls++;
            expect(event.outcome).toBe('backend-error');
            throw new Error('listener bug');
          },
          config: { '^/': [{ minute: 1 }] },
        },
        async (t) => {
          const logs = captureLogs();
          for (let i = 0; i < 3; i++) await t.http.get('/').set(as('u')).expect(200);
          expect(calls).toBe(3);
          const listenerErrors = logs
            .ours('error')
            .filter((line) => line.includes('decision listener'));
          expect(listenerErrors).toHaveLength(1);
          expect(listenerErrors[0]).toContain('listener bug');
        },
      );
    });
  });

  describe('skip', () => {
    it('lets matching calls through before the caller is identified, unreported', async () => {
      const events: RateLimitEvent[] = [];
      let identified = 0;
      await withApp(
        {
          authenticate: (request) => {
            identified++;
            return headerAuth(request);
          },
          skip: async (context) =>
            context.switchToHttp().getRequest<{ url: string }>().url.startsWith('/health'),
          onDecision: (event) => events.push(event),
          config: { '^/': [{ minute: 1 }] },
        },
        async (t) => {
          for (let i = 0; i < 3; i++) await t.http.get('/health').expect(200);
          expect(identified).toBe(0);
          await t.http.get('/other').set(as('u')).expect(200);
          await t.http.get('/other').set(as('u')).expect(429);
          expect(identified).toBe(2);
          expect(events).toHaveLength(2);
        },
        [HealthController, HelloController],
      );
    });
  });

  describe('enabled: false', () => {
    it('makes the guard a pass-through: no caller identified, no backend asked', async () => {
      const backend = new RecordingBackend();
      await withApp(
        {
          enabled: false,
          backend,
          authenticate: () => {
            throw new Error('must not be called');
          },
          config: { '^/': [{ second: 1 }] },
        },
        async (t) => {
          for (let i = 0; i < 5; i++) await t.http.get('/').expect(200);
          expect(backend.queries).toHaveLength(0);
        },
      );
    });
  });
});
