/**
 * RateLimitModule.forRoot / forRootAsync, the global guard and filter switches, and start-up
 * validation of the configuration.
 */
import {
  Controller,
  Get,
  Injectable,
  Module,
  UseFilters,
  UseGuards,
  type ExecutionContext,
  type Type,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import {
  MemoryBackend,
  RateLimit,
  RateLimitBackend,
  RateLimitConfigError,
  RateLimitExceptionFilter,
  RateLimitGuard,
  RateLimitModule,
  RateLimitService,
  RedisBackend,
  type RateLimitModuleOptions,
  trustPattern,
} from 'nestjs-ratelimit';
import {
  ADAPTERS,
  as,
  createTestApp,
  headerAuth,
  HelloController,
  TestClock,
} from './support/nest-app.js';
import { RecordingBackend } from './support/recording-backend.js';

@Injectable()
class LimitsConfig {
  readonly perMinute = 2;
}

@Module({ providers: [LimitsConfig], exports: [LimitsConfig] })
class LimitsConfigModule {}

@Injectable()
class RateLimitOptionsFactory {
  constructor(private readonly limits: LimitsConfig) {}
  createRateLimitOptions(): RateLimitModuleOptions {
    return {
      authenticate: headerAuth,
      backend: new MemoryBackend({ sweepIntervalMs: 0 }),
      config: { '/': [{ minute: this.limits.perMinute }] },
    };
  }
}

describe.each(ADAPTERS)('on %s', (adapter) => {
  async function expectTwoPerMinute(imports: unknown[]): Promise<void> {
    const t = await createTestApp({ adapter, rateLimitModule: imports as never });
    try {
      await t.http.get('/').set(as('u')).expect(200);
      await t.http.get('/').set(as('u')).expect(200);
      await t.http.get('/').set(as('u')).expect(429);
    } finally {
      await t.close();
    }
  }

  describe('forRootAsync', () => {
    it('useFactory with imports and inject', () =>
      expectTwoPerMinute([
        RateLimitModule.forRootAsync({
          imports: [LimitsConfigModule],
          inject: [LimitsConfig],
          useFactory: (limits: LimitsConfig) => ({
            authenticate: headerAuth,
            config: { '/': [{ minute: limits.perMinute }] },
          }),
        }),
      ]));

    it('useClass', () =>
      expectTwoPerMinute([
        RateLimitModule.forRootAsync({
          imports: [LimitsConfigModule],
          useClass: RateLimitOptionsFactory,
        }),
      ]));

    it('useExisting', () => {
      @Module({
        imports: [LimitsConfigModule],
        providers: [RateLimitOptionsFactory],
        exports: [RateLimitOptionsFactory],
      })
      class FactoryModule {}
      return expectTwoPerMinute([
        RateLimitModule.forRootAsync({
          imports: [FactoryModule],
          useExisting: RateLimitOptionsFactory,
        }),
      ]);
    });
  });

  describe('global guard and filter', () => {
    it('exports the backend so an admin endpoint can reset users', async () => {
      const clock = new TestClock();
      const backend = new MemoryBackend({ clock: clock.read, sweepIntervalMs: 0 });
      const t = await createTestApp({
        adapter,
        rateLimit: {
          backend,
          authenticate: headerAuth,
          config: { '/': [{ minute: 1, blockTime: 600 }] },
        },
      });
      try {
        expect(t.app.get(RateLimitBackend)).toBe(backend);
        await t.http.get('/').set(as('u')).expect(200);
        await t.http.get('/').set(as('u')).expect(429).expect('retry-after', '600');
        const admin = t.app.get(RateLimitBackend);
        expect(await admin.unblock('u')).toBe(true);
        expect(await admin.reset({ user: 'u', scope: 'path:/', method: '*' })).toBe(true);
        await t.http.get('/').set(as('u')).expect(200);
      } finally {
        await t.close();
      }
    });

    it('can be switched off and applied by hand with @UseGuards and @UseFilters', async () => {
      @Controller()
      class PartlyLimitedController {
        @Get('open')
        open(): string {
          return 'open';
        }

        @UseGuards(RateLimitGuard)
        @UseFilters(RateLimitExceptionFilter)
        @RateLimit({ minute: 1 })
        @Get('guarded')
        guarded(): string {
          return 'guarded';
        }
      }
      const t = await createTestApp({
        adapter,
        controllers: [PartlyLimitedController],
        rateLimit: {
          authenticate: headerAuth,
          useGlobalGuard: false,
          useGlobalFilter: false,
          config: { '/open': [{ minute: 1 }] },
        },
      });
      try {
        // No global guard: the table entry for /open is not enforced.
        await t.http.get('/open').set(as('u')).expect(200);
        await t.http.get('/open').set(as('u')).expect(200);
        await t.http.get('/guarded').set(as('u')).expect(200);
        await t.http.get('/guarded').set(as('u')).expect(429).expect('retry-after', '60');
      } finally {
        await t.close();
      }
    });

    it.each([
      ['a synchronous resolver', headerAuth],
      [
        'an asynchronous resolver',
        async (req: Parameters<typeof headerAuth>[0]) => headerAuth(req),
      ],
    ])(
      'counts a request once when RateLimitGuard is both global and in @UseGuards (%s)',
      async (_label, authenticate) => {
        @Controller()
        class DoublyGuardedController {
          @UseGuards(RateLimitGuard)
          @RateLimit({ minute: 2 })
          @Get('twice')
          twice(): string {
            return 'twice';
          }
        }
        let resolved = 0;
        const t = await createTestApp({
          adapter,
          controllers: [DoublyGuardedController],
          rateLimit: {
            authenticate: (req) => {
              resolved++;
              return authenticate(req);
            },
          },
        });
        try {
          await t.http.get('/twice').set(as('u')).expect(200).expect('twice');
          await t.http.get('/twice').set(as('u')).expect(200);
          await t.http.get('/twice').set(as('u')).expect(429);
          // Two guards ran per request, but each request was identified and counted once.
          expect(resolved).toBe(3);
        } finally {
          await t.close();
        }
      },
    );

    it('without the filter, Nest answers the 429 exception itself, with the same headers and body', async () => {
      const t = await createTestApp({
        adapter,
        rateLimit: {
          authenticate: headerAuth,
          useGlobalFilter: false,
          config: { '/': [{ minute: 1 }] },
        },
      });
      try {
        await t.http.get('/').set(as('u')).expect(200);
        const res = await t.http.get('/').set(as('u')).expect(429).expect('retry-after', '60');
        expect(res.body).toEqual({
          statusCode: 429,
          message: 'Too many requests, retry in 60 seconds',
          error: 'Too Many Requests',
        });
      } finally {
        await t.close();
      }
    });
  });
});

describe('without an HTTP server', () => {
  it('starts in an application context (no HTTP adapter: a worker, a microservice) and decides', async () => {
    @Module({
      imports: [
        RateLimitModule.forRoot({
          backend: new MemoryBackend(),
          config: { '^/': [{ minute: 1 }] },
        }),
      ],
    })
    class WorkerModule {}
    // Nest's HttpAdapterHost holds null here: the router's settings are Express's defaults.
    const context = await NestFactory.createApplicationContext(WorkerModule, { logger: false });
    try {
      const service = context.get(RateLimitService);
      const decide = () => {
        const args = [
          { url: '/Hello/', method: 'GET', headers: {}, socket: { remoteAddress: '10.0.0.1' } },
          {},
        ];
        return service.check({
          getType: () => 'http',
          getHandler: () => HelloController.prototype.hello,
          getClass: () => HelloController,
          getArgByIndex: (index: number) => args[index],
          switchToHttp: () => ({ getRequest: () => args[0], getResponse: () => args[1] }),
        } as unknown as ExecutionContext);
      };
      expect(decide()).toMatchObject({
        kind: 'decided',
        allowed: true,
        counter: { scope: 'path:/hello' },
      });
      expect(decide()).toMatchObject({ kind: 'decided', allowed: false });
    } finally {
      await context.close();
    }
  });
});

describe('start-up validation', () => {
  async function boot(options: RateLimitModuleOptions): Promise<void> {
    const moduleRef = await Test.createTestingModule({
      imports: [RateLimitModule.forRoot(options)],
      controllers: [HelloController],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    try {
      await app.init();
      await request(app.getHttpServer()).get('/');
    } finally {
      await app.close();
    }
  }

  it.each<[string, RateLimitModuleOptions, RegExp]>([
    [
      'an invalid regex',
      { config: { '??.*': [{ second: 1 }] } },
      /Invalid rate-limit pattern "\?\?\.\*"/,
    ],
    [
      'an exponentially backtracking regex',
      { config: { '/(a+)+$': [{ second: 1 }] } },
      /Unsafe rate-limit pattern "\/\(a\+\)\+\$": `\(a\+\)\+` .* exponential time/,
    ],
    [
      'a polynomially backtracking regex',
      { config: new Map([['^/v2/.+/.+/comments', [{ second: 1 }]]]) },
      /Unsafe rate-limit pattern "\^\/v2\/\.\+\/\.\+\/comments": .* polynomial time/,
    ],
    [
      'a regex that backtracks only ignoring case',
      { config: [['^/(a|A)+$', [{ second: 1 }]]] },
      /Unsafe rate-limit pattern "\^\/\(a\|A\)\+\$" when matched ignoring case/,
    ],
    [
      'a regex the ReDoS check cannot decide',
      { config: [[new RegExp('^/[\\p{L}--[a-z]]', 'v'), [{ second: 1 }]]] },
      /could not be checked for catastrophic backtracking: .* trustPattern\(/,
    ],
    [
      'a negative limit',
      { config: { '/x': [{ second: -1 }] } },
      /pattern "\/x", rule 1\): "second" must be a whole number/,
    ],
    [
      'a fractional limit',
      { config: { '/x': [{ minute: 1.5 }] } },
      /"minute" must be a whole number/,
    ],
    [
      'an unknown field',
      { config: { '/x': [{ secnd: 1 } as never] } },
      /"secnd" is not a rule field; did you mean "second"\?/,
    ],
    [
      'a limit written as a string',
      { config: { '/x': [{ minute: '10' as never }] } },
      /"minute" must be a whole number.*got "10"; write it as a number \(10\)/,
    ],
    [
      'an empty group',
      { config: { '/x': [{ minute: 1, group: '' }] } },
      /"group" must be a non-empty string.*leave it unset for 'default'/,
    ],
    [
      'an empty zone',
      { config: { '/x': [{ minute: 1, zone: '' }] } },
      /"zone" must be a non-empty string.*leave it unset to count per path or handler/,
    ],
    [
      'rules that are not an array',
      { config: { '/x': { second: 1 } as never } },
      /rules must be an array/,
    ],
    [
      'two methods in one rule',
      { config: { '/x': [{ second: 1, method: 'GET POST' }] } },
      /"method" must be an HTTP method.*got "GET POST"; a rule has one method: write one rule per method/,
    ],
    [
      'a misspelt method',
      { config: { '/x': [{ second: 1, method: 'GETT' }] } },
      /"method" must be an HTTP method such as 'GET' \(any case\) or '\*' for every method, got "GETT"; did you mean 'GET'\?/,
    ],
    [
      'a method no HTTP parser accepts',
      { config: { '/x': [{ second: 1, method: 'FETCH' }] } },
      /"method" must be an HTTP method .*got "FETCH"\.$/,
    ],
    [
      "'ALL' for every method",
      { config: { '/x': [{ second: 1, method: 'ALL' }] } },
      /got "ALL"; did you mean '\*' \(every method\)\?/,
    ],
    ['a non-resolver authenticate', { authenticate: 'ip' as never }, /"authenticate".*got "ip"/],
    ['an empty authenticate array', { authenticate: [] }, /"authenticate": the array is empty/],
    [
      'an unknown option',
      { onBlock: () => 'x' } as never,
      /"onBlock": is not a RateLimitModule option; did you mean "onBlocked"/,
    ],
    [
      'a misspelt option',
      { backendTimoutMs: 100 } as never,
      /"backendTimoutMs": is not a RateLimitModule option; did you mean "backendTimeoutMs"\?/,
    ],
    [
      'a backend that is not one',
      { backend: { consume: () => true } } as never,
      /"backend": expected a RateLimitBackend such as new MemoryBackend\(\), got an object with a consume\(\) method that does not extend RateLimitBackend.*npm ls nestjs-ratelimit/,
    ],
    [
      'a backend class instead of an instance',
      { backend: MemoryBackend } as never,
      /"backend": .*got a function \(the class itself: pass an instance, new MemoryBackend\(\.\.\.\)\)/,
    ],
    [
      'an unknown header format',
      { headers: 'ietf' } as never,
      /"headers": expected false, 'draft-10'/,
    ],
    [
      'a misspelt header format',
      { headers: 'draft10' } as never,
      /"headers": .*got "draft10"; did you mean 'draft-10'\?/,
    ],
    [
      'headers: true',
      { headers: true } as never,
      /"headers": .*got true; for the IETF RateLimit-Policy and RateLimit fields use 'draft-10'/,
    ],
    [
      'a switch that is not a boolean',
      { useGlobalGuard: 'false' } as never,
      /"useGlobalGuard": expected true or false, got "false"/,
    ],
    [
      'a Redis URL that ioredis cannot use',
      { backend: new RedisBackend('redis://:hunter2@bad host:6379') },
      /Invalid RedisBackend option "client": ioredis cannot connect to "bad host:6379" \(ERR_INVALID_URL: Invalid URL\); pass a URL such as 'redis:\/\/127\.0\.0\.1:6379\/0'/,
    ],
    [
      'a non-function onBlocked',
      { onBlocked: 'slow down' } as never,
      /"onBlocked": expected a function/,
    ],
  ])('rejects %s when the application starts', async (_name, options, message) => {
    const error = await boot(options).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RateLimitConfigError);
    expect((error as Error).message).toMatch(message);
  });

  it('starts with a pattern marked trusted that the ReDoS check refuses, and limits by it', async () => {
    const t = await createTestApp({
      rateLimit: {
        authenticate: headerAuth,
        config: new Map([[trustPattern('^/v2/.+/.+/comments'), [{ minute: 1 }]]]),
      },
    });
    try {
      await t.http.get('/v2/a/b/comments').set(as('u')).expect(200);
      await t.http.get('/v2/a/b/comments').set(as('u')).expect(429);
      await t.http.get('/v2/a/comments').set(as('u')).expect(200);
      await t.http.get('/v2/a/comments').set(as('u')).expect(200);
    } finally {
      await t.close();
    }
  });
});

describe('start-up validation of the rules against the backend', () => {
  const fixedOnly = (): RecordingBackend => new RecordingBackend('fixed-window', ['fixed-window']);

  @Controller('cats')
  class CatsController {
    @RateLimit({ group: 'admin' }, { minute: 5, algorithm: 'token-bucket' })
    @Get()
    find(): string {
      return 'cats';
    }
  }

  @RateLimit({ minute: 5, algorithm: 'sliding-log' })
  @Controller('dogs')
  class DogsController {
    @Get()
    find(): string {
      return 'dogs';
    }
  }

  /** Stands for a GraphQL resolver or a WebSocket gateway: a provider with handlers. */
  @Injectable()
  class ChatGateway {
    @RateLimit({ second: 1, burst: 2 })
    message(): string {
      return 'sent';
    }
  }

  async function startError(
    options: RateLimitModuleOptions,
    controllers: Type[] = [HelloController],
    providers: Type[] = [],
  ): Promise<unknown> {
    const moduleRef = await Test.createTestingModule({
      imports: [RateLimitModule.forRoot(options)],
      controllers,
      providers,
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    try {
      await app.init();
      return undefined;
    } catch (error) {
      return error;
    } finally {
      await app.close();
    }
  }

  it.each<[string, RateLimitModuleOptions, Type[], Type[], string]>([
    [
      'a table rule whose algorithm the backend does not implement',
      {
        backend: fixedOnly(),
        config: {
          '/x': [
            { group: 'a', minute: 1 },
            { minute: 1, algorithm: 'sliding-window' },
          ],
        },
      },
      [HelloController],
      [],
      'Invalid rate-limit rule (pattern "/x", rule 2): it counts with \'sliding-window\', which ' +
        'the backend RecordingBackend(fixed-window) does not implement (it implements ' +
        "'fixed-window'): set the rule's algorithm to one of those, or use a backend that " +
        "implements 'sliding-window'.",
    ],
    [
      'a handler rule whose algorithm the backend does not implement',
      { backend: fixedOnly() },
      [CatsController],
      [],
      'Invalid rate-limit rule (@RateLimit() rule 2 on CatsController.find): it counts with ' +
        "'token-bucket', which the backend RecordingBackend(fixed-window) does not implement",
    ],
    [
      'a class rule whose algorithm the backend does not implement',
      { backend: fixedOnly() },
      [DogsController],
      [],
      'Invalid rate-limit rule (@RateLimit() rule 1 on DogsController): it counts with ' +
        "'sliding-log', which the backend RecordingBackend(fixed-window) does not implement",
    ],
    [
      "a burst on a provider's handler, where the backend's default is no token bucket",
      { backend: new RecordingBackend('sliding-window') },
      [HelloController],
      [ChatGateway],
      'Invalid rate-limit rule (@RateLimit() rule 1 on ChatGateway.message): "burst" only ' +
        "applies to the 'token-bucket' algorithm, and this rule counts with the backend's " +
        "default, 'sliding-window' (backend RecordingBackend(sliding-window)): set algorithm: " +
        "'token-bucket' on the rule, or drop burst.",
    ],
    [
      'a table rule whose algorithm the fallback backend does not implement',
      {
        backend: new RecordingBackend('token-bucket'),
        failurePolicy: 'fallback',
        fallbackBackend: fixedOnly(),
        config: { '/x': [{ minute: 1 }] },
      },
      [HelloController],
      [],
      'Invalid rate-limit rule (pattern "/x", rule 1): it counts with the backend\'s default, ' +
        "'token-bucket', which the fallbackBackend RecordingBackend(fixed-window) does not implement",
    ],
    [
      "a limit too large for the backend's default algorithm to count exactly",
      { backend: new RecordingBackend('sliding-window'), config: { '/x': [{ month: 4_000_000 }] } },
      [HelloController],
      [],
      'Invalid rate-limit rule (pattern "/x", rule 1): "month" is too large for ' +
        "'sliding-window': the limit 4000000 times the window (2678400000 ms), four times over, is above " +
        'Number.MAX_SAFE_INTEGER',
    ],
  ])(
    'refuses %s, naming the rule and the backend',
    async (_name, options, controllers, providers, message) => {
      const error = await startError(options, controllers, providers);
      expect(error).toBeInstanceOf(RateLimitConfigError);
      expect((error as RateLimitConfigError).code).toBe('RATE_LIMIT_INVALID_RULE');
      expect((error as Error).message.startsWith(message)).toBe(true);
    },
  );

  it('starts when every rule fits its backend, whatever the default', async () => {
    const backend = new RecordingBackend('token-bucket');
    expect(
      await startError(
        {
          backend,
          config: {
            '/x': [
              { minute: 1, burst: 3 },
              { month: 4_000_000, algorithm: 'fixed-window' },
            ],
          },
        },
        [CatsController, DogsController],
        [ChatGateway],
      ),
    ).toBeUndefined();
    expect(await startError({ backend: fixedOnly() }, [HelloController], [])).toBeUndefined();
  });
});
