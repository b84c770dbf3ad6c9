/**
 * What `authenticate` accepts: the original's helpers as its users write them (passed as they
 * are, called with options, called with a request inside the user's own function), and entries
 * that return something that is not an identity. Type-checked by `npm run typecheck`, so the
 * assignments below are also the proof that both forms of each helper fit the option's type.
 */
import { SessionLoginController } from './support/session-login.js';
import request from 'supertest';
import {
  clientIp,
  createJwtAuth,
  EmptyInformation,
  fromSession,
  RateLimitConfigError,
  type AuthenticateEntry,
  type AuthFunction,
  type RateLimitModuleOptions,
  type RateLimitRequest,
} from 'nestjs-ratelimit';
import {
  ADAPTERS,
  as,
  createTestApp,
  headerAuth,
  HelloController,
  type AdapterTrustProxy,
  type TestApp,
} from './support/nest-app.js';
import { captureLogs, type CapturedLogs } from './support/captured-logs.js';
import { SESSION_PLUGINS, useSessions, type SessionPlugin } from './support/sessions.js';

// Both forms of each helper are entries of the option, alone and in a chain.
const asTheyAre: AuthenticateEntry[] = [clientIp, fromSession, headerAuth];
const calledWithOptions: AuthenticateEntry[] = [
  clientIp({ trustProxy: 1 }),
  fromSession({ userKey: 'uid' }),
];
const asAuthFunction: AuthFunction = clientIp;
// @ts-expect-error createJwtAuth is a factory: pass createJwtAuth(secret, algorithms)
const uncalledFactory: AuthenticateEntry = createJwtAuth;
void [asTheyAre, calledWithOptions, asAuthFunction, uncalledFactory];

const config: RateLimitModuleOptions['config'] = { '^/api': [{ minute: 2 }] };

/** An agent whose session holds `fields`. */
async function loggedIn(t: TestApp, fields: Record<string, unknown>) {
  const agent = request.agent(t.app.getHttpServer());
  await agent.post('/login').send(fields).expect(204);
  return agent;
}

