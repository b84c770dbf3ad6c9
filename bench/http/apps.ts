/**
 * Builds the Nest application module of each HTTP variant: the same `GET /hello` controller, with
 * each limiter set up the way its own documentation shows.
 *
 * @module
 */
import {
  Controller,
  Get,
  Inject,
  Injectable,
  Module,
  type CanActivate,
  type DynamicModule,
  type MiddlewareConsumer,
  type NestMiddleware,
  type NestModule,
  type Provider,
} from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import { ThrottlerGuard, ThrottlerModule, type ThrottlerModuleOptions } from '@nestjs/throttler';
import type { Request, Response } from 'express';
import type { IncomingHttpHeaders } from 'node:http';
import { Redis } from 'ioredis';
import {
  EmptyInformation,
  MemoryBackend,
  RateLimitModule,
  RedisBackend,
  SlidingRedisBackend,
  type AuthFunction,
  type RateLimitBackend,
} from 'nestjs-ratelimit';
import {
  RateLimiterMemory,
  RateLimiterRedis,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
import { ADMIT_LIMIT, WINDOW_SECONDS, type IdentityMode, type ServerSpec } from './variants.js';

/** How long a server waits for its Redis client to be ready before giving up. */
const REDIS_READY_TIMEOUT_MS = 5_000;

@Controller()
export class HelloController {
  @Get('hello')
  hello(): { hello: string } {
    return { hello: 'world' };
  }
}

/** A guard that lets everything through: the cost of having a global guard at all. */
@Injectable()
export class NoopGuard implements CanActivate {
  canActivate(): boolean {
    return true;
  }
}

/** The `x-user` header, for the runs with many distinct users. */
function userHeader(headers: IncomingHttpHeaders): string {
  const user = headers['x-user'];
  if (typeof user !== 'string') throw new EmptyInformation('No x-user header');
  return user;
}

// ---------------------------------------------------------------------------------------------
// nestjs-ratelimit
// ---------------------------------------------------------------------------------------------

const headerAuth: AuthFunction = (request) => ({ user: userHeader(request.headers) });

function rateLimitModule(
  backend: RateLimitBackend,
  identity: IdentityMode,
  limit: number,
  blockTime = 0,
  localRejectCache?: boolean,
): DynamicModule {
  return RateLimitModule.forRoot({
    backend,
    ...(localRejectCache === undefined ? {} : { localRejectCache }),
    // 'ip' is the module's default (IpAuthResolver): no option at all.
    ...(identity === 'header' ? { authenticate: headerAuth } : {}),
    config: { '^/': [{ minute: limit, ...(blockTime > 0 ? { blockTime } : {}) }] },
  });
}

// ---------------------------------------------------------------------------------------------
// @nestjs/throttler (+ @nest-lab/throttler-storage-redis)
// ---------------------------------------------------------------------------------------------

function throttlerModule(
  identity: IdentityMode,
  ttl: number,
  limit: number,
  storage?: ThrottlerStorageRedisService,
): DynamicModule {
  const options: ThrottlerModuleOptions = {
    throttlers: [{ ttl, limit }],
    ...(storage === undefined ? {} : { storage }),
    // 'ip' is its default tracker (req.ip): no option at all.
    ...(identity === 'header'
      ? { getTracker: (request) => userHeader(request['headers'] as IncomingHttpHeaders) }
      : {}),
  };
  return ThrottlerModule.forRoot(options);
}

const THROTTLER_GUARD: Provider = { provide: APP_GUARD, useClass: ThrottlerGuard };

// ---------------------------------------------------------------------------------------------
// rate-limiter-flexible: its Express middleware recipe, as a Nest middleware
// ---------------------------------------------------------------------------------------------

const RLF_LIMITER = Symbol('RLF_LIMITER');
const RLF_IDENTITY = Symbol('RLF_IDENTITY');

@Injectable()
export class RateLimiterFlexibleMiddleware implements NestMiddleware {
  constructor(
    @Inject(RLF_LIMITER) private readonly limiter: RateLimiterAbstract,
    @Inject(RLF_IDENTITY) private readonly identity: IdentityMode,
  ) {}

  use(request: Request, response: Response, next: () => void): void {
    const key = this.identity === 'header' ? userHeader(request.headers) : (request.ip ?? '');
    this.limiter
      .consume(key)
      .then(() => next())
      .catch(() => {
        response.status(429).send('Too Many Requests');
      });
  }
}

function rlfModule(limiter: RateLimiterAbstract, identity: IdentityMode): DynamicModule {
  @Module({})
  class RateLimiterFlexibleModule implements NestModule {
    configure(consumer: MiddlewareConsumer): void {
      consumer.apply(RateLimiterFlexibleMiddleware).forRoutes(HelloController);
    }
  }
  return {
    module: RateLimiterFlexibleModule,
    controllers: [HelloController],
    providers: [
      { provide: RLF_LIMITER, useValue: limiter },
      { provide: RLF_IDENTITY, useValue: identity },
      RateLimiterFlexibleMiddleware,
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// The application module of each variant
// ---------------------------------------------------------------------------------------------

@Module({})
class BenchAppModule {}

function app(imports: DynamicModule[] = [], providers: Provider[] = []): DynamicModule {
  return { module: BenchAppModule, imports, controllers: [HelloController], providers };
}

/** An ioredis client on the benchmark's Redis, resolved once it is ready (bounded wait). */
async function readyRedis(url: string, options: { enableOfflineQueue?: boolean }): Promise<Redis> {
  const client = new Redis(url, { ...options, lazyConnect: true });
  const timer = setTimeout(() => client.disconnect(), REDIS_READY_TIMEOUT_MS);
  try {
    await client.connect();
  } finally {
    clearTimeout(timer);
  }
  return client;
}

function requireRedisUrl(spec: ServerSpec): string {
  if (spec.redisUrl === undefined) throw new Error(`${spec.variant} needs a redisUrl`);
  return spec.redisUrl;
}

/**
 * What a server process runs, and what it must close after `app.close()`. A Fastify variant
 * builds the same module as its Express twin: the server picks the adapter.
 */
export interface BuiltApp {
  readonly module: DynamicModule;
  /** Clients the variant opened itself (the libraries do not own them). */
  readonly cleanup: () => Promise<void>;
}

export async function buildApp(spec: ServerSpec): Promise<BuiltApp> {
  const { identity } = spec;
  const clients: Redis[] = [];
  const cleanup = async (): Promise<void> => {
    await Promise.allSettled(clients.map((client) => client.quit()));
    for (const client of clients) client.disconnect();
  };
  const own = (client: Redis): Redis => {
    clients.push(client);
    return client;
  };
  const windowMs = WINDOW_SECONDS * 1000;
  switch (spec.variant) {
    case 'bare':
    case 'fastify-bare':
      return { module: app(), cleanup };
    case 'noop-guard':
    case 'fastify-noop-guard':
      return { module: app([], [{ provide: APP_GUARD, useClass: NoopGuard }]), cleanup };
    case 'ratelimit-memory':
    case 'fastify-ratelimit-memory':
      return {
        module: app([rateLimitModule(new MemoryBackend(), identity, ADMIT_LIMIT)]),
        cleanup,
      };
    case 'ratelimit-all-429':
      return { module: app([rateLimitModule(new MemoryBackend(), identity, 0)]), cleanup };
    case 'ratelimit-redis-all-429':
    case 'ratelimit-redis-all-429-uncached':
      // A blocked caller, the hot-key shortcut's case: the priming request is admitted, the next
      // one starts a day-long block, which the instance then answers itself (a limit of 0 it
      // cannot: see LocalRejectCache). The uncached variant asks Redis every time.
      return {
        module: app([
          rateLimitModule(
            new RedisBackend(requireRedisUrl(spec)),
            identity,
            1,
            86_400,
            spec.variant === 'ratelimit-redis-all-429-uncached' ? false : undefined,
          ),
        ]),
        cleanup,
      };
    case 'ratelimit-redis':
    case 'fastify-ratelimit-redis':
      return {
        module: app([
          rateLimitModule(new RedisBackend(requireRedisUrl(spec)), identity, ADMIT_LIMIT),
        ]),
        cleanup,
      };
    case 'ratelimit-sliding-redis':
      return {
        module: app([
          rateLimitModule(new SlidingRedisBackend(requireRedisUrl(spec)), identity, ADMIT_LIMIT),
        ]),
        cleanup,
      };
    case 'throttler-memory':
    case 'fastify-throttler-memory':
      return {
        module: app([throttlerModule(identity, windowMs, ADMIT_LIMIT)], [THROTTLER_GUARD]),
        cleanup,
      };
    case 'throttler-memory-1s':
      return {
        module: app([throttlerModule(identity, 1_000, ADMIT_LIMIT)], [THROTTLER_GUARD]),
        cleanup,
      };
    case 'throttler-all-429':
      return { module: app([throttlerModule(identity, windowMs, 0)], [THROTTLER_GUARD]), cleanup };
    case 'throttler-redis': {
      const client = own(await readyRedis(requireRedisUrl(spec), {}));
      const storage = new ThrottlerStorageRedisService(client);
      return {
        module: app([throttlerModule(identity, windowMs, ADMIT_LIMIT, storage)], [THROTTLER_GUARD]),
        cleanup,
      };
    }
    case 'rlf-memory': {
      const limiter = new RateLimiterMemory({ points: ADMIT_LIMIT, duration: WINDOW_SECONDS });
      return { module: rlfModule(limiter, identity), cleanup };
    }
    case 'rlf-redis': {
      const client = own(await readyRedis(requireRedisUrl(spec), { enableOfflineQueue: false }));
      const limiter = new RateLimiterRedis({
        storeClient: client,
        keyPrefix: 'middleware',
        points: ADMIT_LIMIT,
        duration: WINDOW_SECONDS,
      });
      return { module: rlfModule(limiter, identity), cleanup };
    }
  }
}
