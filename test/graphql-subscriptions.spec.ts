/**
 * GraphQL subscriptions over WebSocket through real drivers and a real graphql-ws client: Apollo
 * (`subscriptions: { 'graphql-ws': true }`) on Express and Mercurius (`subscription: true`) on
 * Fastify. Each subscribe operation is one call, identified by its connection: the upgrade
 * request's address and headers, and the `connection_init` payload.
 */
import { JwtService } from '@nestjs/jwt';
import { createJwtAuth, type RateLimitInfo } from 'nestjs-ratelimit';
import { captureLogs } from './support/captured-logs.js';
import {
  GRAPHQL_DRIVERS,
  createGraphqlApp,
  subscribe,
  type GraphqlAppOptions,
  type GraphqlTestApp,
} from './support/graphql-app.js';
import { RESOLVERS } from './support/graphql-schema.js';
import { headerAuth } from './support/nest-app.js';

const TICKS = 'subscription { ticks }';
const DELIVERED = { data: [{ ticks: 1 }], errors: [] };

/** A subscription rejected over its limit. */
const REJECTED = {
  data: [],
  errors: [
    expect.objectContaining({
      message: 'Too many requests, retry in 60 seconds',
      extensions: expect.objectContaining({ code: 'TOO_MANY_REQUESTS', retryAfter: 60 }),
    }),
  ],
};

describe.each(GRAPHQL_DRIVERS)('GraphQL subscriptions: $name on $adapter', (driver) => {
  let app: GraphqlTestApp | undefined;

  async function start(options: Partial<GraphqlAppOptions> = {}): Promise<GraphqlTestApp> {
    app = await createGraphqlApp(driver, {
      resolvers: RESOLVERS,
      ...options,
      rateLimit: { authenticate: headerAuth, ...options.rateLimit },
    });
    return app;
  }
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('limits each subscribe operation by the connection_init payload', async () => {
    const t = await start();
    const alice = t.wsClient({ connectionParams: { user: 'alice' } });
    expect(await subscribe(alice, TICKS)).toEqual(DELIVERED);
    expect(await subscribe(alice, TICKS)).toEqual(DELIVERED);
    expect(await subscribe(alice, TICKS)).toEqual(REJECTED);
    // Another connection of the same caller shares the counter; another caller does not.
    expect(await subscribe(t.wsClient({ connectionParams: { user: 'alice' } }), TICKS)).toEqual(
      REJECTED,
    );
    expect(await subscribe(t.wsClient({ connectionParams: { user: 'bob' } }), TICKS)).toEqual(
      DELIVERED,
    );
    t.clock.advance(60_000);
    expect(await subscribe(alice, TICKS)).toEqual(DELIVERED);
  });

  it("identifies a subscriber by the handshake's headers", async () => {
    const t = await start();
    const client = t.wsClient({ headers: { user: 'carol' } });
    await subscribe(client, TICKS);
    await subscribe(client, TICKS);
    expect(await subscribe(client, TICKS)).toEqual(REJECTED);
    // The handshake's header wins over the payload's.
    const claimed = t.wsClient({ headers: { user: 'carol' }, connectionParams: { user: 'dave' } });
    expect(await subscribe(claimed, TICKS)).toEqual(REJECTED);
  });

  it('answers an unidentified subscriber with UNAUTHENTICATED', async () => {
    const t = await start();
    const outcome = await subscribe(t.wsClient(), TICKS);
    expect(outcome).toEqual({
      data: [],
      errors: [
        expect.objectContaining({
          message: 'No user header',
          extensions: expect.objectContaining({ code: 'UNAUTHENTICATED' }),
        }),
      ],
    });
    expect(JSON.stringify(outcome)).not.toMatch(/internal/i);
  });

  it("limits by the connection's address with IpAuthResolver; onBlocked sees 'graphql'", async () => {
    const seen: RateLimitInfo[] = [];
    const t = await start({
      // Even where the adapter believes every X-Forwarded-For, the payload cannot carry one.
      trustProxy: true,
      rateLimit: {
        authenticate: undefined,
        onBlocked: (info) => {
          seen.push(info);
          return { reason: 'subscriptions' };
        },
      },
    });
    const client = t.wsClient();
    await subscribe(client, TICKS);
    await subscribe(client, TICKS);
    const claiming = t.wsClient({ connectionParams: { 'x-forwarded-for': '203.0.113.9' } });
    const rejected = await subscribe(claiming, TICKS);
    expect(rejected.errors).toEqual([
      expect.objectContaining({
        extensions: expect.objectContaining({
          code: 'TOO_MANY_REQUESTS',
          retryAfter: 60,
          reason: 'subscriptions',
        }),
      }),
    ]);
    expect(seen.map(({ contextType, user }) => ({ contextType, user }))).toEqual([
      { contextType: 'graphql', user: '127.0.0.1' },
    ]);
  });

  it('identifies a subscriber by a JWT sent in the connection_init payload', async () => {
    const secret = 'graphql-ws-secret';
    const t = await start({ rateLimit: { authenticate: createJwtAuth(secret, ['HS256']) } });
    const token = await new JwtService({ secret }).signAsync({ user: 'erin' });
    const client = t.wsClient({ connectionParams: { Authorization: `Bearer ${token}` } });
    await subscribe(client, TICKS);
    await subscribe(client, TICKS);
    expect(await subscribe(client, TICKS)).toEqual(REJECTED);
    // As a header of the handshake, the same caller.
    const viaHeader = t.wsClient({ headers: { authorization: `Bearer ${token}` } });
    expect(await subscribe(viaHeader, TICKS)).toEqual(REJECTED);
    const anonymous = await subscribe(t.wsClient(), TICKS);
    expect(anonymous.errors).toEqual([
      expect.objectContaining({
        extensions: expect.objectContaining({ code: 'UNAUTHENTICATED' }),
      }),
    ]);
  });

  it('applies only decorators to subscriptions: the table is for HTTP requests', async () => {
    const t = await start({ rateLimit: { config: { '^/graphql': [{ minute: 1 }] } } });
    const client = t.wsClient({ connectionParams: { user: 'frank' } });
    for (let i = 0; i < 3; i++) {
      expect(await subscribe(client, 'subscription { plainTicks }')).toEqual({
        data: [{ plainTicks: 1 }],
        errors: [],
      });
    }
  });

  it('logs no rejection above debug level', async () => {
    const t = await start();
    const logs = captureLogs();
    const client = t.wsClient({ connectionParams: { user: 'gina' } });
    for (let i = 0; i < 3; i++) await subscribe(client, TICKS);
    await subscribe(t.wsClient(), TICKS);
    expect(logs.lines.filter((line) => !['debug', 'verbose'].includes(line.level))).toEqual([]);
  });
});
