/**
 * How the caller is identified: functions, resolver instances and classes created through DI,
 * chains of resolvers, and onAuthError.
 */
import { Injectable, Module, type ExecutionContext } from '@nestjs/common';
import {
  AuthResolver,
  EmptyInformation,
  type Identity,
  type RateLimitModuleOptions,
  type RateLimitRequest,
} from 'nestjs-ratelimit';
import { as, createTestApp, headerAuth, type TestApp } from './support/nest-app.js';

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

async function withApp(
  rateLimit: Parameters<typeof createTestApp>[0],
  body: (t: TestApp) => Promise<void>,
): Promise<void> {
  const t = await createTestApp(rateLimit);
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
        rateLimit: { authenticate: headerAuth, onAuthError: () => ({ user: 'anonymous' }), config },
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
