/**
 * WebSocket gateways (`@nestjs/websockets`) on both platforms, through real clients: the `ws`
 * package against `@nestjs/platform-ws`, `socket.io-client` against `@nestjs/platform-socket.io`.
 * A message is one request; the caller is identified per message from the connection's handshake.
 */
import {
  Catch,
  Controller,
  Get,
  UseFilters,
  UseGuards,
  type ArgumentsHost,
  type INestApplication,
  type Type,
  type WsExceptionFilter,
} from '@nestjs/common';
import type { EventEmitter } from 'node:events';
import { IoAdapter } from '@nestjs/platform-socket.io';
import { JwtService } from '@nestjs/jwt';
import { Test } from '@nestjs/testing';
import {
  MessageBody,
  SubscribeMessage,
  WebSocketGateway,
  WsException,
  type WsResponse,
} from '@nestjs/websockets';
import {
  EmptyInformation,
  IpAuthResolver,
  MemoryBackend,
  RateLimit,
  RateLimitGuard,
  RateLimitModule,
  SkipRateLimit,
  createJwtAuth,
  trackWsClients,
  type RateLimitEvent,
  type RateLimitInfo,
  type RateLimitModuleOptions,
} from 'nestjs-ratelimit';
import { captureLogs, type CapturedLogs } from './support/captured-logs.js';
import { TestClock } from './support/nest-app.js';
import {
  NEST_MAJOR,
  socketIoPlatform,
  untrackedWsPlatform,
  wsPlatform,
  type ConnectOptions,
  type TestWsClient,
  type WsPlatform,
} from './support/ws-clients.js';

/** What every handler answers: which handler ran, and the data it got. */
function reply(handler: string, data: unknown): WsResponse<{ handler: string; data: unknown }> {
  return { event: 'reply', data: { handler, data } };
}

/**
 * Nest 12 runs global guards (the module's `APP_GUARD`) for gateway messages; Nest 11 does not
 * (its socket module reads no global enhancers), so there a gateway names the guard itself, as
 * the README tells Nest 11 users to.
 */
const GATEWAY_GUARDS = NEST_MAJOR >= 12 ? [] : [RateLimitGuard];

/** `ping`: 2 a minute (its own decorator); `echo`: 3 a minute (the class's); `free`: skipped. */
@UseGuards(...GATEWAY_GUARDS)
@RateLimit({ minute: 3 })
@WebSocketGateway()
class LimitedGateway {
  @RateLimit({ minute: 2 })
  @SubscribeMessage('ping')
  ping(@MessageBody() data: unknown): WsResponse {
    return reply('ping', data);
  }

  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown): WsResponse {
    return reply('echo', data);
  }

  @SkipRateLimit()
  @SubscribeMessage('free')
  free(@MessageBody() data: unknown): WsResponse {
    return reply('free', data);
  }
}

/** `login`: 2 failed logins a minute (`count: 'failures'`); a good password is never counted. */
@UseGuards(...GATEWAY_GUARDS)
@WebSocketGateway()
class LoginGateway {
  @RateLimit({ minute: 2, count: 'failures' })
  @SubscribeMessage('login')
  login(@MessageBody() password: unknown): WsResponse {
    if (password !== 'right') throw new WsException('wrong password');
    return reply('login', password);
  }
}

/** A gateway without decorators: never limited, whatever the table says of HTTP paths. */
@UseGuards(...GATEWAY_GUARDS)
@WebSocketGateway()
class OpenGateway {
  @SubscribeMessage('open')
  open(@MessageBody() data: unknown): WsResponse {
    return reply('open', data);
  }
}

/**
 * What Nest 11's `BaseWsExceptionFilter` does with a `WsException`: `client.emit('exception',
 * error)`, which on a `ws` WebSocket only raises a local event (Nest 12 sends it instead). Used to
 * prove on Nest 12 that `trackWsClients` delivers the rate limiter's rejections on Nest 11.
 */
@Catch(WsException)
class Nest11StyleFilter implements WsExceptionFilter<WsException> {
  catch(exception: WsException, host: ArgumentsHost): void {
    host.switchToWs().getClient<EventEmitter>().emit('exception', exception.getError());
  }
}

