/**
 * Each test pins one bug of asgi-ratelimit that this port fixes (original-behaviour.md section 8),
 * through a real Nest application.
 */
import { jest } from '@jest/globals';
import { JwtService } from '@nestjs/jwt';
import { createJwtAuth, MemoryBackend, type RateLimitRequest } from 'nestjs-ratelimit';
import { ADAPTERS, as, createTestApp, headerAuth, type TestApp } from './support/nest-app.js';

describe.each(ADAPTERS)('on %s', (adapter) => {
  async function withApp(
    options: Parameters<typeof createTestApp>[0],
    body: (t: TestApp) => Promise<void>,
  ): Promise<void> {
    const t = await createTestApp({ ...options, adapter });
    try {
      await body(t);
    } finally {
      await t.close();
    }
  }

  describe('fixed bugs of the original', () => {
    it('gives no free requests at the end of a window (the final-tick bypass)', () =>
      withApp(
        { rateLimit: { authenticate: headerAuth, config: { '/s': [{ second: 1 }] } } },
        async (t) => {
          await t.http.get('/s').set(as('u')).expect(200);
          t.clock.advance(999);
          await t.http.get('/s').set(as('u')).expect(429).expect('retry-after', '1');
          t.clock.advance(1);
          await t.http.get('/s').set(as('u')).expect(200);
          await t.http.get('/s').set(as('u')).expect(429);
        },
      ));

    it('counts Retry-After down instead of repeating the full window', () =>
      withApp(
        { rateLimit: { authenticate: headerAuth, config: { '/m': [{ minute: 1 }] } } },
        async (t) => {
          await t.http.get('/m').set(as('u')).expect(200);
          await t.http.get('/m').set(as('u')).expect(429).expect('retry-after', '60');
          t.clock.advance(2200);
          await t.http.get('/m').set(as('u')).expect(429).expect('retry-after', '58');
          t.clock.advance(57_700);
          // 100 ms left: still at least 1, never 0.
          await t.http.get('/m').set(as('u')).expect(429).expect('retry-after', '1');
        },
      ));

    it('reports the longest wait among exhausted units, not the first unit', () =>
      withApp(
        { rateLimit: { authenticate: headerAuth, config: { '/sm': [{ second: 1, minute: 2 }] } } },
        async (t) => {
          await t.http.get('/sm').set(as('u')).expect(200);
          t.clock.advance(1000);
          await t.http.get('/sm').set(as('u')).expect(200);
          t.clock.advance(1000);
          await t.http.get('/sm').set(as('u')).expect(429).expect('retry-after', '58');
        },
      ));

    it('consumes nothing for rejected requests, in any unit', () =>
      withApp(
        { rateLimit: { authenticate: headerAuth, config: { '/x': [{ second: 1, minute: 2 }] } } },
        async (t) => {
          await t.http.get('/x').set(as('u')).expect(200);
          for (let i = 0; i < 5; i++) await t.http.get('/x').set(as('u')).expect(429);
          t.clock.advance(1000);
          await t.http.get('/x').set(as('u')).expect(200);
        },
      ));

    it('denies every request under a limit of 0, with the unit window as Retry-After', () =>
      withApp(
        { rateLimit: { authenticate: headerAuth, config: { '/zero': [{ minute: 0 }] } } },
        async (t) => {
          await t.http.get('/zero').set(as('u')).expect(429).expect('retry-after', '60');
          t.clock.advance(120_000);
          await t.http.get('/zero').set(as('u')).expect(429);
        },
      ));

    it('keeps one sweep timer per backend, not one per key or per hit, and stops it on shutdown', async () => {
      // Unref'd timers are not listed by process.getActiveResourcesInfo() on Node 20, so count the
      // timers the backend creates by watching setInterval/setTimeout themselves.
      const intervals = jest.spyOn(globalThis, 'setInterval');
      const timeouts = jest.spyOn(globalThis, 'setTimeout');
      const cleared = jest.spyOn(globalThis, 'clearInterval');
      try {
        const backend = new MemoryBackend({ sweepIntervalMs: 60_000 });
        await withApp(
          { rateLimit: { authenticate: headerAuth, backend, config: { '/': [{ minute: 100 }] } } },
          async (t) => {
            const timeoutsBefore = timeouts.mock.calls.length;
            for (let i = 0; i < 50; i++)
              await t.http
                .get(`/k/${i}`)
                .set(as(`user-${i}`))
                .expect(200);
            for (let i = 0; i < 20; i++) await t.http.get('/k/0').set(as('user-0')).expect(200);
            const sweepTimers = intervals.mock.calls.filter(([, ms]) => ms === 60_000);
            expect(sweepTimers).toHaveLength(1);
            // HTTP itself may arm timeouts; none of them is the backend's (its interval is 60 s).
            expect(
              timeouts.mock.calls.slice(timeoutsBefore).filter(([, ms]) => (ms ?? 0) >= 1000),
            ).toHaveLength(0);
          },
        );
        // Closing the app closes the backend, which clears its one timer.
        const timer = intervals.mock.results.find(
          (r, i) => intervals.mock.calls[i]![1] === 60_000,
        )!.value;
        expect(cleared).toHaveBeenCalledWith(timer);
      } finally {
        intervals.mockRestore();
        timeouts.mockRestore();
        cleared.mockRestore();
      }
    });

    it('calls authenticate once per request, even when patterns fall through', async () => {
      let calls = 0;
      const counting = (request: RateLimitRequest) => {
        calls += 1;
        return headerAuth(request);
      };
      await withApp(
        {
          rateLimit: {
            authenticate: counting,
            config: new Map([
              ['/a', [{ group: 'admin', second: 1 }]],
              ['/', [{ second: 5, method: 'GET' }]],
            ]),
          },
        },
        async (t) => {
          await t.http.get('/a/x').set(as('u')).expect(200);
          expect(calls).toBe(1);
          await t.http.get('/nothing-matches-here-either').set(as('u')).expect(200);
          expect(calls).toBe(2);
        },
      );
    });

    it('does not authenticate when no pattern or decorator applies', async () => {
      let calls = 0;
      await withApp(
        {
          rateLimit: {
            authenticate: (request) => {
              calls += 1;
              return headerAuth(request);
            },
            config: { '/limited': [{ second: 1 }] },
          },
        },
        async (t) => {
          await t.http.get('/free').expect(200);
          expect(calls).toBe(0);
        },
      );
    });

    // A malformed escape never reaches a guard through Express's router (it answers 400 itself);
    // lib/http/request-path.spec.ts pins that requestPath() keeps such a path as it came.
    it('matches patterns against the percent-decoded path', () =>
      withApp(
        { rateLimit: { authenticate: headerAuth, config: { '/caf\u00e9/\\d': [{ minute: 1 }] } } },
        async (t) => {
          await t.http.get('/caf%C3%A9/1').set(as('u')).expect(200);
          await t.http.get('/caf%c3%a9/1').set(as('u')).expect(429);
          await t.http.get('/caf%C3%A9/2').set(as('u')).expect(200);
        },
      ));

    it('anchors string patterns at the start of the path only (re.match)', () =>
      withApp(
        { rateLimit: { authenticate: headerAuth, config: { '/towns': [{ minute: 1 }] } } },
        async (t) => {
          await t.http.get('/x/towns').set(as('u')).expect(200);
          await t.http.get('/x/towns').set(as('u')).expect(200);
          await t.http.get('/towns/1?page=2').set(as('u')).expect(200);
          await t.http.get('/towns/1').set(as('u')).expect(429);
        },
      ));

    it('ignores spoofed forwarded headers from an untrusted peer (default IP identity)', () =>
      withApp({ rateLimit: { config: { '/ip': [{ minute: 1 }] } } }, async (t) => {
        await t.http
          .get('/ip')
          .set('X-Forwarded-For', '203.0.113.1')
          .set('X-Real-IP', '203.0.113.1')
          .expect(200);
        await t.http
          .get('/ip')
          .set('X-Forwarded-For', '203.0.113.2')
          .set('X-Real-IP', '203.0.113.2')
          .expect(429);
      }));

    it('answers bad JWTs with 401, never 500', async () => {
      const secret = 'test-key';
      await withApp(
        {
          rateLimit: {
            authenticate: createJwtAuth(secret, ['HS256']),
            config: { '/': [{ minute: 10 }] },
          },
        },
        async (t) => {
          const forged = await new JwtService({ secret: 'other-key' }).signAsync({ user: 'u' });
          const expired = await new JwtService({ secret }).signAsync(
            { user: 'u' },
            { expiresIn: -10 },
          );
          const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from('{"user":"u"}').toString('base64url')}.`;
          for (const header of [
            undefined,
            'Bearer',
            'Bearer garbage',
            `Bearer ${forged}`,
            `Bearer ${expired}`,
            `Bearer ${none}`,
            'Basic dTpw',
          ]) {
            const req = t.http.get('/');
            if (header !== undefined) req.set('Authorization', header);
            await req.expect(401);
          }
          const good = await new JwtService({ secret }).signAsync({ user: 'u' });
          await t.http.get('/').set('Authorization', `bearer  ${good}`).expect(200);
        },
      );
    });

    it('never limits a user of an unknown group silently through a non-string group', () =>
      withApp(
        {
          rateLimit: {
            authenticate: () => ({ user: 'u', group: ['admin'] as unknown as string }),
            config: { '/': [{ minute: 1 }] },
          },
        },
        async (t) => {
          await t.http.get('/').expect(401);
        },
      ));
  });
});
