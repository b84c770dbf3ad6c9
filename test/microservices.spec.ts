/**
 * Microservices (SPEC 5): `@RateLimit` / `@SkipRateLimit` on `@MessagePattern` and
 * `@EventPattern` handlers of a real `@nestjs/microservices` TCP server on 127.0.0.1, called by a
 * real TCP client. Most tests run a microservice-only application (`NestFactory.createMicroservice`,
 * no HTTP adapter at all); the last ones a hybrid application (HTTP plus `connectMicroservice`).
 *
 * How a test knows the server is done with earlier packets: the client gets a reply only in a
 * later turn of the event loop (socket I/O), after every microtask the server's handling of the
 * earlier packets queued, so once a message's reply has arrived the events written before it
 * have been decided and their handlers have run, or will never run.
 */
import {
  Controller,
  Injectable,
  Module,
  UseFilters,
  UseGuards,
  type ExecutionContext,
  type ModuleMetadata,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { EventPattern, MessagePattern, Payload, type TcpContext } from '@nestjs/microservices';
import {
  AuthResolver,
  clientIp,
  EmptyInformation,
  MemoryBackend,
  RateLimit,
  RateLimitBackend,
  RateLimitExceptionFilter,
  RateLimitGuard,
  RateLimitModule,
  SkipRateLimit,
  type Identity,
  type RateLimitInfo,
  type RateLimitModuleExtras,
  type RateLimitModuleOptions,
} from 'nestjs-ratelimit';
import { captureLogs, type CapturedLogs } from './support/captured-logs.js';
import {
  startHybrid,
  startMicroservice,
  type HybridApp,
  type MicroserviceApp,
  type RpcClient,
} from './support/microservice-app.js';
import { TestClock } from './support/nest-app.js';

/** The messages and events of the tests. */
interface OrderMessage {
  user?: string;
  group?: string;
  apiKey?: string;
  id?: number;
}

/** The ids of the `orders.created` events whose handler ran. */
@Injectable()
class HandledEvents {
  readonly ids: number[] = [];
}

@Controller()
class OrdersController {
  constructor(private readonly handled: HandledEvents) {}

  @RateLimit({ minute: 2 }, { group: 'partner', minute: 4 })
  @MessagePattern('orders.get')
  get(@Payload() order: OrderMessage): { id: number; status: string } {
    return { id: order.id ?? 0, status: 'shipped' };
  }

  @RateLimit({ minute: 1 })
  @EventPattern('orders.created')
  created(@Payload() order: OrderMessage): void {
    this.handled.ids.push(order.id ?? 0);
  }

  /** A message has no HTTP method: only rules for every method (`'*'`) apply to it. */
  @RateLimit({ method: 'POST', minute: 0 }, { minute: 1 })
  @MessagePattern('orders.cancel')
  cancel(): string {
    return 'cancelled';
  }

  /** A bug in an event handler, which Nest logs as an error (as it should). */
  @EventPattern('orders.broken')
  broken(@Payload() order: OrderMessage): void {
    throw new Error(`handler bug for ${order.user}`);
  }

  /** Neither decorated nor reachable by the table (messages have no path): never limited. */
  @MessagePattern('orders.count')
  count(): number {
    return this.handled.ids.length;
  }
}

/** A decorator on the class limits each of its handlers, each on its own counter. */
@RateLimit({ minute: 1 })
@Controller()
class ReportsController {
  @MessagePattern('reports.daily')
  daily(): string {
    return 'daily';
  }

  @MessagePattern('reports.weekly')
  weekly(): string {
    return 'weekly';
  }

  @SkipRateLimit()
  @MessagePattern('reports.health')
  health(): string {
    return 'up';
  }
}

/** A skipped class, with one handler limited again. */
@SkipRateLimit()
@RateLimit({ minute: 1 })
@Controller()
class AdminController {
  @MessagePattern('admin.stats')
  stats(): string {
    return 'stats';
  }

  @SkipRateLimit(false)
  @MessagePattern('admin.purge')
  purge(): string {
    return 'purged';
  }
}

/** The auth function form: for a microservice message, `request` is the message payload. */
function payloadUser(payload: unknown, context: ExecutionContext): Identity {
  const { user, group } = (payload ?? {}) as OrderMessage;
  if (typeof user !== 'string') {
    throw new EmptyInformation(`No user in the "${patternOf(context)}" message`);
  }
  return { user, group };
}

/** The pattern a message came in on, from the transport's context (argument 1). */
function patternOf(context: ExecutionContext): string {
  return context.switchToRpc().getContext<TcpContext>().getPattern();
}

/** The API keys of a service the resolver below injects. */
@Injectable()
class ApiKeys {
  private readonly owners = new Map<string, Identity>([
    ['key-alice', { user: 'alice' }],
    ['key-acme', { user: 'acme', group: 'partner' }],
  ]);

  ownerOf(key: string): Identity | undefined {
    return this.owners.get(key);
  }
}

@Module({ providers: [ApiKeys], exports: [ApiKeys] })
class ApiKeysModule {}

/** The AuthResolver form: reads the message (`switchToRpc().getData()`) and its context. */
@Injectable()
class ApiKeyResolver extends AuthResolver {
  constructor(private readonly keys: ApiKeys) {
    super();
  }

  resolve(context: ExecutionContext): Identity {
    const { apiKey } = context.switchToRpc().getData<OrderMessage>();
    const owner = typeof apiKey === 'string' ? this.keys.ownerOf(apiKey) : undefined;
    if (owner === undefined) {
      throw new EmptyInformation(`Unknown API key for "${patternOf(context)}"`);
    }
    return owner;
  }
}

/** A backend that is down: every call throws, as a dead store's client would. */
class DownBackend extends RateLimitBackend {
  consume(): never {
    throw new Error('connect ECONNREFUSED 127.0.0.1:6390 (secret detail)');
  }
  unblock(): boolean {
    return false;
  }
  reset(): boolean {
    return false;
  }
}

const TOO_MANY = 'Too many requests, retry in 60 seconds';

/** The error object a client receives for a message over its limit. */
function overLimit(retryAfter: number, message = TOO_MANY): object {
  return { status: 'error', statusCode: 429, message, retryAfter };
}

/** Every line logged above debug level. */
function aboveDebug(logs: CapturedLogs): CapturedLogs['lines'] {
  return logs.lines.filter((line) => line.level !== 'debug' && line.level !== 'verbose');
}

let running: MicroserviceApp | HybridApp | undefined;

afterEach(async () => {
  await running?.close();
  running = undefined;
});

interface Started {
  client: RpcClient;
  clock: TestClock;
  handled: HandledEvents;
}

/**
 * Starts the microservice-only application with the module configured by `rateLimit` (the
 * payload's user and a memory backend on a test clock unless it says otherwise).
 */
async function start(
  rateLimit: RateLimitModuleOptions & RateLimitModuleExtras = {},
  metadata: ModuleMetadata = {},
): Promise<Started> {
  const clock = new TestClock();
  const microservice = await startMicroservice({
    imports: [
      RateLimitModule.forRoot({
        authenticate: payloadUser,
        backend: new MemoryBackend({ clock: clock.read, sweepIntervalMs: 0 }),
        ...rateLimit,
      }),
    ],
    controllers: metadata.controllers ?? [OrdersController, ReportsController, AdminController],
    providers: [HandledEvents],
  });
  running = microservice;
  return { client: microservice.client, clock, handled: microservice.app.get(HandledEvents) };
}

describe('a microservice-only application (no HTTP adapter)', () => {
  it('starts without an HTTP adapter and limits a @MessagePattern per caller, rejecting with the 429 object', async () => {
    const { client, clock } = await start();
    expect(running!.app.get(HttpAdapterHost).httpAdapter ?? null).toBeNull();
    const alice = (id: number) => client.send('orders.get', { user: 'alice', id });

    await expect(alice(1)).resolves.toEqual({ id: 1, status: 'shipped' });
    await expect(alice(2)).resolves.toEqual({ id: 2, status: 'shipped' });
    await expect(alice(3)).rejects.toEqual(overLimit(60));
    // Another caller has counters of their own.
    await expect(client.send('orders.get', { user: 'bob', id: 4 })).resolves.toEqual({
      id: 4,
      status: 'shipped',
    });
    // retryAfter is the time left, in whole seconds.
    clock.advance(45_000);
    await expect(alice(5)).rejects.toEqual(overLimit(15, 'Too many requests, retry in 15 seconds'));
    clock.advance(15_000);
    await expect(alice(6)).resolves.toEqual({ id: 6, status: 'shipped' });
  });

  it("applies the rule of the caller's group", async () => {
    const { client } = await start();
    const acme = () => client.send('orders.get', { user: 'acme', group: 'partner' });
    for (let i = 0; i < 4; i += 1) await expect(acme()).resolves.toMatchObject({ id: 0 });
    await expect(acme()).rejects.toEqual(overLimit(60));
  });

  it('applies only rules for every method, since a message has no HTTP method', async () => {
    const { client } = await start();
    await expect(client.send('orders.cancel', { user: 'alice' })).resolves.toBe('cancelled');
    await expect(client.send('orders.cancel', { user: 'alice' })).rejects.toEqual(overLimit(60));
  });

  it('leaves messages out of the pattern table, which matches HTTP paths', async () => {
    const { client } = await start({ config: { '^/': [{ minute: 0 }], '.*': [{ minute: 0 }] } });
    for (let i = 0; i < 3; i += 1) {
      await expect(client.send('orders.count', { user: 'alice' })).resolves.toBe(0);
    }
    await expect(client.send('orders.get', { user: 'alice' })).resolves.toMatchObject({ id: 0 });
  });

  it('limits every handler of a decorated controller, each on its own counter, except a @SkipRateLimit one', async () => {
    const { client } = await start();
    const as = { user: 'alice' };
    await expect(client.send('reports.daily', as)).resolves.toBe('daily');
    await expect(client.send('reports.daily', as)).rejects.toEqual(overLimit(60));
    await expect(client.send('reports.weekly', as)).resolves.toBe('weekly');
    await expect(client.send('reports.weekly', as)).rejects.toEqual(overLimit(60));
    for (let i = 0; i < 3; i += 1)
      await expect(client.send('reports.health', as)).resolves.toBe('up');
  });

  it("gives a rule's cost function the message the auth resolver reads, and counts what it says", async () => {
    @Controller()
    class BulkController {
      @RateLimit({ minute: 10, cost: (message) => (message as unknown as { items: number }).items })
      @MessagePattern('orders.bulk')
      bulk(): string {
        return 'queued';
      }
    }
    const { client } = await start({}, { controllers: [BulkController] });
    const bulk = (items: number) => client.send('orders.bulk', { user: 'alice', items });
    await expect(bulk(6)).resolves.toBe('queued');
    await expect(bulk(5)).rejects.toEqual(overLimit(60));
    await expect(bulk(4)).resolves.toBe('queued');
    await expect(bulk(1)).rejects.toEqual(overLimit(60));
  });

  it('exempts a @SkipRateLimit controller, except a handler with @SkipRateLimit(false)', async () => {
    const { client } = await start();
    const as = { user: 'alice' };
    for (let i = 0; i < 3; i += 1)
      await expect(client.send('admin.stats', as)).resolves.toBe('stats');
    await expect(client.send('admin.purge', as)).resolves.toBe('purged');
    await expect(client.send('admin.purge', as)).rejects.toEqual(overLimit(60));
  });

  it('drops an @EventPattern event over its limit: its handler does not run and nothing is replied', async () => {
    const { client, handled, clock } = await start();
    const before = client.received.length;
    await client.emit('orders.created', { user: 'alice', id: 1 });
    await client.emit('orders.created', { user: 'alice', id: 2 });
    await client.emit('orders.created', { user: 'alice', id: 3 });
    await client.emit('orders.created', { user: 'bob', id: 4 });
    // The round trip that tells the events before it have been dealt with (see the top).
    await expect(client.send('orders.count', {})).resolves.toBe(2);
    expect([...handled.ids].sort()).toEqual([1, 4]);
    // The one packet the server sent since is the reply to that message.
    expect(client.received.slice(before)).toEqual([expect.objectContaining({ response: 2 })]);

    clock.advance(60_000);
    await client.emit('orders.created', { user: 'alice', id: 5 });
    await client.send('orders.count', {});
    expect([...handled.ids].sort()).toEqual([1, 4, 5]);
  });

  it('logs no rejection above debug level: messages and events, over the limit or unidentified', async () => {
    const { client } = await start();
    const logs = captureLogs();
    // A message first: its error arrives after the transport's error class has been loaded.
    await client.send('orders.get', { user: 'alice' });
    await client.send('orders.get', { user: 'alice' });
    await expect(client.send('orders.get', { user: 'alice' })).rejects.toEqual(overLimit(60));
    await expect(client.send('orders.get', {})).rejects.toMatchObject({ statusCode: 401 });
    await client.emit('orders.created', { user: 'alice', id: 1 });
    await client.emit('orders.created', { user: 'alice', id: 2 });
    await client.emit('orders.created', { id: 3 });
    // The control: an event handler's own failure is logged, and the capture sees it.
    await client.emit('orders.broken', { user: 'alice' });
    await expect(client.send('orders.count', {})).resolves.toBe(1);
    expect(aboveDebug(logs)).toEqual([
      { level: 'error', message: 'Error: handler bug for alice', context: 'RpcExceptionsHandler' },
    ]);
  });

  it('without the global filter, a message is answered the same and an event still dropped', async () => {
    const { client, handled } = await start({ useGlobalFilter: false });
    await client.send('orders.get', { user: 'alice' });
    await client.send('orders.get', { user: 'alice' });
    await expect(client.send('orders.get', { user: 'alice' })).rejects.toEqual(overLimit(60));
    await client.emit('orders.created', { user: 'alice', id: 1 });
    await client.emit('orders.created', { user: 'alice', id: 2 });
    await expect(client.send('orders.count', {})).resolves.toBe(1);
    expect(handled.ids).toEqual([1]);
  });
});

describe('identity of a microservice message', () => {
  it('comes from an AuthResolver class (created through DI) reading the message and its context', async () => {
    const { client } = await start({ authenticate: ApiKeyResolver, imports: [ApiKeysModule] });
    const send = (apiKey?: string) => client.send('orders.get', { apiKey });

    await send('key-alice');
    await send('key-alice');
    await expect(send('key-alice')).rejects.toEqual(overLimit(60));
    // Group 'partner' has a rule of its own.
    for (let i = 0; i < 4; i += 1) await expect(send('key-acme')).resolves.toMatchObject({ id: 0 });
    await expect(send('key-acme')).rejects.toEqual(overLimit(60));
    // EmptyInformation from the resolver is a 401 with its message, never "Internal server error".
    await expect(send('key-nobody')).rejects.toEqual({
      status: 'error',
      statusCode: 401,
      message: 'Unknown API key for "orders.get"',
    });
  });

  it('comes from an auth function (payload, context) => identity, whose request is the payload', async () => {
    const calls: unknown[][] = [];
    const { client } = await start({
      authenticate: (payload: unknown, context: ExecutionContext) => {
        calls.push([payload, context.getType(), context.switchToRpc().getData() === payload]);
        return payloadUser(payload, context);
      },
    });
    await client.send('orders.get', { user: 'alice', id: 7 });
    // Unlimited handlers never ask who the caller is.
    await client.send('orders.count', { user: 'alice' });
    expect(calls).toEqual([[{ user: 'alice', id: 7 }, 'rpc', true]]);
    await expect(client.send('orders.get', {})).rejects.toEqual({
      status: 'error',
      statusCode: 401,
      message: 'No user in the "orders.get" message',
    });
  });

  it.each<[string, RateLimitModuleOptions]>([
    ['IpAuthResolver (the default)', { authenticate: undefined }],
    ['clientIp', { authenticate: clientIp }],
  ])(
    'is no IP address: %s rejects with a 401 that says what to use instead',
    async (_name, options) => {
      const { client } = await start(options);
      const logs = captureLogs();
      await expect(client.send('orders.get', { user: 'alice' })).rejects.toEqual({
        status: 'error',
        statusCode: 401,
        message:
          'IpAuthResolver cannot identify a microservice message: it has no client address, ' +
          'headers or session. Pass your own AuthResolver as authenticate, reading the message ' +
          'or its context.',
      });
      // Handlers no rule applies to never need an identity.
      await expect(client.send('orders.count', {})).resolves.toBe(0);
      expect(aboveDebug(logs)).toEqual([]);
    },
  );
});

describe('onBlocked for a microservice message', () => {
  it('gets the message context (info.contextType "rpc"); a returned string becomes the message', async () => {
    const seen: [RateLimitInfo, string, unknown][] = [];
    const { client, handled } = await start({
      onBlocked: (info, host) => {
        seen.push([info, host.getType(), host.switchToRpc().getData()]);
        return `Slow down, ${info.user}`;
      },
    });
    await client.send('orders.get', { user: 'alice' });
    await client.send('orders.get', { user: 'alice' });
    await expect(client.send('orders.get', { user: 'alice', id: 3 })).rejects.toEqual(
      overLimit(60, 'Slow down, alice'),
    );
    expect(seen).toHaveLength(1);
    expect(seen[0]![0]).toMatchObject({
      contextType: 'rpc',
      user: 'alice',
      group: 'default',
      retryAfter: 60,
      unit: 'minute',
      blocked: false,
    });
    expect(seen[0]!.slice(1)).toEqual(['rpc', { user: 'alice', id: 3 }]);

    // For an event too; what it returns goes nowhere, and the handler does not run.
    const before = client.received.length;
    await client.emit('orders.created', { user: 'alice', id: 1 });
    await client.emit('orders.created', { user: 'alice', id: 2 });
    await expect(client.send('orders.count', {})).resolves.toBe(1);
    expect(handled.ids).toEqual([1]);
    expect(seen).toHaveLength(2);
    expect(seen[1]![0].contextType).toBe('rpc');
    expect(seen[1]!.slice(1)).toEqual(['rpc', { user: 'alice', id: 2 }]);
    expect(client.received.slice(before)).toEqual([expect.objectContaining({ response: 1 })]);
  });

  it('a returned object (or a promise of one) becomes the whole error object', async () => {
    const { client } = await start({
      onBlocked: async (info) => ({ code: 'ORDERS_THROTTLED', retryInSeconds: info.retryAfter }),
    });
    await client.send('orders.get', { user: 'alice' });
    await client.send('orders.get', { user: 'alice' });
    await expect(client.send('orders.get', { user: 'alice' })).rejects.toEqual({
      code: 'ORDERS_THROTTLED',
      retryInSeconds: 60,
    });
  });

  it('returning nothing keeps the default error', async () => {
    const { client } = await start({ onBlocked: () => undefined });
    await client.send('orders.get', { user: 'alice' });
    await client.send('orders.get', { user: 'alice' });
    await expect(client.send('orders.get', { user: 'alice' })).rejects.toEqual(overLimit(60));
  });
});

describe('a failing backend, for a microservice message', () => {
  it("failurePolicy: 'closed' rejects with a 503 object, without the backend's error text", async () => {
    const { client } = await start({ backend: new DownBackend(), failurePolicy: 'closed' });
    const error = await client.errorOf('orders.get', { user: 'alice' });
    expect(error).toEqual({
      status: 'error',
      statusCode: 503,
      message: 'Rate limiting is temporarily unavailable',
      retryAfter: 1,
    });
    expect(JSON.stringify(error)).not.toMatch(/ECONNREFUSED|secret/);
  });

  it("failurePolicy: 'open' (the default) lets the message through", async () => {
    const { client } = await start({ backend: new DownBackend() });
    await expect(client.send('orders.get', { user: 'alice', id: 1 })).resolves.toEqual({
      id: 1,
      status: 'shipped',
    });
  });
});

/** The microservice's controller of a hybrid application whose microservice does not inherit. */
@UseGuards(RateLimitGuard)
@UseFilters(RateLimitExceptionFilter)
@Controller()
class GuardedOrdersController extends OrdersController {}

describe('a hybrid application (HTTP plus a TCP microservice)', () => {
  async function hybrid(
    controllers: ModuleMetadata['controllers'],
    inheritAppConfig: boolean,
  ): Promise<HybridApp> {
    const app = await startHybrid(
      {
        imports: [
          RateLimitModule.forRoot({
            authenticate: payloadUser,
            backend: new MemoryBackend({ sweepIntervalMs: 0 }),
          }),
        ],
        controllers,
        providers: [HandledEvents],
      },
      { inheritAppConfig },
    );
    running = app;
    return app;
  }

  it('limits the microservice with the global guard and filter when it inherits the app config', async () => {
    const { client } = await hybrid([OrdersController], true);
    await client.send('orders.get', { user: 'alice' });
    await client.send('orders.get', { user: 'alice' });
    await expect(client.send('orders.get', { user: 'alice' })).rejects.toEqual(overLimit(60));
  });

  it('without inheritAppConfig, Nest applies no global guard to it: @UseGuards and @UseFilters do', async () => {
    const { client: unguarded } = await hybrid([OrdersController], false);
    for (let i = 0; i < 3; i += 1) {
      await expect(unguarded.send('orders.get', { user: 'alice' })).resolves.toMatchObject({
        id: 0,
      });
    }
    await running!.close();
    running = undefined;

    const { client, app } = await hybrid([GuardedOrdersController], false);
    const logs = captureLogs();
    await client.send('orders.get', { user: 'alice' });
    await client.send('orders.get', { user: 'alice' });
    await expect(client.send('orders.get', { user: 'alice' })).rejects.toEqual(overLimit(60));
    await client.emit('orders.created', { user: 'alice', id: 1 });
    await client.emit('orders.created', { user: 'alice', id: 2 });
    await expect(client.send('orders.count', {})).resolves.toBe(1);
    expect(app.get(HandledEvents).ids).toEqual([1]);
    expect(aboveDebug(logs)).toEqual([]);
  });
});
