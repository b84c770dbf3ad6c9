/**
 * How the caller is identified: functions, resolver instances and classes created through DI,
 * chains of resolvers, onAuthError, and the built-in resolvers (IP, session, JWT) on the real
 * adapter: the user `onBlocked` is told is the one they identified.
 */
import { Injectable, Module, type ExecutionContext } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import {
  AuthResolver,
  createJwtAuth,
  EmptyInformation,
  IpAuthResolver,
  JWT_AUTH_OPTIONS,
  JwtAuthResolver,
  SessionAuthResolver,
  type Identity,
  type RateLimitInfo,
  type RateLimitModuleOptions,
  type RateLimitRequest,
} from 'nestjs-ratelimit';
import request from 'supertest';
import {
  ADAPTERS,
  as,
  createTestApp,
  headerAuth,
  HelloController,
  type TestApp,
} from './support/nest-app.js';
import { SessionLoginController } from './support/session-login.js';
import { SESSION_PLUGINS, useSessions } from './support/sessions.js';

const JWT_SECRET = 'identity-test-secret';
const jwt = new JwtService({ secret: JWT_SECRET });

/** Provides JWT_AUTH_OPTIONS, for a JwtAuthResolver class that the module creates through DI. */
@Module({
  providers: [
    { provide: JWT_AUTH_OPTIONS, useValue: { secret: JWT_SECRET, algorithms: ['HS256'] } },
  ],
  exports: [JWT_AUTH_OPTIONS],
})
class JwtOptionsModule {}

/** The user's own service, which a custom resolver injects. */
@Injectable()
class ApiKeyService {
  private readonly owners = new Map([
    ['key-1', { id: 'alice', plan: 'default' }],
    ['key-2', { id: 'bob', plan: 'pro' }],
  ]);
  lookup(key: string | undefined): { id: string; plan: string } | undefined {
    return key === undefined ? undefined : this.owners.get(key);
  }
}

@Module({ providers: [ApiKeyService], exports: [ApiKeyService] })
class ApiKeyModule {}

@Injectable()
class ApiKeyAuthResolver extends AuthResolver {
  constructor(private readonly keys: ApiKeyService) {
    super();
  }
  resolve(context: ExecutionContext): Identity {
    const key = context.switchToHttp().getRequest<RateLimitRequest>().headers['x-api-key'];
    const owner = this.keys.lookup(typeof key === 'string' ? key : undefined);
    if (!owner) throw new EmptyInformation('Unknown API key');
    return { user: owner.id, group: owner.plan };
  }
}

const config: RateLimitModuleOptions['config'] = {
  '/': [{ minute: 1 }, { group: 'pro', minute: 2 }],
};