@UseFilters(new Nest11StyleFilter())
@UseGuards(...GATEWAY_GUARDS)
@RateLimit({ minute: 1 })
@WebSocketGateway()
class Nest11StyleGateway {
  @SubscribeMessage('limited')
  limited(): WsResponse {
    return reply('limited', null);
  }

  /** The application's own exception: left as Nest handles it (on Nest 11, not sent). */
  @SkipRateLimit()
  @SubscribeMessage('own')
  own(): never {
    throw new WsException({ mine: true });
  }

  @SkipRateLimit()
  @SubscribeMessage('hello')
  hello(): WsResponse {
    return reply('hello', null);
  }
}

/** Names the guard in `@UseGuards` although it is global too: each message still counts once. */
@UseGuards(RateLimitGuard)
@WebSocketGateway()
class GuardedGateway {
  @RateLimit({ minute: 2 })
  @SubscribeMessage('guarded')
  guarded(): WsResponse {
    return reply('guarded', null);
  }
}

@Controller()
class HttpController {
  @Get()
  hello(): string {
    return 'hello';
  }
}

interface GatewayApp {
  app: INestApplication;
  url: string;
  clock: TestClock;
  connect(options?: ConnectOptions): Promise<TestWsClient>;
  close(): Promise<void>;
}

interface GatewayAppOptions {
  rateLimit?: Omit<RateLimitModuleOptions, 'backend'>;
  /** The gateways (default: {@link LimitedGateway} and {@link OpenGateway}). */
  gateways?: Type[];
  /** Runs on the app before it starts (trust proxy...). */
  configure?: (app: INestApplication) => void;
}

