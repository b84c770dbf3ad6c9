/**
 * GraphQL over HTTP through real drivers: `@nestjs/graphql` with Apollo on Express and with
 * Mercurius on Fastify, one suite run on both. The drivers keep their default context: the
 * limiter needs no `context` function.
 */
import { JwtService } from '@nestjs/jwt';
import {
  RateLimitBackend,
  createJwtAuth,
  type ConsumeResult,
  type RateLimitInfo,
} from 'nestjs-ratelimit';
import { captureLogs } from './support/captured-logs.js';
import {
  GRAPHQL_DRIVERS,
  createGraphqlApp,
  type GraphqlAppOptions,
  type GraphqlResponse,
  type GraphqlTestApp,
} from './support/graphql-app.js';
import { RESOLVERS, RestController } from './support/graphql-schema.js';
import { as, headerAuth } from './support/nest-app.js';

const MINUTE = 60_000;

/** A backend whose store is down: every decision fails, with an error text no client may see. */
class DownBackend extends RateLimitBackend {
  consume(): Promise<ConsumeResult> {
    return Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:6390 (secret detail)'));
  }
  unblock(): boolean {
    return false;
  }
  reset(): boolean {
    return false;
  }
}

/** The error a rejected field gets, as both drivers send it. */
function tooManyRequests(path: readonly (string | number)[], retryAfter = 60): object {
  return expect.objectContaining({
    message: `Too many requests, retry in ${retryAfter} seconds`,
    path: path.map(String),
    extensions: expect.objectContaining({ code: 'TOO_MANY_REQUESTS', retryAfter }),
  });
}

/** Errors with their paths as strings: Mercurius sends list indexes as strings, Apollo as numbers. */
function errorsOf(response: GraphqlResponse): object[] {
  return (response.body.errors ?? []).map((error) => ({
    ...error,
    path: error.path?.map(String),
  }));
}

