/**
 * The original asgi-ratelimit test suite (tests/test_core.py, tests/backends/test_simple.py and the
 * shared base scenarios), replayed through a real Nest application on the memory backend, with an
 * injected clock in place of the original's sleeps.
 */
import { Rule, type RateLimitModuleOptions } from 'nestjs-ratelimit';
import { ADAPTERS, as, createTestApp, headerAuth, type TestApp } from './support/nest-app.js';

const BASE_CONFIG: RateLimitModuleOptions['config'] = {
  '/second_limit': [new Rule({ second: 1 }), new Rule({ group: 'admin' })],
  '/minute.*': [new Rule({ minute: 1 }), new Rule({ group: 'admin' })],
  '/block': [new Rule({ second: 1, blockTime: 5 })],
  '/multi-minute': [new Rule({ minute: 2 }), new Rule({ group: 'admin' })],
};

describe.each(ADAPTERS)('on %s', (adapter) => {
  describe('original suite: base scenarios (test_simple)', () => {
    let t: TestApp;
    beforeEach(async () => {
      t = await createTestApp({
        adapter,
        rateLimit: { authenticate: headerAuth, config: BASE_CONFIG },
      });
    });
    afterEach(() => t.close());

    it('does not authenticate a path no pattern matches', async () => {
      await t.http.get('/').expect(200, 'Hello world!');
    });

    it('/second_limit: one per second for default users, unlimited for admins', async () => {
      await t.http.get('/second_limit').set(as('user')).expect(200);
      await t.http.get('/second_limit').set(as('user')).expect(429).expect('retry-after', '1');
      await t.http.get('/second_limit').set(as('admin-user', 'admin')).expect(200);
      t.clock.advance(1000);
      await t.http.get('/second_limit').set(as('user')).expect(200);
    });

    it('/minute_limit: one per minute for default users, unlimited for admins', async () => {
      await t.http.get('/minute_limit').set(as('user')).expect(200);
      await t.http.get('/minute_limit').set(as('user')).expect(429);
      await t.http.get('/minute_limit').set(as('admin-user', 'admin')).expect(200);
    });

    it('/block: exceeding the limit blocks the user for blockTime', async () => {
      await t.http.get('/block').set(as('user')).expect(200);
      await t.http.get('/block').set(as('user')).expect(429).expect('retry-after', '5');
      t.clock.advance(1000);
      await t.http.get('/block').set(as('user')).expect(429);
      await t.http.get('/block').set(as('user')).expect(429);
      t.clock.advance(4000);
      await t.http.get('/block').set(as('user')).expect(200);
    });

    it('/multi-minute: two per minute (base_test_multi)', async () => {
      await t.http.get('/multi-minute').set(as('user')).expect(200);
      await t.http.get('/multi-minute').set(as('user')).expect(200);
      await t.http.get('/multi-minute').set(as('user')).expect(429);
    });
  });

  describe('original suite: test_multiple (all units must pass, a rejected request consumes nothing)', () => {
    it('admits 3 requests under { second: 1, minute: 3 } despite rejected retries', async () => {
      const t = await createTestApp({
        adapter,
        rateLimit: {
          authenticate: headerAuth,
          config: { '/multiple': [new Rule({ second: 1, minute: 3 })] },
        },
      });
      try {
        await t.http.get('/multiple').set(as('user')).expect(200);
        await t.http.get('/multiple').set(as('user')).expect(429);
        t.clock.advance(1000);
        await t.http.get('/multiple').set(as('user')).expect(200);
        await t.http.get('/multiple').set(as('user')).expect(429);
        t.clock.advance(2000);
        await t.http.get('/multiple').set(as('user')).expect(200);
        await t.http.get('/multiple').set(as('user')).expect(429);
        t.clock.advance(1000);
        // The minute pool is spent (3 admitted); only its window ending frees it.
        await t.http.get('/multiple').set(as('user')).expect(429).expect('retry-after', '56');
      } finally {
        await t.close();
      }
    });
  });

  describe('original suite: test_core', () => {
    it('test_on_auth_error_default: no default-group rule means unlimited; auth errors propagate', async () => {
      const t = await createTestApp({
        adapter,
        rateLimit: { authenticate: headerAuth, config: { '/': [new Rule({ group: 'admin' })] } },
      });
      try {
        await t.http.get('/').set(as('test')).expect(200, 'Hello world!');
        // EmptyInformation propagates: a 401, not the original's 500.
        const res = await t.http.get('/').expect(401);
        expect(res.body).toEqual({
          statusCode: 401,
          message: 'No user header',
          error: 'Unauthorized',
        });
      } finally {
        await t.close();
      }
    });

    it('test_on_auth_error_with_handler: onAuthError decides the response', async () => {
      const { UnauthorizedException } = await import('@nestjs/common');
      const t = await createTestApp({
        adapter,
        rateLimit: {
          authenticate: headerAuth,
          config: { '/': [new Rule({ group: 'admin' })] },
          onAuthError: () => {
            throw new UnauthorizedException('Unauthorized access.');
          },
        },
      });
      try {
        await t.http.get('/').set(as('test')).expect(200, 'Hello world!');
        const res = await t.http.get('/').expect(401);
        expect(res.body.message).toBe('Unauthorized access.');
      } finally {
        await t.close();
      }
    });

    it('test_custom_blocked: onBlocked replaces the 429 body', async () => {
      const t = await createTestApp({
        adapter,
        rateLimit: {
          authenticate: headerAuth,
          config: { '/': [new Rule({ second: 1 }), new Rule({ group: 'admin' })] },
          onBlocked: () => 'custom 429 page',
        },
      });
      try {
        await t.http.get('/').set(as('user')).expect(200);
        const res = await t.http.get('/').set(as('user')).expect(429);
        expect(res.text).toBe('custom 429 page');
        expect(res.headers['retry-after']).toBe('1');
      } finally {
        await t.close();
      }
    });

    it('test_rule_zone: rules with the same zone share one counter', async () => {
      const t = await createTestApp({
        adapter,
        rateLimit: {
          authenticate: headerAuth,
          config: {
            '/message': [new Rule({ second: 1, zone: 'common' })],
            '/\\d+': [new Rule({ second: 1, zone: 'common' })],
          },
        },
      });
      try {
        await t.http.get('/10').set(as('user')).expect(200);
        await t.http.get('/message').set(as('user')).expect(429);
      } finally {
        await t.close();
      }
    });

    it('test_rule_method: per-method rules, and a "*" rule shares one counter across methods', async () => {
      const t = await createTestApp({
        adapter,
        rateLimit: {
          authenticate: headerAuth,
          config: {
            '/message': [
              new Rule({ minute: 1, method: 'get' }),
              new Rule({ minute: 2, method: 'post' }),
            ],
            '/towns': [new Rule({ minute: 1 })],
          },
        },
      });
      try {
        await t.http.get('/message').set(as('user')).expect(200);
        await t.http.get('/message').set(as('user')).expect(429);
        // @All() answers 200 to every method.
        await t.http.post('/message').set(as('user')).expect(200);
        await t.http.post('/message').set(as('user')).expect(200);
        await t.http.post('/message').set(as('user')).expect(429);
        await t.http.get('/towns').set(as('user')).expect(200);
        await t.http.get('/towns').set(as('user')).expect(429);
        await t.http.post('/towns').set(as('user')).expect(429);
      } finally {
        await t.close();
      }
    });
  });

  describe('original suite: test_other (admin helpers of the memory backend)', () => {
    it('unblock() and reset() let a blocked user through again', async () => {
      const t = await createTestApp({
        adapter,
        rateLimit: {
          authenticate: headerAuth,
          config: { '/test-remove': [new Rule({ second: 1, blockTime: 50 })] },
        },
      });
      try {
        await t.http.get('/test-remove').set(as('user')).expect(200);
        await t.http.get('/test-remove').set(as('user')).expect(429);
        // Half a second on: the second window is still full, and the user is blocked.
        t.clock.advance(500);
        await t.http.get('/test-remove').set(as('user')).expect(429).expect('retry-after', '50');
        expect(t.backend!.unblock('user')).toBe(true);
        expect(t.backend!.reset({ user: 'user', scope: 'path:/test-remove', method: '*' })).toBe(
          true,
        );
        await t.http.get('/test-remove').set(as('user')).expect(200);
      } finally {
        await t.close();
      }
    });
  });
});
