import {
  All,
  Controller,
  type INestApplication,
  type ModuleMetadata,
  type Type,
} from '@nestjs/common';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Test, type TestingModule } from '@nestjs/testing';
import type { FastifyServerOptions } from 'fastify';
import request from 'supertest';
import {
  EmptyInformation,
  MemoryBackend,
  RateLimitModule,
  type Identity,
  type RateLimitModuleExtras,
  type RateLimitModuleOptions,
  type RateLimitRequest,
} from 'nestjs-ratelimit';

/** Answers every path and method like the original suite's hello-world app. */
@Controller()
export class HelloController {
  @All('{*path}')
  hello(): string {
    return 'Hello world!';
  }
}

/**
 * {@link HelloController} on Fastify, whose router (find-my-way) spells a catch-all `*` rather
 * than path-to-regexp's `{*path}`. {@link createTestApp} and {@link listenApp} use it in place of
 * `HelloController` on Fastify, so tests list `HelloController` whatever the adapter.
 */
@Controller()
export class FastifyHelloController {
  @All('*')
  hello(): string {
    return 'Hello world!';
  }
}

/** The controllers of a test on `adapter`: `HelloController` becomes its Fastify twin there. */
function forAdapter(controllers: readonly Type[], adapter: AdapterName): Type[] {
  return controllers.map((controller) =>
    adapter === 'fastify' && controller === HelloController ? FastifyHelloController : controller,
  );
}

/** A clock the test moves by hand, so no test sleeps. */
export class TestClock {
  now = 1_000_000;
  readonly read = (): number => this.now;
  advance(ms: number): void {
    this.now += ms;
  }
}

/**
 * The original suite's auth function: the user from the `user` header (required), the group from
 * the `group` header, default 'default'.
 */
export function headerAuth(request: RateLimitRequest): Identity {
  const user = request.headers['user'];
  if (typeof user !== 'string' || user === '') throw new EmptyInformation('No user header');
  const group = request.headers['group'];
  return { user, group: typeof group === 'string' ? group : 'default' };
}

/** The HTTP adapters every e2e suite runs on: `describe.each(ADAPTERS)('... on %s', ...)`. */
export const ADAPTERS = ['express', 'fastify'] as const;

/** One of {@link ADAPTERS}. */
export type AdapterName = (typeof ADAPTERS)[number];

/** The application a test configures: Express's or Fastify's, as `adapter` says. */
export type TestNestApp = NestExpressApplication | NestFastifyApplication;

/** The trust-proxy values both adapters accept (Express's `trust proxy`, Fastify's `trustProxy`). */
export type AdapterTrustProxy = boolean | number | string | string[];

export interface TestAppOptions extends ModuleMetadata {
  /** The HTTP adapter. @default 'express' */
  adapter?: AdapterName;
  /** Options of `new FastifyAdapter(...)` (router options, ...); Fastify only. */
  fastify?: FastifyServerOptions;
  /**
   * The adapter's own trust-proxy setting: `app.set('trust proxy', value)` on Express, the
   * `trustProxy` option of `new FastifyAdapter(...)` on Fastify. Unset: each one's default (off).
   */
  trustProxy?: AdapterTrustProxy;
  /** Module options; a MemoryBackend on the test clock is used unless a backend is given. */
  rateLimit?: RateLimitModuleOptions & RateLimitModuleExtras;
  /** Replaces the module import entirely (e.g. forRootAsync). */
  rateLimitModule?: ModuleMetadata['imports'];
  /**
   * Runs on the app before init: middleware, Express settings, Fastify plugins
   * (`await app.register(...)`), a global prefix.
   */
  configure?: (app: TestNestApp, adapter: AdapterName) => void | Promise<void>;
}

export interface TestApp {
  app: INestApplication;
  adapter: AdapterName;
  clock: TestClock;
  backend: MemoryBackend | undefined;
  http: ReturnType<typeof request>;
  close(): Promise<void>;
}

/** Boots a real Nest application (Express or Fastify) with the rate-limit module, for supertest. */
export async function createTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const clock = new TestClock();
  const {
    adapter = 'express',
    fastify,
    trustProxy,
    rateLimit = {},
    rateLimitModule,
    configure,
    imports = [],
    controllers,
    providers,
  } = options;
  let backend: MemoryBackend | undefined;
  if (!rateLimitModule && rateLimit.backend === undefined) {
    backend = new MemoryBackend({ clock: clock.read, sweepIntervalMs: 0 });
  }
  const moduleRef = await Test.createTestingModule({
    imports: [
      ...(rateLimitModule ?? [
        RateLimitModule.forRoot({ ...rateLimit, backend: rateLimit.backend ?? backend }),
      ]),
      ...imports,
    ],
    controllers: forAdapter(controllers ?? [HelloController], adapter),
    providers: providers ?? [],
  }).compile();
  const app = createApp(moduleRef, adapter, fastify, trustProxy);
  await configure?.(app, adapter);
  await initApp(app, adapter);
  return {
    app,
    adapter,
    clock,
    backend,
    http: request(app.getHttpServer()),
    close: () => app.close(),
  };
}

/**
 * The Nest application of `moduleRef` on `adapter`. `trustProxy` is the adapter's own setting:
 * Express reads it from `app.set`, Fastify only from its constructor options.
 */
function createApp(
  moduleRef: TestingModule,
  adapter: AdapterName,
  fastify: FastifyServerOptions = {},
  trustProxy?: AdapterTrustProxy,
): TestNestApp {
  if (adapter === 'fastify') {
    // Fastify documents a hop count for trustProxy, which its type declarations leave out.
    const options = { ...fastify, ...(trustProxy === undefined ? {} : { trustProxy }) };
    return moduleRef.createNestApplication<NestFastifyApplication>(
      new FastifyAdapter(options as FastifyServerOptions),
      { logger: false },
    );
  }
  const app = moduleRef.createNestApplication<NestExpressApplication>({ logger: false });
  if (trustProxy !== undefined) app.set('trust proxy', trustProxy);
  return app;
}

/** `app.init()`, and on Fastify its `ready()`, after which supertest can use the server. */
async function initApp(app: INestApplication, adapter: AdapterName): Promise<void> {
  await app.init();
  if (adapter === 'fastify') {
    await (app as NestFastifyApplication).getHttpAdapter().getInstance().ready();
  }
}

/** A real Nest application listening on a free loopback port, for clients other than supertest. */
export interface ListeningApp {
  app: INestApplication;
  /** `http://127.0.0.1:<port>`. */
  url: string;
  close(): Promise<void>;
}

/**
 * Boots `imports` (the rate-limit module, as the test configures it) with {@link HelloController}
 * and listens on 127.0.0.1, for tests that need real sockets: floods, several instances, outages.
 */
export async function listenApp(
  imports: ModuleMetadata['imports'],
  adapter: AdapterName = 'express',
): Promise<ListeningApp> {
  const moduleRef = await Test.createTestingModule({
    imports,
    controllers: forAdapter([HelloController], adapter),
  }).compile();
  const app = createApp(moduleRef, adapter);
  await app.listen(0, '127.0.0.1');
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  return { app, url, close: () => app.close() };
}

/** Shorthand for the original's `headers={"user": ..., "group": ...}`. */
export function as(user: string, group = 'default'): Record<string, string> {
  return { user, group };
}

export type { Type };