describe.each(GRAPHQL_DRIVERS)('GraphQL over HTTP: $name on $adapter', (driver) => {
  let app: GraphqlTestApp | undefined;
  /** The app of the running test. */
  let t: GraphqlTestApp;

  async function start(options: Partial<GraphqlAppOptions> = {}): Promise<GraphqlTestApp> {
    app = await createGraphqlApp(driver, {
      resolvers: RESOLVERS,
      ...options,
      rateLimit: { authenticate: headerAuth, ...options.rateLimit },
    });
    t = app;
    return app;
  }
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  describe('decorated resolvers', () => {
    beforeEach(() => start());

    it('limits a decorated query per caller and rejects it with TOO_MANY_REQUESTS', async () => {
      const first = await t.query('{ strict }', as('u'));
      expect(first.body).toEqual({ data: { strict: 'strict' } });
      expect(first.headers['retry-after']).toBeUndefined();

      const second = await t.query('{ strict }', as('u'));
      // The driver's status for a field error: 200, never a 5xx.
      expect(second.status).toBe(200);
      expect(second.body.data).toEqual({ strict: null });
      expect(errorsOf(second)).toEqual([tooManyRequests(['strict'])]);
      expect(second.headers['retry-after']).toBe('60');

      // Another caller has their own counter.
      expect((await t.query('{ strict }', as('v'))).body).toEqual({ data: { strict: 'strict' } });
      // The window passes: the first caller is admitted again.
      t.clock.advance(MINUTE);
      expect((await t.query('{ strict }', as('u'))).body).toEqual({ data: { strict: 'strict' } });
    });

    it("applies the class's rule to a method without its own", async () => {
      for (let i = 0; i < 2; i++) {
        expect((await t.query('{ hello }', as('u'))).body).toEqual({ data: { hello: 'hello' } });
      }
      expect(errorsOf(await t.query('{ hello }', as('u')))).toEqual([tooManyRequests(['hello'])]);
      // The class rule counts per handler, as on controllers.
      expect((await t.query('{ strict }', as('u'))).body).toEqual({ data: { strict: 'strict' } });
    });

    it('counts each decorated root field and alias once', async () => {
      const response = await t.query('{ a: hello b: hello c: hello }', as('u'));
      expect(response.body.data).toEqual({ a: 'hello', b: 'hello', c: null });
      expect(errorsOf(response)).toEqual([tooManyRequests(['c'])]);
      expect(errorsOf(await t.query('{ hello }', as('u')))).toEqual([tooManyRequests(['hello'])]);
    });

    it('exempts a @SkipRateLimit method from its class rule', async () => {
      for (let i = 0; i < 5; i++) {
        expect((await t.query('{ free }', as('u'))).body).toEqual({ data: { free: 'free' } });
      }
    });

    it('limits a decorated mutation', async () => {
      expect((await t.query('mutation { rename }', as('u'))).body).toEqual({
        data: { rename: 'renamed' },
      });
      const rejected = await t.query('mutation { rename }', as('u'));
      expect(rejected.body.data).toEqual({ rename: null });
      expect(errorsOf(rejected)).toEqual([tooManyRequests(['rename'])]);
      expect(rejected.headers['retry-after']).toBe('60');
    });

    it('counts a decorated field resolver once per parent of a list', async () => {
      // 3 towns: 3 of the 4 allowed calls.
      const first = await t.query('{ towns { name letters } }', as('u'));
      expect(first.body).toEqual({
        data: {
          towns: [
            { name: 'Aix', letters: 3 },
            { name: 'Bern', letters: 4 },
            { name: 'Cork', letters: 4 },
          ],
        },
      });
      const second = await t.query('{ towns { name letters } }', as('u'));
      expect(second.body.data).toEqual({
        towns: [
          { name: 'Aix', letters: 3 },
          { name: 'Bern', letters: null },
          { name: 'Cork', letters: null },
        ],
      });
      expect(errorsOf(second)).toEqual([
        tooManyRequests(['towns', 1, 'letters']),
        tooManyRequests(['towns', 2, 'letters']),
      ]);
      expect(second.headers['retry-after']).toBe('60');
    });
  });

  it("leaves field resolvers alone without fieldResolverEnhancers: ['guards']", async () => {
    // Nest runs no guard on a @ResolveField unless the GraphQL module enables it.
    await start({ fieldGuards: false });
    for (let i = 0; i < 3; i++) {
      const response = await t.query('{ towns { letters } }', as('u'));
      expect(response.body).toEqual({
        data: { towns: [{ letters: 3 }, { letters: 4 }, { letters: 4 }] },
      });
    }
    // Root fields are still limited.
    await t.query('{ strict }', as('u'));
    expect(errorsOf(await t.query('{ strict }', as('u')))).toEqual([tooManyRequests(['strict'])]);
  });

  describe('the pattern table', () => {
    beforeEach(() => start({ rateLimit: { config: { '^/graphql': [{ minute: 2 }] } } }));

    it('matches the HTTP path once per HTTP request, however many fields it carries', async () => {
      for (let i = 0; i < 2; i++) {
        const response = await t.query('{ a: plain b: plain c: plain towns { name } }', as('u'));
        expect(response.body).toEqual({
          data: { a: 'plain', b: 'plain', c: 'plain', towns: TOWN_NAMES },
        });
      }
      const rejected = await t.query('{ a: plain b: plain }', as('u'));
      expect(rejected.body.data).toEqual({ a: null, b: null });
      expect(errorsOf(rejected)).toEqual([tooManyRequests(['a']), tooManyRequests(['b'])]);
      expect(rejected.headers['retry-after']).toBe('60');
      // A rejected non-null root field nulls the whole answer: still the driver's 200.
      const nonNull = await t.query('{ towns { name } }', as('u'));
      expect(nonNull.status).toBe(200);
      expect(nonNull.body.data).toBeNull();
      expect(errorsOf(nonNull)).toEqual([tooManyRequests(['towns'])]);
      // Another caller is counted on their own.
      expect((await t.query('{ plain }', as('v'))).body).toEqual({ data: { plain: 'plain' } });
    });

    it("decides a decorated resolver by its decorators first, as a controller's handler", async () => {
      // `strict` has its own rule (1 a minute): the table's counter is not touched.
      await t.query('{ strict }', as('u'));
      expect(errorsOf(await t.query('{ strict }', as('u')))).toEqual([tooManyRequests(['strict'])]);
      for (let i = 0; i < 2; i++) {
        expect((await t.query('{ plain }', as('u'))).body).toEqual({ data: { plain: 'plain' } });
      }
      expect(errorsOf(await t.query('{ plain }', as('u')))).toEqual([tooManyRequests(['plain'])]);
    });

    it('exempts a @SkipRateLimit method from the table too', async () => {
      for (let i = 0; i < 4; i++) {
        expect((await t.query('{ free }', as('u'))).body).toEqual({ data: { free: 'free' } });
      }
    });
  });

  it("leaves GraphQL unlimited with contexts: ['http'], and still limits HTTP", async () => {
    await start({
      controllers: [RestController],
      rateLimit: { contexts: ['http'], config: { '^/graphql': [{ minute: 1 }] } },
    });
    for (let i = 0; i < 3; i++) {
      expect((await t.query('{ strict plain }', as('u'))).body).toEqual({
        data: { strict: 'strict', plain: 'plain' },
      });
    }
    expect((await t.get('/rest', as('u'))).status).toBe(200);
    expect((await t.get('/rest', as('u'))).status).toBe(429);
  });

  describe('identity', () => {
    it('answers an unidentified caller with UNAUTHENTICATED, not an internal error', async () => {
      await start();
      const response = await t.query('{ strict hello }');
      expect(response.status).toBe(200);
      expect(response.body.data).toEqual({ strict: null, hello: null });
      const unauthenticated = expect.objectContaining({
        message: 'No user header',
        extensions: expect.objectContaining({ code: 'UNAUTHENTICATED' }),
      });
      expect(response.body.errors).toEqual([unauthenticated, unauthenticated]);
      expect(JSON.stringify(response.body)).not.toMatch(/internal/i);
      // A field nothing limits needs no identity.
      expect((await t.query('{ plain }')).body).toEqual({ data: { plain: 'plain' } });
    });

    it("limits by the client's address with IpAuthResolver, ignoring an untrusted X-Forwarded-For", async () => {
      const blocked: RateLimitInfo[] = [];
      await start({
        rateLimit: {
          authenticate: undefined,
          onBlocked: (info) => {
            blocked.push(info);
            return undefined;
          },
        },
      });
      await t.query('{ strict }');
      // A new address claimed by a peer nobody trusts does not make a new caller.
      const rejected = await t.query('{ strict }', { 'x-forwarded-for': '203.0.113.9' });
      expect(errorsOf(rejected)).toEqual([tooManyRequests(['strict'])]);
      expect(blocked.map(({ user, group }) => ({ user, group }))).toEqual([
        { user: '127.0.0.1', group: 'default' },
      ]);
    });

    it('identifies callers by a JWT with createJwtAuth', async () => {
      const secret = 'graphql-test-secret';
      await start({ rateLimit: { authenticate: createJwtAuth(secret, ['HS256']) } });
      const jwt = new JwtService({ secret });
      const bearer = async (claims: object) => ({
        authorization: `Bearer ${await jwt.signAsync(claims)}`,
      });
      const alice = await bearer({ user: 'alice' });
      expect((await t.query('{ strict }', alice)).body).toEqual({ data: { strict: 'strict' } });
      expect(errorsOf(await t.query('{ strict }', alice))).toEqual([tooManyRequests(['strict'])]);
      const bob = await bearer({ user: 'bob' });
      expect((await t.query('{ strict }', bob)).body).toEqual({ data: { strict: 'strict' } });

      const forged = {
        authorization: `Bearer ${await new JwtService({ secret: 'other' }).signAsync({ user: 'bob' })}`,
      };
      for (const headers of [{}, forged]) {
        const response = await t.query('{ strict }', headers);
        expect(response.status).toBe(200);
        expect(response.body.errors).toEqual([
          expect.objectContaining({
            extensions: expect.objectContaining({ code: 'UNAUTHENTICATED' }),
          }),
        ]);
      }
    });
  });

  describe('onBlocked', () => {
    it("makes a returned string the error's message, with contextType 'graphql'", async () => {
      const seen: RateLimitInfo[] = [];
      await start({
        rateLimit: {
          onBlocked: (info) => {
            seen.push(info);
            return `Slow down, ${info.user}`;
          },
        },
      });
      await t.query('{ strict }', as('u'));
      const rejected = await t.query('{ strict }', as('u'));
      expect(rejected.body.errors).toEqual([
        expect.objectContaining({
          message: 'Slow down, u',
          extensions: expect.objectContaining({ code: 'TOO_MANY_REQUESTS', retryAfter: 60 }),
        }),
      ]);
      expect(rejected.headers['retry-after']).toBe('60');
      expect(seen.map((info) => [info.contextType, info.user, info.retryAfter])).toEqual([
        ['graphql', 'u', 60],
      ]);
    });

    it('adds a returned object to the extensions, keeping code and retryAfter', async () => {
      await start({
        rateLimit: { onBlocked: () => ({ reason: 'quota', code: 'MINE', retryAfter: 1 }) },
      });
      await t.query('{ strict }', as('u'));
      const rejected = await t.query('{ strict }', as('u'));
      expect(rejected.body.errors).toEqual([
        expect.objectContaining({
          message: 'Too many requests, retry in 60 seconds',
          extensions: expect.objectContaining({
            reason: 'quota',
            code: 'TOO_MANY_REQUESTS',
            retryAfter: 60,
          }),
        }),
      ]);
    });
  });

  it("fails closed as SERVICE_UNAVAILABLE, never a 5xx or the backend's error", async () => {
    await start({ rateLimit: { backend: new DownBackend(), failurePolicy: 'closed' } });
    const response = await t.query('{ strict }', as('u'));
    expect(response.status).toBe(200);
    expect(response.body.data).toEqual({ strict: null });
    expect(response.body.errors).toEqual([
      expect.objectContaining({
        message: 'Rate limiting is temporarily unavailable',
        extensions: expect.objectContaining({ code: 'SERVICE_UNAVAILABLE' }),
      }),
    ]);
    expect(response.headers['retry-after']).toBe('1');
    expect(JSON.stringify(response.body)).not.toMatch(/ECONNREFUSED|secret|6390/);
  });

  it('logs no rejection above debug level', async () => {
    await start({ rateLimit: { config: { '^/graphql': [{ minute: 1 }] } } });
    const logs = captureLogs();
    await t.query('{ strict plain }', as('u'));
    const rejected = await t.query('{ strict plain }', as('u'));
    expect(rejected.body.errors).toHaveLength(2);
    const unidentified = await t.query('{ strict }');
    expect(unidentified.body.errors).toHaveLength(1);
    expect(logs.lines.filter((line) => !['debug', 'verbose'].includes(line.level))).toEqual([]);
  });
});

const TOWN_NAMES = [{ name: 'Aix' }, { name: 'Bern' }, { name: 'Cork' }];
