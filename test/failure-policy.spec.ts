/**
 * The failure policy, for any backend: what a request gets when the backend throws or hangs, that
 * each outage is logged once, that requests do not wait on a dead backend again and again, and
 * that limiting resumes by itself. The backend here is a user-written RateLimitBackend that can
 * be switched to fail; the Redis outage tests (real servers killed, paused, flushed) live in the
 * Redis specs.
 */
import { jest } from '@jest/globals';
import {
  MemoryBackend,
  RateLimitBackend,
  type ConsumeQuery,
  type ConsumeResult,
  type RateLimitCounter,
  type RateLimitModuleOptions,
} from 'nestjs-ratelimit';
import { captureBackendLogs } from './support/backend-logs.js';
import { ADAPTERS, as, createTestApp, headerAuth, type TestApp } from './support/nest-app.js';

/** A backend that works like memory until told to fail, by throwing or by never answering. */
class FlakyBackend extends RateLimitBackend {
  mode: 'ok' | 'throw' | 'hang' = 'ok';
  calls = 0;
  private readonly inner = new MemoryBackend({ sweepIntervalMs: 0 });

  async consume(query: ConsumeQuery): Promise<ConsumeResult> {
    this.calls += 1;
    if (this.mode === 'throw')
      throw new Error('connect ECONNREFUSED 127.0.0.1:6390 (secret detail)');
    if (this.mode === 'hang') return new Promise<ConsumeResult>(() => undefined);
    return this.inner.consume(query);
  }
  unblock(user: string): boolean {
    return this.inner.unblock(user);
  }
  reset(counter: RateLimitCounter): boolean {
    return this.inner.reset(counter);
  }
}

// One capture for both adapters: spying on the Logger twice would leave the second spy
// restored by the first block's afterAll.
const logs = captureBackendLogs();
const { warnings, infos } = logs;
afterAll(() => logs.restore());

describe.each(ADAPTERS)('on %s', (adapter) => {
  describe('failure policy', () => {
    let backend: FlakyBackend;
    let t: TestApp;
    let now: number;

    async function start(options: RateLimitModuleOptions): Promise<void> {
      backend = new FlakyBackend();
      t = await createTestApp({
        adapter,
        rateLimit: {
          authenticate: headerAuth,
          backend,
          backendTimeoutMs: 50,
          config: { '/': [{ minute: 2 }] },
          ...options,
        },
      });
    }

    beforeEach(() => {
      logs.clear();
      now = Date.now();
      // The probe interval is measured on Date.now, which the test moves by hand.
      jest.spyOn(Date, 'now').mockImplementation(() => now);
    });
    afterEach(async () => {
      jest.mocked(Date.now).mockRestore();
      await t.close();
    });

    it('fails open by default: requests pass, one warning per outage, one line on recovery', async () => {
      await start({});
      await t.http.get('/').set(as('u')).expect(200);
      backend.mode = 'throw';
      for (let i = 0; i < 5; i++) {
        const res = await t.http.get('/').set(as('u')).expect(200, 'Hello world!');
        expect(res.headers['retry-after']).toBeUndefined();
      }
      expect(warnings()).toHaveLength(1);
      expect(warnings()[0]).toMatch(
        /backend FlakyBackend failed \(Error: connect ECONNREFUSED.*letting requests through unlimited/,
      );

      backend.mode = 'ok';
      now += 500;
      await t.http.get('/').set(as('u')).expect(200);
      expect(infos()).toHaveLength(1);
      expect(infos()[0]).toMatch(/answers again after/);
      // Limiting resumed: the counter kept its first request, so one more fits.
      await t.http.get('/').set(as('u')).expect(429);
      expect(warnings()).toHaveLength(1);
    });

    it('does not call a failing backend again until the next probe, 500 ms later', async () => {
      await start({});
      backend.mode = 'throw';
      await t.http.get('/').set(as('u')).expect(200);
      const callsAfterFailure = backend.calls;
      for (let i = 0; i < 10; i++) await t.http.get('/').set(as('u')).expect(200);
      expect(backend.calls).toBe(callsAfterFailure);
      now += 500;
      await t.http.get('/').set(as('u')).expect(200);
      expect(backend.calls).toBe(callsAfterFailure + 1);
    });

    it('fails closed with a 503, Retry-After and no backend error text', async () => {
      await start({ failurePolicy: 'closed' });
      backend.mode = 'throw';
      const res = await t.http.get('/').set(as('u')).expect(503).expect('retry-after', '1');
      expect(res.text).not.toMatch(/ECONNREFUSED|secret|6390/);
      expect(res.body).toEqual({
        statusCode: 503,
        message: 'Rate limiting is temporarily unavailable',
        error: 'Service Unavailable',
      });
      expect(warnings()[0]).toMatch(/answering 503/);
    });

    it('falls back to an in-process limiter while the backend is away', async () => {
      await start({ failurePolicy: 'fallback' });
      backend.mode = 'throw';
      await t.http.get('/').set(as('u')).expect(200);
      await t.http.get('/').set(as('u')).expect(200);
      await t.http.get('/').set(as('u')).expect(429).expect('retry-after', '60');
      await t.http.get('/').set(as('other')).expect(200);
    });

    it('bounds the wait for a backend that never answers', async () => {
      await start({ failurePolicy: 'closed', backendTimeoutMs: 100 });
      backend.mode = 'hang';
      const started = performance.now();
      await t.http.get('/').set(as('u')).expect(503);
      const waited = performance.now() - started;
      expect(waited).toBeGreaterThanOrEqual(95);
      expect(waited).toBeLessThan(1000);
      expect(warnings()[0]).toMatch(/did not answer for 100 ms while requests waited on it/);
      // The next requests do not wait again: the outage is known until the next probe.
      const again = performance.now();
      await t.http.get('/').set(as('u')).expect(503);
      expect(performance.now() - again).toBeLessThan(95);
    });

    it.each<[string, RateLimitModuleOptions, RegExp]>([
      [
        'an unknown policy',
        { failurePolicy: 'ignore' as never },
        /"failurePolicy": expected 'open', 'closed' or 'fallback'/,
      ],
      [
        'a zero timeout',
        { backendTimeoutMs: 0 },
        /"backendTimeoutMs": expected a number of milliseconds above 0/,
      ],
      [
        'a fallback backend without the fallback policy',
        { fallbackBackend: new MemoryBackend() },
        /"fallbackBackend": is only used with failurePolicy: 'fallback'/,
      ],
    ])('rejects %s at start-up', async (_name, options, message) => {
      await expect(createTestApp({ adapter, rateLimit: { ...options } })).rejects.toThrow(message);
      t = await createTestApp({ adapter });
    });
  });
});
