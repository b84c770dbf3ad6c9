/**
 * The `contexts` option (SPEC 5): which kinds of call are limited at all (default: all four),
 * its start-up validation, and `info.contextType` in `onBlocked`. Proven on a real hybrid
 * application: HTTP on Express and a TCP microservice on 127.0.0.1, both served by one
 * controller. (GraphQL and WebSocket calls have their own e2e specs.)
 */
import { Controller, Get, type ExecutionContext } from '@nestjs/common';
import { MessagePattern } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import {
  EmptyInformation,
  MemoryBackend,
  RateLimit,
  RateLimitConfigError,
  RateLimitModule,
  type Identity,
  type RateLimitInfo,
  type RateLimitModuleOptions,
  type RateLimitRequest,
} from 'nestjs-ratelimit';
import { RateLimitEdge } from '../lib/http/rate-limit-edge.js';
import { startHybrid, type HybridApp } from './support/microservice-app.js';
import { headerAuth, HelloController } from './support/nest-app.js';

/** One limit on an HTTP route and on a microservice message, in one controller. */
@Controller()
class PingController {
  @RateLimit({ minute: 1 })
  @Get('ping')
  httpPing(): string {
    return 'pong';
  }

  @RateLimit({ minute: 1 })
  @MessagePattern('ping')
  rpcPing(): string {
    return 'pong';
  }
}

/** The `user` header over HTTP, the payload's `user` for a message. */
function callerOf(request: unknown, context: ExecutionContext): Identity {
  if (context.getType() === 'http') return headerAuth(request as RateLimitRequest);
  const { user } = (request ?? {}) as { user?: unknown };
  if (typeof user !== 'string') throw new EmptyInformation('No user in the message');
  return { user };
}

let running: HybridApp | undefined;

afterEach(async () => {
  await running?.close();
  running = undefined;
});

async function start(options: RateLimitModuleOptions = {}): Promise<HybridApp> {
  running = await startHybrid({
    imports: [
      RateLimitModule.forRoot({
        authenticate: callerOf,
        backend: new MemoryBackend({ sweepIntervalMs: 0 }),
        ...options,
      }),
    ],
    controllers: [PingController],
  });
  return running;
}

const OVER_LIMIT = {
  status: 'error',
  statusCode: 429,
  message: 'Too many requests, retry in 60 seconds',
  retryAfter: 60,
};

/** Two calls of each kind: whether the second was limited, per kind. */
async function limitedKinds(app: HybridApp): Promise<{ http: boolean; rpc: boolean }> {
  await app.http.get('/ping').set('user', 'alice').expect(200);
  const second = await app.http.get('/ping').set('user', 'alice');
  await app.client.send('ping', { user: 'alice' });
  const rpcError = await app.client.errorOf('ping', { user: 'alice' });
  if (rpcError !== undefined) expect(rpcError).toEqual(OVER_LIMIT);
  if (second.status !== 200) expect(second.status).toBe(429);
  return { http: second.status === 429, rpc: rpcError !== undefined };
}

/** An execution context of `type`, for asking the edge which types it limits. */
function contextOf(type: string): ExecutionContext {
  return { getType: () => type } as unknown as ExecutionContext;
}

describe('the contexts option', () => {
  it('covers all four context types by default, and limits HTTP requests and messages', async () => {
    const app = await start();
    await expect(limitedKinds(app)).resolves.toEqual({ http: true, rpc: true });
    const edge = app.app.get(RateLimitEdge);
    for (const type of ['http', 'graphql', 'ws', 'rpc']) {
      expect(edge.readerOf(contextOf(type))?.type).toBe(type);
    }
  });

  it("contexts: ['http'] leaves microservice messages unlimited", async () => {
    const app = await start({ contexts: ['http'] });
    await expect(limitedKinds(app)).resolves.toEqual({ http: true, rpc: false });
    for (let i = 0; i < 3; i += 1) {
      await expect(app.client.send('ping', { user: 'alice' })).resolves.toBe('pong');
    }
    const edge = app.app.get(RateLimitEdge);
    expect(
      ['http', 'graphql', 'ws', 'rpc'].map((type) => !!edge.readerOf(contextOf(type))),
    ).toEqual([true, false, false, false]);
  });

  it("contexts: ['rpc'] leaves HTTP requests unlimited", async () => {
    const app = await start({ contexts: ['rpc'] });
    await expect(limitedKinds(app)).resolves.toEqual({ http: false, rpc: true });
  });

  it('contexts: [] limits nothing', async () => {
    const app = await start({ contexts: [] });
    await expect(limitedKinds(app)).resolves.toEqual({ http: false, rpc: false });
  });
});

describe('info.contextType in onBlocked', () => {
  it("is 'http' for an HTTP request and 'rpc' for a microservice message", async () => {
    const types: string[] = [];
    const app = await start({
      onBlocked: (info: RateLimitInfo) => {
        types.push(info.contextType);
        return `Slow down (${info.contextType})`;
      },
    });
    await app.http.get('/ping').set('user', 'alice').expect(200);
    const blocked = await app.http.get('/ping').set('user', 'alice').expect(429);
    expect(blocked.text).toBe('Slow down (http)');
    expect(blocked.headers['retry-after']).toBe('60');
    await app.client.send('ping', { user: 'alice' });
    await expect(app.client.send('ping', { user: 'alice' })).rejects.toEqual({
      ...OVER_LIMIT,
      message: 'Slow down (rpc)',
    });
    expect(types).toEqual(['http', 'rpc']);
  });
});

describe('contexts validation at start-up', () => {
  async function boot(options: RateLimitModuleOptions): Promise<void> {
    const moduleRef = await Test.createTestingModule({
      imports: [RateLimitModule.forRoot(options)],
      controllers: [HelloController],
    }).compile();
    await moduleRef.close();
  }

  it.each<[string, unknown, RegExp]>([
    [
      'a single type instead of an array',
      'rpc',
      /Invalid RateLimitModule option "contexts": expected an array of context types \('http', 'graphql', 'ws', 'rpc'\), got "rpc"; write \['rpc'\]\.$/,
    ],
    ['an object', { rpc: true }, /"contexts": expected an array of context types .*got an object/],
    [
      'a misspelt type',
      ['http', 'rcp'],
      /"contexts": has "rcp", which is not a context type; use 'http', 'graphql', 'ws', 'rpc' \(did you mean 'rpc'\?\)/,
    ],
    ['a type in capitals', ['HTTP'], /"contexts": has "HTTP", .*\(did you mean 'http'\?\)/],
    [
      'another name for WebSocket',
      ['websocket'],
      /"contexts": has "websocket", .*\(did you mean 'ws'\?\)/,
    ],
    [
      'another name for RPC',
      ['microservice'],
      /"contexts": has "microservice", .*\(did you mean 'rpc'\?\)/,
    ],
    [
      'a number',
      [1],
      /"contexts": has 1, which is not a context type; use 'http', 'graphql', 'ws', 'rpc'\.$/,
    ],
  ])('rejects %s', async (_name, contexts, message) => {
    const error = await boot({ contexts: contexts as never }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RateLimitConfigError);
    expect((error as RateLimitConfigError).code).toBe('RATE_LIMIT_INVALID_OPTION');
    expect((error as Error).message).toMatch(message);
  });
});
