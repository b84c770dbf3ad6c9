import type { NestExpressApplication } from '@nestjs/platform-express';
import session from 'express-session';
import request from 'supertest';
import { expectInvalidOption } from '../../test/support/config-errors.js';
import { askBothForms, createResolverProbe } from '../../test/support/resolver-probe.js';
import { SessionLoginController } from '../../test/support/session-login.js';
import { EmptyInformation } from './empty-information.js';
import type { RateLimitRequest } from './identity.js';
import {
  SESSION_AUTH_OPTIONS,
  SessionAuthResolver,
  fromSession,
  type SessionAuthOptions,
} from './session.auth-resolver.js';

// ---------------------------------------------------------------------------------------------
// A real Nest app with real express-session: /login stores fields in the session, /class and
// /function answer with what the two forms of the resolver say.

function createApp({
  options,
  withSession = true,
}: { options?: SessionAuthOptions; withSession?: boolean } = {}) {
  return createResolverProbe({
    resolver: SessionAuthResolver,
    authenticate: fromSession(options),
    providers: options ? [{ provide: SESSION_AUTH_OPTIONS, useValue: options }] : [],
    controllers: [SessionLoginController],
    configure(app) {
      if (withSession) {
        // As a user does it in main.ts: middleware registered before the guards ever run.
        app.use(
          session({ secret: 'session-test-secret', resave: false, saveUninitialized: false }),
        );
      }
    },
  });
}

/** Both forms must give the same status and body. */
function whoAmI(agent: ReturnType<typeof request.agent>, expectedStatus: number) {
  return askBothForms<Record<string, unknown>>(agent, expectedStatus);
}

describe('SessionAuthResolver with real express-session', () => {
  let app: NestExpressApplication;
  afterEach(() => app?.close());

  async function loggedIn(fields: Record<string, unknown>) {
    const agent = request.agent(app.getHttpServer());
    await agent.post('/login').send(fields).expect(204);
    return agent;
  }

  it('identifies { user } as (user, default)', async () => {
    app = await createApp();
    const agent = await loggedIn({ user: 'user-id' });
    expect(await whoAmI(agent, 200)).toEqual({ user: 'user-id', group: 'default' });
  });

  it('identifies { user, group } as (user, group)', async () => {
    app = await createApp();
    const agent = await loggedIn({ user: 'other-user-id', group: 'group-name' });
    expect(await whoAmI(agent, 200)).toEqual({ user: 'other-user-id', group: 'group-name' });
  });

  it('stringifies a numeric user id', async () => {
    app = await createApp();
    const agent = await loggedIn({ user: 42 });
    expect(await whoAmI(agent, 200)).toEqual({ user: '42', group: 'default' });
  });

  it('gives a 401 EmptyInformation for a session without a user', async () => {
    app = await createApp();
    const body = await whoAmI(request.agent(app.getHttpServer()), 401);
    expect(body).toEqual({
      statusCode: 401,
      error: 'Unauthorized',
      message: 'The session has no user',
    });
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    ['an empty user', { user: '' }, /no user/],
    ['a null user', { user: null }, /no user/],
    ['an object user', { user: { id: 1 } }, /"user" is not a string or number/],
    ['a boolean user', { user: true }, /"user" is not a string or number/],
    ['a numeric group', { user: 'u', group: 7 }, /"group" is not a non-empty string/],
    ['a null group', { user: 'u', group: null }, /"group" is not a non-empty string/],
    ['an empty group', { user: 'u', group: '' }, /"group" is not a non-empty string/],
    ['a list group', { user: 'u', group: ['a'] }, /"group" is not a non-empty string/],
  ])('gives a 401 EmptyInformation for %s', async (_name, fields, message) => {
    app = await createApp();
    const body = await whoAmI(await loggedIn(fields), 401);
    expect(body.message).toMatch(message);
  });

  it('reads other fields with userKey and groupKey (SESSION_AUTH_OPTIONS for the class)', async () => {
    app = await createApp({ options: { userKey: 'accountId', groupKey: 'plan' } });
    const agent = await loggedIn({ accountId: 'acc-1', plan: 'pro', user: 'ignored' });
    expect(await whoAmI(agent, 200)).toEqual({ user: 'acc-1', group: 'pro' });
  });

  it('fails with a 500 (a set-up error, not a 401) without the session middleware', async () => {
    app = await createApp({ withSession: false });
    await whoAmI(request.agent(app.getHttpServer()), 500);
  });
});

describe('SessionAuthResolver and fromSession', () => {
  it('explain how to register a session middleware or plugin when request.session is missing', () => {
    const req = { headers: {} } as RateLimitRequest;
    for (const identify of [
      () => new SessionAuthResolver().identify(req),
      () => fromSession()(req, undefined as never),
    ]) {
      expect(identify).toThrow(/express-session/);
      expect(identify).toThrow(/app\.use\(session\(/);
      expect(identify).toThrow(
        /@fastify\/secure-session, e\.g\. await app\.register\(secureSession/,
      );
      expect(identify).toThrow(/@fastify\/session after @fastify\/cookie/);
      expect(identify).toThrow(/before the rate-limit guard/);
      try {
        identify();
      } catch (error) {
        expect(error).not.toBeInstanceOf(EmptyInformation);
      }
    }
  });

  it('work on a plain session object', () => {
    const req = { session: { user: 'u', group: 'g' } };
    expect(new SessionAuthResolver().identify(req)).toEqual({ user: 'u', group: 'g' });
  });

  it.each<[string, unknown, RegExp]>([
    ['an empty userKey', { userKey: '' }, /"userKey".*non-empty/],
    ['a numeric groupKey', { groupKey: 1 }, /"groupKey".*non-empty/],
    ['an unknown option', { user_key: 'id' }, /"user_key".*did you mean "userKey"/],
    ['options that are not an object', 'user', /"options".*must be an object/],
  ])('reject %s with RateLimitConfigError', (_name, options, message) => {
    for (const create of [
      () => new SessionAuthResolver(options as SessionAuthOptions),
      () => fromSession(options as SessionAuthOptions),
    ]) {
      expectInvalidOption(create, message);
    }
  });
});
