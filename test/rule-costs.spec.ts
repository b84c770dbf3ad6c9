/**
 * What the module sends the backend for the rule fields of issue 14 (algorithm, burst, cost, a
 * custom window), and what happens to a request whose cost function fails: never a 500, one
 * warning per rule, and the failure policy decides, as during a backend outage.
 */
import { Controller, Get, type Type } from '@nestjs/common';
import type {
  CostFunction,
  FailurePolicy,
  RateLimitModuleOptions,
  RateLimitRequest,
} from 'nestjs-ratelimit';
import { MemoryBackend, RateLimit } from 'nestjs-ratelimit';
import { captureLogs } from './support/captured-logs.js';
import {
  ADAPTERS,
  as,
  createTestApp,
  headerAuth,
  type AdapterName,
  type TestApp,
} from './support/nest-app.js';
import { RecordingBackend } from './support/recording-backend.js';

/** The request cost of the README: the `cost` header, as a number. */
const headerCost: CostFunction = (request) => Number(request.headers['cost']);

@Controller('reports')
class ReportsController {
  @RateLimit({ hour: 100, cost: 10, algorithm: 'token-bucket', burst: 30 })
  @Get()
  report(): string {
    return 'report';
  }
}

describe.each(ADAPTERS)('on %s', (adapter: AdapterName) => {
  async function withApp(
    options: RateLimitModuleOptions,
    body: (t: TestApp) => Promise<void>,
    controllers?: Type[],
  ): Promise<void> {
    const t = await createTestApp({
      adapter,
      rateLimit: { authenticate: headerAuth, ...options },
      ...(controllers ? { controllers } : {}),
    });
    try {
      await body(t);
    } finally {
      await t.close();
    }
  }

  describe('the query', () => {
    it('is today’s for a rule that leaves algorithm, burst and cost unset', async () => {
      const backend = new RecordingBackend();
      await withApp({ backend, config: { '/': [{ minute: 5 }] } }, async (t) => {
        await t.http.get('/').set(as('u')).expect(200);
        expect(backend.queries).toHaveLength(1);
        const [query] = backend.queries;
        expect(query).toEqual({
          counter: { user: 'u', scope: 'path:/', method: '*' },
          limits: [{ unit: 'minute', limit: 5, windowMs: 60_000 }],
          blockMs: 0,
        });
        expect([query!.algorithm, query!.burst, query!.cost]).toEqual([
          undefined,
          undefined,
          undefined,
        ]);
      });
    });

    it('carries the rule’s algorithm, burst, constant cost and custom window', async () => {
      const backend = new RecordingBackend();
      await withApp(
        {
          backend,
          config: {
            '/': [{ limit: 5, window: '15m', algorithm: 'token-bucket', burst: 2, cost: 3 }],
          },
        },
        async (t) => {
          await t.http.get('/').set(as('u')).expect(200);
          expect(backend.queries).toEqual([
            {
              counter: { user: 'u', scope: 'path:/', method: '*' },
              limits: [{ unit: 'window', limit: 5, windowMs: 900_000 }],
              blockMs: 0,
              algorithm: 'token-bucket',
              burst: 2,
              cost: 3,
            },
          ]);
        },
      );
    });

    it('is announced at start-up: every limited rule’s units reach knowUnits() before a request', async () => {
      const backend = new RecordingBackend();
      await withApp(
        {
          backend,
          config: {
            '/free': [{ group: 'admin' }],
            '/': [{ limit: 5, window: '15m' }, { hour: 50 }],
          },
        },
        async () => {
          expect(backend.queries).toEqual([]);
          expect(backend.knownUnits).toEqual(
            expect.arrayContaining([
              [{ unit: 'window', limit: 5, windowMs: 900_000 }],
              [{ unit: 'hour', limit: 50, windowMs: 3_600_000 }],
              [{ unit: 'hour', limit: 100, windowMs: 3_600_000 }], // ReportsController's decorator
            ]),
          );
          expect(backend.knownUnits).toHaveLength(3); // not the unlimited rule
        },
        [ReportsController],
      );
    });

    it('carries what a decorator rule sets', async () => {
      const backend = new RecordingBackend();
      await withApp(
        { backend },
        async (t) => {
          await t.http.get('/reports').set(as('u')).expect(200);
          expect(backend.queries).toEqual([
            expect.objectContaining({ algorithm: 'token-bucket', burst: 30, cost: 10 }),
          ]);
        },
        [ReportsController],
      );
    });

    it('carries what the cost function says, called with the request and the identity', async () => {
      const backend = new RecordingBackend();
      const calls: [string | string[] | undefined, unknown][] = [];
      const cost = (request: RateLimitRequest, identity: { user: string; group: string }) => {
        calls.push([request.headers['cost'], identity]);
        return Number(request.headers['cost']);
      };
      await withApp(
        { backend, config: { '/': [{ minute: 100, cost, group: 'staff' }] } },
        async (t) => {
          await t.http
            .get('/')
            .set({ ...as('u', 'staff'), cost: '10' })
            .expect(200);
          await t.http
            .get('/')
            .set({ ...as('u', 'staff'), cost: '1' })
            .expect(200);
          expect(backend.queries.map((query) => query.cost)).toEqual([10, 1]);
          expect(calls).toEqual([
            ['10', { user: 'u', group: 'staff' }],
            ['1', { user: 'u', group: 'staff' }],
          ]);
        },
      );
    });
  });

  describe('decisions of the memory backend', () => {
    @Controller()
    class CatalogueController {
      @RateLimit({ hour: 100, zone: 'catalogue', cost: 10 })
      @Get('report')
      report(): string {
        return 'report';
      }

      @RateLimit({ hour: 100, zone: 'catalogue', cost: 1 })
      @Get('search')
      search(): string {
        return 'found';
      }
    }

    it('draws a report (10) and a search (1) from one pool, and rejects a report that no longer fits', () =>
      withApp(
        { headers: 'draft-10' },
        async (t) => {
          for (let i = 0; i < 9; i++) await t.http.get('/report').set(as('u')).expect(200);
          let res = await t.http.get('/search').set(as('u')).expect(200);
          expect(res.headers['ratelimit']).toBe('"hour";r=9;t=3600');
          // 91 used: a report (10) does not fit and takes nothing, 9 searches still do.
          res = await t.http.get('/report').set(as('u')).expect(429);
          expect(res.headers['retry-after']).toBe('3600');
          for (let i = 0; i < 9; i++) await t.http.get('/search').set(as('u')).expect(200);
          await t.http.get('/search').set(as('u')).expect(429);
          await t.http.get('/search').set(as('other')).expect(200);
        },
        [CatalogueController],
      ));

    it('admits a burst, then a steady rate, with a token bucket', () =>
      withApp(
        { config: { '/': [{ second: 2, algorithm: 'token-bucket', burst: 4 }] } },
        async (t) => {
          for (let i = 0; i < 4; i++) await t.http.get('/').set(as('u')).expect(200);
          const res = await t.http.get('/').set(as('u')).expect(429);
          expect(res.headers['retry-after']).toBe('1'); // 500 ms to the next token
          t.clock.advance(500);
          await t.http.get('/').set(as('u')).expect(200);
          await t.http.get('/').set(as('u')).expect(429);
          t.clock.advance(1_000);
          await t.http.get('/').set(as('u')).expect(200);
          await t.http.get('/').set(as('u')).expect(200);
          await t.http.get('/').set(as('u')).expect(429);
        },
      ));

    it('counts with the cost function, per request', () =>
      withApp({ config: { '/': [{ minute: 10, cost: headerCost }] } }, async (t) => {
        await t.http
          .get('/')
          .set({ ...as('u'), cost: '7' })
          .expect(200);
        await t.http
          .get('/')
          .set({ ...as('u'), cost: '4' })
          .expect(429);
        await t.http
          .get('/')
          .set({ ...as('u'), cost: '3' })
          .expect(200);
        // More than the limit can ever hold: rejected with the unit's window.
        const res = await t.http
          .get('/')
          .set({ ...as('v'), cost: '11' })
          .expect(429);
        expect(res.headers['retry-after']).toBe('60');
      }));
  });

  describe('a cost function that fails', () => {
    it('lets the request through under failurePolicy open, with one warning until it recovers', async () => {
      const backend = new RecordingBackend();
      await withApp(
        { backend, config: { '/': [{ minute: 100, cost: headerCost }] } },
        async (t) => {
          const logs = captureLogs();
          await t.http
            .get('/')
            .set({ ...as('u'), cost: 'ten' })
            .expect(200);
          await t.http
            .get('/')
            .set({ ...as('u'), cost: '0' })
            .expect(200);
          expect(backend.queries).toHaveLength(0);
          expect(logs.ours('warn')).toEqual([
            'The cost function of rate-limit rule pattern "/", rule 1 returned NaN; it must ' +
              'return a whole number of at least 1 (such as 1 for a search, 10 for a report). ' +
              "Until it does, letting that rule's requests through unlimited, as during a " +
              'backend outage.',
          ]);
          await t.http
            .get('/')
            .set({ ...as('u'), cost: '2' })
            .expect(200);
          expect(backend.queries.map((query) => query.cost)).toEqual([2]);
          await t.http
            .get('/')
            .set({ ...as('u'), cost: '2.5' })
            .expect(200);
          expect(logs.ours('warn')).toHaveLength(2);
          expect(logs.ours('warn')[1]).toMatch(/ returned 2\.5; it must return a whole number/);
          expect(backend.queries).toHaveLength(1);
        },
      );
    });

    it('answers 503 under failurePolicy closed, naming a decorator rule in the warning', async () => {
      const backend = new RecordingBackend();
      @Controller('search')
      class SearchController {
        @RateLimit({
          minute: 10,
          cost: () => {
            throw new Error('no plan for tenant');
          },
        })
        @Get()
        search(): string {
          return 'found';
        }
      }
      await withApp(
        { backend, failurePolicy: 'closed' },
        async (t) => {
          const logs = captureLogs();
          const res = await t.http.get('/search').set(as('u')).expect(503);
          expect(res.headers['retry-after']).toBe('1');
          await t.http.get('/search').set(as('u')).expect(503);
          expect(backend.queries).toHaveLength(0);
          expect(logs.ours('warn')).toEqual([
            'The cost function of rate-limit rule @RateLimit() rule 1 on SearchController.search ' +
              'threw an error (no plan for tenant); it must return a whole number of at least 1 ' +
              '(such as 1 for a search, 10 for a report). Until it does, answering 503 to that ' +
              "rule's requests, as during a backend outage.",
          ]);
        },
        [SearchController],
      );
    });

    it('is decided by the in-process limiter under failurePolicy fallback', async () => {
      const backend = new RecordingBackend();
      const fallbackBackend = new MemoryBackend({ sweepIntervalMs: 0 });
      const policy: FailurePolicy = 'fallback';
      await withApp(
        {
          backend,
          failurePolicy: policy,
          fallbackBackend,
          config: { '/': [{ minute: 1, cost: () => -1 }] },
        },
        async (t) => {
          const logs = captureLogs();
          await t.http.get('/').set(as('u')).expect(200);
          await t.http.get('/').set(as('u')).expect(429);
          expect(backend.queries).toHaveLength(0);
          expect(logs.ours('warn')).toEqual([
            expect.stringMatching(
              / returned -1; .*Until it does, limiting that rule's requests in process memory, as during a backend outage\.$/,
            ),
          ]);
        },
      );
      await fallbackBackend.close();
    });

    it('says so when it answers with a promise', async () => {
      const backend = new RecordingBackend();
      // A rejected one too: left unhandled, its rejection would end the process.
      const cost = (() =>
        Promise.reject(new Error('async plan lookup'))) as unknown as CostFunction;
      await withApp({ backend, config: { '/': [{ minute: 5, cost }] } }, async (t) => {
        const logs = captureLogs();
        await t.http.get('/').set(as('u')).expect(200);
        expect(logs.ours('warn')[0]).toMatch(
          / returned a promise \(a cost function must answer synchronously\); it must return/,
        );
      });
    });
  });
});