describe.each(ADAPTERS)('on %s', (adapter) => {
  async function withApp(
    rateLimit: NonNullable<Parameters<typeof createTestApp>[0]>['rateLimit'],
    body: (t: TestApp, logs: CapturedLogs) => Promise<void>,
    { sessions, trustProxy }: { sessions?: SessionPlugin; trustProxy?: AdapterTrustProxy } = {},
  ): Promise<void> {
    const t = await createTestApp({
      adapter,
      rateLimit,
      trustProxy,
      controllers: [SessionLoginController, HelloController],
      async configure(app) {
        // As in main.ts: the session middleware or plugin runs before any guard.
        if (sessions !== undefined) await useSessions(app, sessions);
      },
    });
    try {
      await body(t, captureLogs());
    } finally {
      await t.close();
    }
  }

  /** The session middleware or plugins of this adapter, one test each. */
  const sessionPlugins = SESSION_PLUGINS[adapter];

  describe('clientIp and fromSession passed as they are', () => {
    it('authenticate: clientIp limits each client address', () =>
      withApp({ authenticate: clientIp, config }, async (t, logs) => {
        await t.http.get('/api').expect(200);
        await t.http.get('/api').expect(200);
        await t.http.get('/api').expect(429);
        expect(t.backend!.reset({ user: '127.0.0.1', scope: 'path:/api', method: '*' })).toBe(true);
        expect(logs.ours('error')).toEqual([]);
      }));

    it('authenticate: clientIp follows the HTTP adapter’s trust proxy setting', () =>
      withApp(
        { authenticate: clientIp, config },
        async (t) => {
          const from = (address: string) => t.http.get('/api').set('X-Forwarded-For', address);
          await from('203.0.113.7').expect(200);
          await from('203.0.113.7').expect(200);
          await from('203.0.113.7').expect(429);
          await from('198.51.100.9').expect(200);
        },
        { trustProxy: 'loopback' },
      ));

    it.each(sessionPlugins)(
      'authenticate: fromSession limits each session user, with real %s',
      (plugin) =>
        withApp(
          { authenticate: fromSession, config },
          async (t, logs) => {
            const alice = await loggedIn(t, { user: 'alice' });
            const bob = await loggedIn(t, { user: 'bob', group: 'default' });
            await alice.get('/api').expect(200);
            await alice.get('/api').expect(200);
            await alice.get('/api').expect(429);
            await bob.get('/api').expect(200);
            // No user in the session: unidentifiable, the usual 401.
            const anonymous = await t.http.get('/api').expect(401);
            expect(anonymous.body.message).toBe('The session has no user');
            expect(logs.ours('error')).toEqual([]);
          },
          { sessions: plugin },
        ),
    );

    it('authenticate: [headerAuth, clientIp] limits named users by name and the rest by address', () =>
      withApp({ authenticate: [headerAuth, clientIp], config }, async (t) => {
        await t.http.get('/api').set(as('carol')).expect(200);
        await t.http.get('/api').set(as('carol')).expect(200);
        await t.http.get('/api').set(as('carol')).expect(429);
        await t.http.get('/api').expect(200);
        await t.http.get('/api').expect(200);
        await t.http.get('/api').expect(429);
        await t.http.get('/api').set(as('dave')).expect(200);
      }));

    it.each(sessionPlugins)(
      'authenticate: [fromSession, clientIp] falls back to the address for anonymous visitors (%s)',
      (plugin) =>
        withApp(
          { authenticate: [fromSession, clientIp], config },
          async (t) => {
            const alice = await loggedIn(t, { user: 'alice' });
            for (let i = 0; i < 2; i++) await t.http.get('/api').expect(200);
            await t.http.get('/api').expect(429);
            await alice.get('/api').expect(200);
          },
          { sessions: plugin },
        ),
    );

    it.each(sessionPlugins)(
      'work when called with a request inside the user’s own function, awaited or not (%s)',
      (plugin) =>
        withApp(
          {
            authenticate: async (req: RateLimitRequest, context) => {
              const key = req.headers['x-key'];
              if (typeof key === 'string') return { user: `key:${key}` };
              if (req.headers['x-session'] !== undefined) return fromSession(req, context);
              return await clientIp(req, context);
            },
            config,
          },
          async (t) => {
            await t.http.get('/api').set('x-key', 'k1').expect(200);
            await t.http.get('/api').set('x-key', 'k1').expect(200);
            await t.http.get('/api').set('x-key', 'k1').expect(429);
            await t.http.get('/api').expect(200);
            await t.http.get('/api').expect(200);
            await t.http.get('/api').expect(429);
            const alice = await loggedIn(t, { user: 'alice' });
            await alice.get('/api').set('x-session', '1').expect(200);
            expect(t.backend!.reset({ user: 'alice', scope: 'path:/api', method: '*' })).toBe(true);
          },
          { sessions: plugin },
        ),
    );
  });

  describe('clientIp and fromSession called with options', () => {
    it('clientIp({ trustProxy }) walks X-Forwarded-For through the trusted hops', () =>
      withApp({ authenticate: clientIp({ trustProxy: 1 }), config }, async (t) => {
        const from = (address: string) => t.http.get('/api').set('X-Forwarded-For', address);
        await from('203.0.113.7').expect(200);
        await from('198.51.100.1, 203.0.113.7').expect(200);
        await from('203.0.113.7').expect(429);
        await from('198.51.100.9').expect(200);
      }));

    it.each(sessionPlugins)(
      'fromSession({ userKey }) reads the named session field (%s)',
      (plugin) =>
        withApp(
          { authenticate: fromSession({ userKey: 'uid' }), config },
          async (t) => {
            const erin = await loggedIn(t, { uid: 'erin', user: 'ignored' });
            await erin.get('/api').expect(200);
            await erin.get('/api').expect(200);
            await erin.get('/api').expect(429);
            expect(t.backend!.reset({ user: 'erin', scope: 'path:/api', method: '*' })).toBe(true);
          },
          { sessions: plugin },
        ),
    );

    it('still reject a bad option when the helper is called, at start-up', () => {
      expect(() => clientIp({ trust_proxy: 1 } as never)).toThrow(/did you mean "trustProxy"/);
      expect(() => fromSession({ user_key: 'id' } as never)).toThrow(/did you mean "userKey"/);
    });
  });

  /** A factory of auth functions, as users write their own (and forget to call). */
  function apiKeyAuth(header = 'x-api-key') {
    return (req: RateLimitRequest) => {
      const key = req.headers[header];
      if (typeof key !== 'string') throw new EmptyInformation('No API key');
      return { user: `key:${key}` };
    };
  }

  describe('authenticate entries that return something that is not an identity', () => {
    it.each<[string, AuthenticateEntry, RegExp]>([
      [
        'a function (a factory passed uncalled)',
        apiKeyAuth as never,
        /^Invalid rate-limit option "authenticate" \(apiKeyAuth\): it returned a function, so apiKeyAuth makes auth functions: pass apiKeyAuth\(\.\.\.\), the function it returns, not apiKeyAuth\./,
      ],
      [
        'a function, asynchronously',
        async function makeAuth() {
          return () => ({ user: 'x' });
        } as never,
        /"authenticate" \(makeAuth\): it returned a function, so makeAuth makes auth functions/,
      ],
      ['a number', () => 42 as never, /"authenticate": it returned a plain value, not an identity/],
      ['a string', () => 'alice' as never, /a user id alone is \{ user: id \}/],
      [
        'undefined',
        () => undefined as never,
        /it returned undefined or null: return \{ user, group \}/,
      ],
      [
        'an object without user',
        () => ({ id: 'alice' }) as never,
        /it returned an object without a "user" field/,
      ],
      ['an empty array', () => [] as never, /it returned an empty array/],
      [
        'a user that is an object',
        () => ({ user: { id: 'alice' } }) as never,
        /its "user" is neither a string nor a number/,
      ],
      [
        'a group that is a number',
        () => ({ user: 'alice', group: 2 }) as never,
        /its "group" is not a string/,
      ],
    ])(
      '%s: a 401 for every request, one log line naming the option and the fix',
      (_name, entry, message) =>
        withApp({ authenticate: entry, config }, async (t, logs) => {
          for (let i = 0; i < 5; i++) {
            const res = await t.http.get('/api').expect(401);
            expect(res.body.statusCode).toBe(401);
          }
          const errors = logs.ours('error');
          expect(errors).toHaveLength(1);
          expect(errors[0]).toMatch(message);
          expect(errors[0]).toMatch(
            /treated as unidentifiable \(a 401, or the next entry of a chain\)/,
          );
        }),
    );

    it('in a chain: names the entry by its position, and the next entry decides', () =>
      withApp(
        { authenticate: [headerAuth, () => ({ id: 'x' }) as never, clientIp], config },
        async (t, logs) => {
          await t.http.get('/api').set(as('carol')).expect(200);
          for (let i = 0; i < 2; i++) await t.http.get('/api').expect(200);
          await t.http.get('/api').expect(429);
          expect(logs.ours('error')).toEqual([
            expect.stringMatching(
              /^Invalid rate-limit option "authenticate\[1\]": it returned an object without a "user" field/,
            ),
          ]);
        },
      ));

    it('reports each kind of mistake of one entry once', () =>
      withApp(
        {
          authenticate: ((req: RateLimitRequest) =>
            req.headers['kind'] === 'number' ? 7 : undefined) as never,
          config,
        },
        async (t, logs) => {
          for (let i = 0; i < 3; i++) {
            await t.http.get('/api').set('kind', 'number').expect(401);
            await t.http.get('/api').expect(401);
          }
          const errors = logs.ours('error');
          expect(errors).toHaveLength(2);
          expect(errors[0]).toMatch(/plain value/);
          expect(errors[1]).toMatch(/undefined or null/);
        },
      ));

    it('logs nothing for a caller without a user: an empty or absent user, or EmptyInformation', () =>
      withApp(
        {
          authenticate: [
            (req: RateLimitRequest) => ({ user: String(req.headers['user'] ?? '') }),
            () => ({ user: undefined as never }),
            () => [null as never, 'default'] as const,
            () => ({ user: Number.NaN as never }),
            headerAuth,
          ],
          config,
        },
        async (t, logs) => {
          for (let i = 0; i < 3; i++) await t.http.get('/api').expect(401);
          await t.http.get('/api').set(as('carol')).expect(200);
          expect(logs.ours('error')).toEqual([]);
        },
      ));

    it('onAuthError still decides the requests of a misconfigured entry', () =>
      withApp(
        { authenticate: () => 42 as never, onAuthError: () => ({ user: 'fallback' }), config },
        async (t, logs) => {
          await t.http.get('/api').expect(200);
          await t.http.get('/api').expect(200);
          await t.http.get('/api').expect(429);
          expect(logs.ours('error')).toHaveLength(1);
        },
      ));

    it.each<[string, RateLimitModuleOptions['authenticate'], RegExp]>([
      [
        'alone',
        createJwtAuth as never,
        /"authenticate": createJwtAuth makes the auth function; pass createJwtAuth\(secret, algorithms\), not createJwtAuth\./,
      ],
      [
        'in a chain',
        [headerAuth, createJwtAuth as never],
        /"authenticate\[1\]": createJwtAuth makes the auth function/,
      ],
    ])('an uncalled createJwtAuth %s fails at start-up', async (_name, authenticate, message) => {
      const error = await createTestApp({ adapter, rateLimit: { authenticate, config } }).then(
        async (t) => {
          await t.close();
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(RateLimitConfigError);
      expect((error as Error).message).toMatch(message);
    });
  });
});
