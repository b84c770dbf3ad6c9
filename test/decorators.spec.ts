/**
 * @RateLimit() and @SkipRateLimit(): precedence (handler, then class, then the pattern table),
 * fall-through, per-handler counters.
 */
import { Controller, Get, Post } from '@nestjs/common';
import { RateLimit, RateLimitConfigError, SkipRateLimit } from 'nestjs-ratelimit';
import { ADAPTERS, as, createTestApp, headerAuth, type TestApp } from './support/nest-app.js';

@RateLimit({ minute: 2 }, { group: 'admin' })
@Controller('towns')
class TownsController {
  @Get()
  list(): string {
    return 'list';
  }

  @Get('other')
  other(): string {
    return 'other';
  }

  @RateLimit({ minute: 1 })
  @Get('strict')
  strict(): string {
    return 'strict';
  }

  @RateLimit({ group: 'vip', minute: 100 })
  @Post('vip')
  vip(): string {
    return 'vip';
  }

  @SkipRateLimit()
  @Get('free')
  free(): string {
    return 'free';
  }
}

@SkipRateLimit()
@Controller('health')
class HealthController {
  @Get()
  check(): string {
    return 'ok';
  }

  @SkipRateLimit(false)
  @Get('deep')
  deep(): string {
    return 'deep';
  }
}

describe.each(ADAPTERS)('on %s', (adapter) => {
  describe('decorators', () => {
    let t: TestApp;
    beforeEach(async () => {
      t = await createTestApp({
        adapter,
        controllers: [TownsController, HealthController],
        rateLimit: {
          authenticate: headerAuth,
          config: { '/': [{ minute: 3 }, { group: 'guest', minute: 1 }] },
        },
      });
    });
    afterEach(() => t.close());

    it('applies the class rule, counting per handler', async () => {
      await t.http.get('/towns').set(as('u')).expect(200);
      await t.http.get('/towns').set(as('u')).expect(200);
      await t.http.get('/towns').set(as('u')).expect(429);
      // Another handler of the same class has its own counter.
      await t.http.get('/towns/other').set(as('u')).expect(200);
    });

    it('lets a handler rule override the class rule', async () => {
      await t.http.get('/towns/strict').set(as('u')).expect(200);
      await t.http.get('/towns/strict').set(as('u')).expect(429);
    });

    it('falls through from the handler list to the class list for another group', async () => {
      // The handler list only has a 'vip' rule: an admin falls to the class list (unlimited).
      for (let i = 0; i < 5; i++)
        await t.http.post('/towns/vip').set(as('boss', 'admin')).expect(201);
      // A default user falls through to the class list: 2 per minute.
      for (let i = 0; i < 2; i++) await t.http.post('/towns/vip').set(as('u')).expect(201);
      await t.http.post('/towns/vip').set(as('u')).expect(429);
      // A guest has no decorator rule at all and falls through to the pattern table: 1 per minute.
      await t.http.post('/towns/vip').set(as('g', 'guest')).expect(201);
      await t.http.post('/towns/vip').set(as('g', 'guest')).expect(429);
    });

    it('exempts a handler with @SkipRateLimit() and does not identify the caller', async () => {
      for (let i = 0; i < 5; i++) await t.http.get('/towns/free').expect(200);
    });

    it('exempts a class, and @SkipRateLimit(false) re-enables one handler', async () => {
      for (let i = 0; i < 5; i++) await t.http.get('/health').expect(200);
      for (let i = 0; i < 3; i++) await t.http.get('/health/deep').set(as('u')).expect(200);
      await t.http.get('/health/deep').set(as('u')).expect(429);
    });
  });
});

describe('@RateLimit() validation', () => {
  it('fails when the decorator is applied with a bad rule, naming the field', () => {
    expect(() => RateLimit({ minute: -1 })).toThrow(RateLimitConfigError);
    expect(() => RateLimit({ minute: 1 }, { block_time: 5 } as never)).toThrow(
      /@RateLimit\(\) rule 2.*"block_time".*did you mean "blockTime"/,
    );
  });

  it('checks the window, algorithm, burst and cost of a decorator rule when it is applied', () => {
    expect(() => RateLimit({ limit: 5, window: '15 minutes' })).toThrow(
      /^Invalid rate-limit rule \(@RateLimit\(\) rule 1\): "window" must be a number of seconds .*got "15 minutes"; did you mean '15m'\?$/,
    );
    expect(() => RateLimit({ group: 'a' }, { minute: 5, algorithm: 'sliding' as never })).toThrow(
      /^Invalid rate-limit rule \(@RateLimit\(\) rule 2\): "algorithm" must be one of/,
    );
    expect(() => RateLimit({ second: 1, minute: 10, burst: 5 })).toThrow(
      /^Invalid rate-limit rule \(@RateLimit\(\) rule 1\): "burst" is the size of one token bucket, and this rule has 2 units \(second, minute\)/,
    );
    expect(() => RateLimit({ minute: 5, cost: 0 })).toThrow(
      /^Invalid rate-limit rule \(@RateLimit\(\) rule 1\): "cost" must be a whole number of at least 1/,
    );
  });
});
