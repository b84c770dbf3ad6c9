/**
 * What `authenticate` accepts: the original's helpers as its users write them (passed as they
 * are, called with options, called with a request inside the user's own function), and entries
 * that return something that is not an identity. Type-checked by `npm run typecheck`, so the
 * assignments below are also the proof that both forms of each helper fit the option's type.
 */
import { jest } from '@jest/globals';
import { Body, Controller, HttpCode, Logger, Post, Req } from '@nestjs/common';
import session from 'express-session';
import request from 'supertest';
import {
  clientIp,
  createJwtAuth,
  fromSession,
  type AuthenticateEntry,
  type AuthFunction,
  type RateLimitModuleOptions,
  type RateLimitRequest,
} from 'nestjs-ratelimit';
import {
  as,
  createTestApp,
  headerAuth,
  HelloController,
  type TestApp,
} from './support/nest-app.js';

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

@Controller()
class LoginController {
  /** Copies the JSON body into the session. */
  @Post('login')
  @HttpCode(204)
  login(@Req() req: { session: Record<string, unknown> }, @Body() body: Record<string, unknown>) {
    Object.assign(req.session, body);
  }
}

async function withApp(
  rateLimit: NonNullable<Parameters<typeof createTestApp>[0]>['rateLimit'],
  body: (t: TestApp) => Promise<void>,
  { sessions = false, trustProxy }: { sessions?: boolean; trustProxy?: unknown } = {},
): Promise<void> {
  const t = await createTestApp({
    rateLimit,
    controllers: [LoginController, HelloController],
    configure(app) {
      if (trustProxy !== undefined)
        app.getHttpAdapter().getInstance().set('trust proxy', trustProxy);
      if (sessions) {
        // As in main.ts: the session middleware runs before any guard.
        app.use(session({ secret: 'forms-test-secret', resave: false, saveUninitialized: false }));
      }
    },
  });
  try {
    await body(t);
  } finally {
    await t.close();
  }
}

/** An agent whose session holds `fields`. */
async function loggedIn(t: TestApp, fields: Record<string, unknown>) {
  const agent = request.agent(t.app.getHttpServer());
  await agent.post('/login').send(fields).expect(204);
  return agent;
}

let errors: ReturnType<typeof jest.spyOn>;
beforeEach(() => {
  errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
});
afterEach(() => errors.mockRestore());

describe('clientIp and fromSession passed as they are', () => {
  it('authenticate: clientIp limits each client address', () =>
    withApp({ authenticate: clientIp, config }, async (t) => {
      await t.http.get('/api').expect(200);
      await t.http.get('/api').expect(200);
      await t.http.get('/api').expect(429);
      expect(t.backend!.reset({ user: '127.0.0.1', scope: 'path:/api', method: '*' })).toBe(true);
      expect(errors).not.toHaveBeenCalled();
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

  it('authenticate: fromSession limits each session user, with real express-session', () =>
    withApp(
      { authenticate: fromSession, config },
      async (t) => {
        const alice = await loggedIn(t, { user: 'alice' });
        const bob = await loggedIn(t, { user: 'bob', group: 'default' });
        await alice.get('/api').expect(200);
        await alice.get('/api').expect(200);
        await alice.get('/api').expect(429);
        await bob.get('/api').expect(200);
        // No user in the session: unidentifiable, the usual 401.
        const anonymous = await t.http.get('/api').expect(401);
        expect(anonymous.body.message).toBe('The session has no user');
        expect(errors).not.toHaveBeenCalled();
      },
      { sessions: true },
    ));

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

  it('authenticate: [fromSession, clientIp] falls back to the address for anonymous visitors', () =>
    withApp(
      { authenticate: [fromSession, clientIp], config },
      async (t) => {
        const alice = await loggedIn(t, { user: 'alice' });
        for (let i = 0; i < 2; i++) await t.http.get('/api').expect(200);
        await t.http.get('/api').expect(429);
        await alice.get('/api').expect(200);
      },
      { sessions: true },
    ));

  it('work when called with a request inside the user’s own function, awaited or not', () =>
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
      { sessions: true },
    ));
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

  it('fromSession({ userKey }) reads the named session field', () =>
    withApp(
      { authenticate: fromSession({ userKey: 'uid' }), config },
      async (t) => {
        const erin = await loggedIn(t, { uid: 'erin', user: 'ignored' });
        await erin.get('/api').expect(200);
        await erin.get('/api').expect(200);
        await erin.get('/api').expect(429);
        expect(t.backend!.reset({ user: 'erin', scope: 'path:/api', method: '*' })).toBe(true);
      },
      { sessions: true },
    ));

  it('still reject a bad option when the helper is called, at start-up', () => {
    expect(() => clientIp({ trust_proxy: 1 } as never)).toThrow(/did you mean "trustProxy"/);
    expect(() => fromSession({ user_key: 'id' } as never)).toThrow(/did you mean "userKey"/);
  });
});