describe.each(ADAPTERS)('on %s', (adapter) => {
  async function withApp(
    rateLimit: Parameters<typeof createTestApp>[0],
    body: (t: TestApp) => Promise<void>,
  ): Promise<void> {
    const t = await createTestApp({ ...rateLimit, adapter });
    try {
      await body(t);
    } finally {
      await t.close();
    }
  }

  describe('custom AuthResolver classes', () => {
    it('are created through DI and can inject the application’s services (forRoot imports)', () =>
      withApp(
        { rateLimit: { authenticate: ApiKeyAuthResolver, imports: [ApiKeyModule], config } },
        async (t) => {
          await t.http.get('/').set('x-api-key', 'key-1').expect(200);
          await t.http.get('/').set('x-api-key', 'key-1').expect(429);
          await t.http.get('/').set('x-api-key', 'key-2').expect(200);
          await t.http.get('/').set('x-api-key', 'key-2').expect(200);
          await t.http.get('/').set('x-api-key', 'key-2').expect(429);
          await t.http.get('/').set('x-api-key', 'nope').expect(401);
        },
      ));

    it('use the application’s own provider when it registers the resolver', async () => {
      await withApp(
        {
          imports: [ApiKeyModule],
          providers: [ApiKeyAuthResolver],
          rateLimit: { authenticate: ApiKeyAuthResolver, config },
        },
        async (t) => {
          expect(t.app.get(ApiKeyAuthResolver)).toBeInstanceOf(ApiKeyAuthResolver);
          await t.http.get('/').set('x-api-key', 'key-1').expect(200);
          await t.http.get('/').set('x-api-key', 'key-1').expect(429);
        },
      );
    });
  });

  describe('authenticate functions', () => {
    it('may return a [user, group] pair, synchronously or as a promise', () =>
      withApp(
        {
          rateLimit: {
            authenticate: async (request: RateLimitRequest) =>
              [String(request.headers['user']), 'pro'] as const,
            config,
          },
        },
        async (t) => {
          await t.http.get('/').set(as('u')).expect(200);
          await t.http.get('/').set(as('u')).expect(200);
          await t.http.get('/').set(as('u')).expect(429);
        },
      ));

    it('stringify a numeric user', () =>
      withApp(
        { rateLimit: { authenticate: () => ({ user: 42 as unknown as string }), config } },
        async (t) => {
          await t.http.get('/').expect(200);
          await t.http.get('/').expect(429);
        },
      ));
  });

  describe('chains of resolvers', () => {
    it('try each until one does not throw EmptyInformation (API key, else the header user)', () =>
      withApp(
        {
          rateLimit: {
            authenticate: [ApiKeyAuthResolver, headerAuth],
            imports: [ApiKeyModule],
            config,
          },
        },
        async (t) => {
          await t.http.get('/').set('x-api-key', 'key-2').expect(200);
          await t.http.get('/').set(as('carol')).expect(200);
          await t.http.get('/').set(as('carol')).expect(429);
          // Nobody can identify the caller: the last EmptyInformation is the answer.
          const res = await t.http.get('/').expect(401);
          expect(res.body.message).toBe('No user header');
        },
      ));

    it('stop at an error that is not EmptyInformation', async () => {
      let secondCalled = false;
      await withApp(
        {
          rateLimit: {
            authenticate: [
              () => {
                throw new Error('database down');
              },
              () => {
                secondCalled = true;
                return { user: 'x' };
              },
            ],
            config,
          },
        },
        async (t) => {
          await t.http.get('/').expect(500);
          expect(secondCalled).toBe(false);
        },
      );
    });
  });

  describe('onAuthError', () => {
    it('may return an identity to limit the request under', () =>
      withApp(
        {
          rateLimit: {
            authenticate: headerAuth,
            onAuthError: () => ({ user: 'anonymous' }),
            config,
          },
        },
        async (t) => {
          await t.http.get('/').expect(200);
          await t.http.get('/').expect(429);
          await t.http.get('/').set(as('u')).expect(200);
        },
      ));

    it('may return undefined to let the request through unlimited', () =>
      withApp(
        { rateLimit: { authenticate: headerAuth, onAuthError: () => undefined, config } },
        async (t) => {
          for (let i = 0; i < 3; i++) await t.http.get('/').expect(200);
        },
      ));

    it('receives the error and the execution context', async () => {
      const seen: unknown[] = [];
      await withApp(
        {
          rateLimit: {
            authenticate: headerAuth,
            onAuthError: (error, context) => {
              seen.push(error, context.getType());
              return undefined;
            },
            config,
          },
        },
        async (t) => {
          await t.http.get('/').expect(200);
        },
      );
      expect(seen[0]).toBeInstanceOf(EmptyInformation);
      expect(seen[1]).toBe('http');
    });
  });

  describe('the built-in resolvers on the adapter', () => {
    const config: RateLimitModuleOptions['config'] = {
      '/': [{ minute: 1 }, { group: 'pro', minute: 2 }],
    };

    /** The table of {@link config} for `/api` only, so that `POST /login` is not limited. */
    const apiConfig: RateLimitModuleOptions['config'] = { '^/api': config['/'] };

    /** The identities `onBlocked` was told of, in order. */
    function blockedUsers(): {
      seen: Array<Pick<RateLimitInfo, 'user' | 'group'>>;
      onBlocked: RateLimitModuleOptions['onBlocked'];
    } {
      const seen: Array<Pick<RateLimitInfo, 'user' | 'group'>> = [];
      return { seen, onBlocked: ({ user, group }) => void seen.push({ user, group }) };
    }

    it('IpAuthResolver (the default) tells onBlocked the client address, ignoring an untrusted X-Forwarded-For', async () => {
      const { seen, onBlocked } = blockedUsers();
      await withApp({ rateLimit: { config, onBlocked } }, async (t) => {
        await t.http.get('/').set('X-Forwarded-For', '203.0.113.7').expect(200);
        await t.http.get('/').set('X-Forwarded-For', '198.51.100.9').expect(429);
      });
      expect(seen).toEqual([{ user: '127.0.0.1', group: 'default' }]);
    });

    it("IpAuthResolver follows the adapter's trust-proxy setting: the forwarded client is the user", async () => {
      const { seen, onBlocked } = blockedUsers();
      await withApp(
        { trustProxy: 'loopback', rateLimit: { authenticate: IpAuthResolver, config, onBlocked } },
        async (t) => {
          const from = (address: string) => t.http.get('/').set('X-Forwarded-For', address);
          await from('203.0.113.7').expect(200);
          await from('198.51.100.9').expect(200);
          await from('203.0.113.7').expect(429);
          await t.http.get('/').expect(200); // the proxy itself, without the header
        },
      );
      expect(seen).toEqual([{ user: '203.0.113.7', group: 'default' }]);
    });

    it.each(SESSION_PLUGINS[adapter])(
      'SessionAuthResolver identifies the users of %s',
      async (plugin) => {
        const { seen, onBlocked } = blockedUsers();
        await withApp(
          {
            rateLimit: { authenticate: SessionAuthResolver, config: apiConfig, onBlocked },
            controllers: [SessionLoginController, HelloController],
            configure: (app) => useSessions(app, plugin),
          },
          async (t) => {
            const login = async (fields: Record<string, string>) => {
              const agent = request.agent(t.app.getHttpServer());
              await agent.post('/login').send(fields).expect(204);
              return agent;
            };
            const alice = await login({ user: 'alice', group: 'pro' });
            const bob = await login({ user: 'bob' });
            await alice.get('/api').expect(200);
            await alice.get('/api').expect(200);
            await alice.get('/api').expect(429);
            await bob.get('/api').expect(200);
            await bob.get('/api').expect(429);
            const anonymous = await t.http.get('/api').expect(401);
            expect(anonymous.body.message).toBe('The session has no user');
          },
        );
        expect(seen).toEqual([
          { user: 'alice', group: 'pro' },
          { user: 'bob', group: 'default' },
        ]);
      },
    );

    it('SessionAuthResolver without a session plugin: a 500 (a set-up error), not a 401', () =>
      withApp({ rateLimit: { authenticate: SessionAuthResolver, config } }, async (t) => {
        await t.http.get('/').expect(500);
      }));

    it.each([
      [
        'createJwtAuth(secret, algorithms)',
        () => ({ authenticate: createJwtAuth(JWT_SECRET, ['HS256']) }),
      ],
      [
        'a JwtAuthResolver instance',
        () => ({
          authenticate: new JwtAuthResolver({ secret: JWT_SECRET, algorithms: ['HS256'] }),
        }),
      ],
      [
        'the JwtAuthResolver class, with JWT_AUTH_OPTIONS',
        () => ({ authenticate: JwtAuthResolver, imports: [JwtOptionsModule] }),
      ],
    ] as const)(
      'JWT: %s identifies bearers by their claims; a bad token is a 401',
      async (_name, options) => {
        const { seen, onBlocked } = blockedUsers();
        const carol = await jwt.signAsync({ user: 'carol', group: 'pro' });
        const dave = await jwt.signAsync({ user: 'dave' });
        const forged = await new JwtService({ secret: 'another-secret' }).signAsync({
          user: 'carol',
        });
        await withApp({ rateLimit: { ...options(), config, onBlocked } }, async (t) => {
          const bearer = (token: string) => t.http.get('/').set('Authorization', `Bearer ${token}`);
          await bearer(carol).expect(200);
          await bearer(carol).expect(200);
          await bearer(carol).expect(429);
          await bearer(dave).expect(200);
          await bearer(dave).expect(429);
          for (const res of [
            await bearer(forged),
            await bearer('garbage'),
            await t.http.get('/'),
          ]) {
            expect([res.status, res.body.statusCode]).toEqual([401, 401]);
          }
        });
        expect(seen).toEqual([
          { user: 'carol', group: 'pro' },
          { user: 'dave', group: 'default' },
        ]);
      },
    );
  });
});
