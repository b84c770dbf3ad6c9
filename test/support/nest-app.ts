import {
  All,
  Controller,
  type INestApplication,
  type ModuleMetadata,
  type Type,
} from '@nestjs/common';
import { Test } from '@nestjs/testing';
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

export interface TestAppOptions extends ModuleMetadata {
  /** Module options; a MemoryBackend on the test clock is used unless a backend is given. */
  rateLimit?: RateLimitModuleOptions & RateLimitModuleExtras;
  /** Replaces the module import entirely (e.g. forRootAsync). */
  rateLimitModule?: ModuleMetadata['imports'];
  /** Runs on the app before init (middleware, trust proxy...). */
  configure?: (app: INestApplication) => void;
}

export interface TestApp {
  app: INestApplication;
  clock: TestClock;
  backend: MemoryBackend | undefined;
  http: ReturnType<typeof request>;
  close(): Promise<void>;
}

/** Boots a real Nest application (Express) with the rate-limit module, ready for supertest. */
export async function createTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const clock = new TestClock();
  const {
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
    controllers: controllers ?? [HelloController],
    providers: providers ?? [],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  configure?.(app);
  await app.init();
  return {
    app,
    clock,
    backend,
    http: request(app.getHttpServer()),
    close: () => app.close(),
  };
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
export async function listenApp(imports: ModuleMetadata['imports']): Promise<ListeningApp> {
  const moduleRef = await Test.createTestingModule({
    imports,
    controllers: [HelloController],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.listen(0, '127.0.0.1');
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  return { app, url, close: () => app.close() };
}

/** Shorthand for the original's `headers={"user": ..., "group": ...}`. */
export function as(user: string, group = 'default'): Record<string, string> {
  return { user, group };
}

export type { Type };