/** A real application with both gateways on its HTTP server, listening on 127.0.0.1. */
async function startApp(
  platform: WsPlatform,
  options: GatewayAppOptions = {},
): Promise<GatewayApp> {
  const clock = new TestClock();
  const backend = new MemoryBackend({ clock: clock.read, sweepIntervalMs: 0 });
  const moduleRef = await Test.createTestingModule({
    imports: [RateLimitModule.forRoot({ ...options.rateLimit, backend })],
    controllers: [HttpController],
    providers: options.gateways ?? [LimitedGateway, OpenGateway],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  platform.install(app);
  options.configure?.(app);
  await app.listen(0, '127.0.0.1');
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  const clients: TestWsClient[] = [];
  return {
    app,
    url,
    clock,
    connect: async (connectOptions) => {
      const client = await platform.connect(url, connectOptions);
      clients.push(client);
      return client;
    },
    close: async () => {
      await Promise.all(clients.map((client) => client.close()));
      await app.close();
    },
  };
}

async function withApp(
  platform: WsPlatform,
  options: GatewayAppOptions,
  body: (t: GatewayApp) => Promise<void>,
): Promise<void> {
  const t = await startApp(platform, options);
  try {
    await body(t);
  } finally {
    await t.close();
  }
}

/** The reply of a handler that ran. */
function ran(handler: string, data: unknown = null): { event: 'reply'; data: unknown } {
  return { event: 'reply', data: { handler, data } };
}

/** The rejection a client receives for a message over its limit. */
function overLimit(retryAfter: number): { event: 'exception'; data: unknown } {
  return {
    event: 'exception',
    data: {
      status: 'error',
      statusCode: 429,
      message: `Too many requests, retry in ${retryAfter} second${retryAfter === 1 ? '' : 's'}`,
      retryAfter,
    },
  };
}

/** The rejection of a caller who could not be identified. */
function unidentified(message: string | RegExp): { event: 'exception'; data: unknown } {
  return {
    event: 'exception',
    data: {
      status: 'error',
      statusCode: 401,
      message: typeof message === 'string' ? message : expect.stringMatching(message),
    },
  };
}

/** Log lines above debug (log, warn, error, fatal), from any logger. */
function aboveDebug(logs: CapturedLogs): string[] {
  return logs.lines
    .filter((line) => line.level !== 'debug' && line.level !== 'verbose')
    .map((line) => `${line.level}: ${line.message}`);
}

describe.each([wsPlatform, socketIoPlatform])('WebSocket gateways on $name', (platform) => {
  describe("count: 'failures' and onDecision", () => {
    it('counts only the messages whose handler threw, and reports each decision', async () => {
      const events: RateLimitEvent[] = [];
      await withApp(
        platform,
        { rateLimit: { onDecision: (event) => events.push(event) }, gateways: [LoginGateway] },
        async (t) => {
          const client = await t.connect();
          for (let i = 0; i < 4; i++) {
            await expect(client.request('login', 'right')).resolves.toEqual(ran('login', 'right'));
          }
          for (let i = 0; i < 2; i++) {
            if (NEST_MAJOR < 12 && platform === wsPlatform) {
              // Nest 11 does not send an application's own WsException over platform-ws (see
              // Nest11StyleGateway): the failure is still counted, as the 429 below shows.
              client.send('login', 'wrong');
              continue;
            }
            await expect(client.request('login', 'wrong')).resolves.toMatchObject({
              event: 'exception',
              data: { message: 'wrong password' },
            });
          }
          await expect(client.request('login', 'right')).resolves.toEqual(overLimit(60));
          expect(events.map((event) => [event.outcome, event.contextType])).toEqual([
            ...Array(6).fill(['allowed', 'ws']),
            ['rejected', 'ws'],
          ]);
        },
      );
    });
  });

  describe('@RateLimit and @SkipRateLimit', () => {
    it('limits a handler by its own decorator; the rejection reaches the client, which stays connected', () =>
      withApp(platform, {}, async (t) => {
        const client = await t.connect();
        await expect(client.request('ping', 1)).resolves.toEqual(ran('ping', 1));
        await expect(client.request('ping', 2)).resolves.toEqual(ran('ping', 2));
        await expect(client.request('ping', 3)).resolves.toEqual(overLimit(60));
        expect(client.isOpen).toBe(true);
        // A rejected message consumed nothing; the window still runs from the first message.
        t.clock.advance(30_000);
        await expect(client.request('ping', 4)).resolves.toEqual(overLimit(30));
        t.clock.advance(30_000);
        await expect(client.request('ping', 5)).resolves.toEqual(ran('ping', 5));
        expect(client.isOpen).toBe(true);
      }));

    it('limits the other handlers of a decorated gateway by the class’s rule, on their own counter', () =>
      withApp(platform, {}, async (t) => {
        const client = await t.connect();
        await client.request('ping');
        await client.request('ping');
        for (let i = 0; i < 3; i++) {
          await expect(client.request('echo', i)).resolves.toEqual(ran('echo', i));
        }
        await expect(client.request('echo', 3)).resolves.toEqual(overLimit(60));
        await expect(client.request('ping')).resolves.toEqual(overLimit(60));
      }));

    it('leaves @SkipRateLimit handlers and undecorated gateways unlimited (the table is for HTTP paths)', () =>
      withApp(platform, { rateLimit: { config: { '.*': [{ minute: 0 }] } } }, async (t) => {
        const client = await t.connect();
        for (let i = 0; i < 6; i++) {
          await expect(client.request('free', i)).resolves.toEqual(ran('free', i));
          await expect(client.request('open', i)).resolves.toEqual(ran('open', i));
        }
        // The same table denies every HTTP request.
        const response = await fetch(`${t.url}/`);
        expect(response.status).toBe(429);
      }));

    it('counts messages per caller across connections: two connections from one address share a limit', () =>
      withApp(platform, {}, async (t) => {
        const first = await t.connect();
        const second = await t.connect();
        await expect(first.request('ping')).resolves.toEqual(ran('ping'));
        await expect(second.request('ping')).resolves.toEqual(ran('ping'));
        await expect(first.request('ping')).resolves.toEqual(overLimit(60));
        await expect(second.request('ping')).resolves.toEqual(overLimit(60));
      }));

    it('counts a message once when the gateway also names RateLimitGuard in @UseGuards', () =>
      withApp(platform, { gateways: [GuardedGateway] }, async (t) => {
        const client = await t.connect();
        await expect(client.request('guarded')).resolves.toEqual(ran('guarded'));
        await expect(client.request('guarded')).resolves.toEqual(ran('guarded'));
        await expect(client.request('guarded')).resolves.toEqual(overLimit(60));
      }));

    it('leaves WebSocket messages unlimited under contexts: ["http"]', () =>
      withApp(
        platform,
        { rateLimit: { contexts: ['http'], config: { '/': [{ minute: 1 }] } } },
        async (t) => {
          const client = await t.connect();
          for (let i = 0; i < 5; i++) {
            await expect(client.request('ping', i)).resolves.toEqual(ran('ping', i));
          }
          expect((await fetch(`${t.url}/`)).status).toBe(200);
          expect((await fetch(`${t.url}/`)).status).toBe(429);
        },
      ));
  });

  describe('IpAuthResolver (the default) on the handshake', () => {
    /** onBlocked tells who was limited, so a test can see the identity. */
    const whoIsBlocked: RateLimitModuleOptions['onBlocked'] = (info) => ({
      blocked: info.user,
      contextType: info.contextType,
    });
    const forwardedFrom = (address: string): ConnectOptions => ({
      headers: { 'x-forwarded-for': address },
    });
    /**
     * Two clients behind one proxy, told apart by X-Forwarded-For: the first is blocked on its
     * third ping under its forwarded address, the second is not.
     */
    const countsPerForwardedClient = async (t: GatewayApp): Promise<void> => {
      const first = await t.connect(forwardedFrom('203.0.113.7'));
      const second = await t.connect(forwardedFrom('198.51.100.9'));
      await first.request('ping');
      await first.request('ping');
      await expect(first.request('ping')).resolves.toEqual({
        event: 'exception',
        data: { blocked: '203.0.113.7', contextType: 'ws' },
      });
      await expect(second.request('ping')).resolves.toEqual(ran('ping'));
    };

    it('identifies the client by its address', () =>
      withApp(platform, { rateLimit: { onBlocked: whoIsBlocked } }, async (t) => {
        const client = await t.connect();
        await client.request('ping');
        await client.request('ping');
        await expect(client.request('ping')).resolves.toEqual({
          event: 'exception',
          data: { blocked: '127.0.0.1', contextType: 'ws' },
        });
      }));

    it('ignores X-Forwarded-For by default, as Express does with trust proxy off', () =>
      withApp(platform, { rateLimit: { onBlocked: whoIsBlocked } }, async (t) => {
        const first = await t.connect(forwardedFrom('203.0.113.7'));
        const second = await t.connect(forwardedFrom('198.51.100.9'));
        await first.request('ping');
        await second.request('ping');
        await expect(second.request('ping')).resolves.toEqual({
          event: 'exception',
          data: { blocked: '127.0.0.1', contextType: 'ws' },
        });
      }));

    it('follows Express’s trust proxy setting by default', () =>
      withApp(
        platform,
        {
          rateLimit: { onBlocked: whoIsBlocked },
          configure: (app) => {
            app.getHttpAdapter().getInstance().set('trust proxy', 'loopback');
          },
        },
        countsPerForwardedClient,
      ));

    it('reads X-Forwarded-For from a peer that IpAuthOptions.trustProxy trusts', () =>
      withApp(
        platform,
        {
          rateLimit: {
            authenticate: new IpAuthResolver({ trustProxy: 'loopback' }),
            onBlocked: whoIsBlocked,
          },
        },
        countsPerForwardedClient,
      ));

    it('never reads X-Forwarded-For from a peer that trustProxy does not trust', () =>
      withApp(
        platform,
        {
          rateLimit: {
            authenticate: new IpAuthResolver({ trustProxy: '10.0.0.0/8' }),
            onBlocked: whoIsBlocked,
          },
          // Express trusting the peer does not matter once the option says otherwise.
          configure: (app) => {
            app.getHttpAdapter().getInstance().set('trust proxy', true);
          },
        },
        async (t) => {
          const client = await t.connect(forwardedFrom('203.0.113.7'));
          await client.request('ping');
          await client.request('ping');
          await expect(client.request('ping')).resolves.toEqual({
            event: 'exception',
            data: { blocked: '127.0.0.1', contextType: 'ws' },
          });
        },
      ));
  });

  describe('JwtAuthResolver on the handshake', () => {
    const secret = 'websocket-test-secret';
    const jwt = new JwtService({ secret });
    const rateLimit: GatewayAppOptions['rateLimit'] = {
      authenticate: createJwtAuth(secret, ['HS256']),
      onBlocked: (info) => ({ blocked: info.user }),
    };
    const bearer = (token: string): ConnectOptions => ({
      headers: { authorization: `Bearer ${token}` },
    });

    it('reads the bearer token of the handshake’s Authorization header, per user', () =>
      withApp(platform, { rateLimit }, async (t) => {
        const alice = await t.connect(bearer(await jwt.signAsync({ user: 'alice' })));
        const bob = await t.connect(bearer(await jwt.signAsync({ user: 'bob' })));
        await alice.request('ping');
        await alice.request('ping');
        await expect(alice.request('ping')).resolves.toEqual({
          event: 'exception',
          data: { blocked: 'alice' },
        });
        await expect(bob.request('ping')).resolves.toEqual(ran('ping'));
      }));

    it('answers a missing or forged token with a 401 error, and the connection stays open', () =>
      withApp(platform, { rateLimit }, async (t) => {
        const anonymous = await t.connect();
        const forger = await t.connect(
          bearer(await new JwtService({ secret: 'another-secret' }).signAsync({ user: 'alice' })),
        );
        await expect(anonymous.request('ping')).resolves.toEqual(
          unidentified('No Authorization header'),
        );
        await expect(forger.request('ping')).resolves.toEqual(
          unidentified('The bearer token has an invalid signature'),
        );
        expect(anonymous.isOpen).toBe(true);
        expect(forger.isOpen).toBe(true);
        // Unlimited handlers still answer them.
        await expect(anonymous.request('free')).resolves.toEqual(ran('free'));
      }));
  });

  describe('rejections', () => {
    it('turn EmptyInformation into { status: "error", statusCode: 401, message }, never a 500', () =>
      withApp(
        platform,
        {
          rateLimit: {
            authenticate: () => {
              throw new EmptyInformation('No API key in the handshake');
            },
          },
        },
        async (t) => {
          const client = await t.connect();
          await expect(client.request('ping')).resolves.toEqual(
            unidentified('No API key in the handshake'),
          );
          expect(client.isOpen).toBe(true);
          await expect(client.request('free')).resolves.toEqual(ran('free'));
        },
      ));

    it('use the string onBlocked returns as the message', () =>
      withApp(
        platform,
        { rateLimit: { onBlocked: (info) => `Slow down, ${info.user}` } },
        async (t) => {
          const client = await t.connect();
          await client.request('ping');
          await client.request('ping');
          await expect(client.request('ping')).resolves.toEqual({
            event: 'exception',
            data: {
              status: 'error',
              statusCode: 429,
              message: 'Slow down, 127.0.0.1',
              retryAfter: 60,
            },
          });
        },
      ));

    it('use the object onBlocked returns as the payload, and tell it the context type', () => {
      const seen: RateLimitInfo[] = [];
      return withApp(
        platform,
        {
          rateLimit: {
            onBlocked: (info) => {
              seen.push(info);
              return { code: 'SLOW_DOWN', wait: info.retryAfter };
            },
          },
        },
        async (t) => {
          const client = await t.connect();
          await client.request('echo');
          await client.request('echo');
          await client.request('echo');
          t.clock.advance(15_000);
          await expect(client.request('echo')).resolves.toEqual({
            event: 'exception',
            data: { code: 'SLOW_DOWN', wait: 45 },
          });
          expect(seen).toHaveLength(1);
          expect(seen[0]).toMatchObject({
            contextType: 'ws',
            user: '127.0.0.1',
            group: 'default',
            retryAfter: 45,
            unit: 'minute',
            counter: { scope: 'handler:LimitedGateway.echo' },
          });
        },
      );
    });

    it('are never logged above debug level', async () => {
      const secret = 'log-test-secret';
      const t = await startApp(platform, {
        rateLimit: { authenticate: createJwtAuth(secret, ['HS256']) },
      });
      const logs = captureLogs();
      try {
        const token = await new JwtService({ secret }).signAsync({ user: 'dave' });
        const known = await t.connect({ headers: { authorization: `Bearer ${token}` } });
        const anonymous = await t.connect();
        await known.request('ping');
        await known.request('ping');
        await expect(known.request('ping')).resolves.toEqual(overLimit(60));
        await expect(known.request('ping')).resolves.toEqual(overLimit(60));
        await expect(anonymous.request('ping')).resolves.toEqual(
          unidentified('No Authorization header'),
        );
        expect(aboveDebug(logs)).toEqual([]);
      } finally {
        await t.close();
      }
    });
  });
});

describe('@nestjs/platform-ws without trackWsClients', () => {
  const fix =
    "app.useWebSocketAdapter(trackWsClients(new WsAdapter(app))) in main.ts (trackWsClients from 'nestjs-ratelimit')";
  const message =
    "IpAuthResolver cannot see this WebSocket client's handshake: a client of " +
    '@nestjs/platform-ws (the ws package) has no public address or headers. Wrap the ' +
    `adapter: ${fix}.`;

  it('rejects with a 401 that says exactly what to add, logged once for the developer', async () => {
    const t = await startApp(untrackedWsPlatform);
    const logs = captureLogs();
    try {
      const client = await t.connect();
      if (NEST_MAJOR >= 12) {
        await expect(client.request('ping')).resolves.toEqual(unidentified(message));
        await expect(client.request('ping')).resolves.toEqual(unidentified(message));
      } else {
        // Nest 11 sends no WsException to a ws client (only trackWsClients delivers ours there).
        client.send('ping');
        client.send('ping');
      }
      await expect(client.request('free')).resolves.toEqual(ran('free'));
      expect(client.isOpen).toBe(true);
      expect(aboveDebug(logs)).toEqual([
        `warn: ${message} Until then its messages cannot be identified (a 401). Logged once.`,
      ]);
    } finally {
      await t.close();
    }
  });
});

describe('@nestjs/platform-ws with trackWsClients, where Nest only emits exceptions locally (Nest 11)', () => {
  it('delivers the rate limiter’s rejections once, and leaves the application’s own exceptions alone', () =>
    // Two gateways on one server: Nest binds the connection once for each.
    withApp(wsPlatform, { gateways: [Nest11StyleGateway, OpenGateway] }, async (t) => {
      const client = await t.connect();
      await expect(client.request('limited')).resolves.toEqual(ran('limited'));
      await expect(client.request('limited')).resolves.toEqual(overLimit(60));
      client.send('own');
      // Nothing came of `own`: the next thing the client receives is the answer to `hello`.
      await expect(client.request('hello')).resolves.toEqual(ran('hello'));
      await expect(client.request('limited')).resolves.toEqual(overLimit(60));
      await expect(client.request('hello')).resolves.toEqual(ran('hello'));
    }));

  it('does not deliver them without the wrapper (the client is not tracked)', () =>
    withApp(
      untrackedWsPlatform,
      { gateways: [Nest11StyleGateway], rateLimit: { authenticate: () => ({ user: 'u' }) } },
      async (t) => {
        const client = await t.connect();
        await expect(client.request('limited')).resolves.toEqual(ran('limited'));
        client.send('limited');
        await expect(client.request('hello')).resolves.toEqual(ran('hello'));
      },
    ));
});

describe('@nestjs/platform-socket.io specifics', () => {
  it('reads the token socket.io clients send as auth.token', () =>
    withApp(
      socketIoPlatform,
      {
        rateLimit: {
          authenticate: createJwtAuth('io-secret', ['HS256']),
          onBlocked: (info) => ({ blocked: info.user }),
        },
      },
      async (t) => {
        const token = await new JwtService({ secret: 'io-secret' }).signAsync({ user: 'carol' });
        const client = await t.connect({ token });
        await client.request('ping');
        await client.request('ping');
        await expect(client.request('ping')).resolves.toEqual({
          event: 'exception',
          data: { blocked: 'carol' },
        });
      },
    ));

  it('identifies a client that connected by long-polling first, from that handshake', () =>
    withApp(
      socketIoPlatform,
      {
        rateLimit: {
          authenticate: new IpAuthResolver({ trustProxy: 'loopback' }),
          onBlocked: (info) => ({ blocked: info.user }),
        },
      },
      async (t) => {
        const client = await t.connect({
          transports: ['polling', 'websocket'],
          headers: { 'x-forwarded-for': '203.0.113.7' },
        });
        await client.request('ping');
        await client.request('ping');
        await expect(client.request('ping')).resolves.toEqual({
          event: 'exception',
          data: { blocked: '203.0.113.7' },
        });
      },
    ));

  it('works with the adapter wrapped by trackWsClients too (it changes nothing there)', () =>
    withApp(
      {
        ...socketIoPlatform,
        install: (app) => {
          app.useWebSocketAdapter(trackWsClients(new IoAdapter(app)));
        },
      },
      { rateLimit: { onBlocked: (info) => ({ blocked: info.user }) } },
      async (t) => {
        const client = await t.connect();
        await client.request('ping');
        await client.request('ping');
        await expect(client.request('ping')).resolves.toEqual({
          event: 'exception',
          data: { blocked: '127.0.0.1' },
        });
      },
    ));
});
