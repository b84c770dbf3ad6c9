/**
 * What clients see: the default 429, `onBlocked` in each of its forms, and the optional
 * rate-limit headers (IETF draft-10 and legacy X-RateLimit-*).
 */
import type { ArgumentsHost } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { RateLimitInfo, RateLimitModuleOptions } from 'nestjs-ratelimit';
import {
  ADAPTERS,
  as,
  createTestApp,
  headerAuth,
  type AdapterName,
  type TestApp,
} from './support/nest-app.js';

/** A response header as `onBlocked` reads it: Node's `getHeader`, Fastify's `reply.getHeader`. */
function responseHeader(adapter: AdapterName, host: ArgumentsHost, name: string): unknown {
  const http = host.switchToHttp();
  return adapter === 'fastify'
    ? http.getResponse<FastifyReply>().getHeader(name)
    : http.getResponse<ServerResponse>().getHeader(name);
}

/** `onBlocked` answering by itself, through each adapter's own response API. */
function writeItself(adapter: AdapterName, host: ArgumentsHost, html: string): void {
  const http = host.switchToHttp();
  if (adapter === 'fastify') {
    void http.getResponse<FastifyReply>().code(503).type('text/html').send(html);
    return;
  }
  const res = http.getResponse<ServerResponse>();
  res.statusCode = 503;
  res.setHeader('Content-Type', 'text/html');
  res.end(html);
}

describe.each(ADAPTERS)('on %s', (adapter) => {
  async function withApp(
    options: RateLimitModuleOptions,
    body: (t: TestApp) => Promise<void>,
  ): Promise<void> {
    const t = await createTestApp({ adapter, rateLimit: { authenticate: headerAuth, ...options } });
    try {
      await body(t);
    } finally {
      await t.close();
    }
  }

  describe('the default 429', () => {
    it('has Retry-After and Nest’s JSON error body', () =>
      withApp({ config: { '/': [{ second: 1, minute: 10 }] } }, async (t) => {
        await t.http.get('/').set(as('u')).expect(200);
        const res = await t.http.get('/').set(as('u')).expect(429);
        expect(res.headers['retry-after']).toBe('1');
        // Byte for byte the same on every adapter.
        expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
        expect(res.text).toBe(
          '{"statusCode":429,"message":"Too many requests, retry in 1 second","error":"Too Many Requests"}',
        );
        expect(res.headers['content-length']).toBe(String(res.text.length));
      }));
  });

  describe('onBlocked', () => {
    const config = { '/': [{ minute: 1, blockTime: 90 }] };

    it('receives the rule, unit, block state, user and group, with headers already set', async () => {
      const seen: RateLimitInfo[] = [];
      let retryAfterHeader: unknown;
      await withApp(
        {
          config,
          onBlocked: (info, host: ArgumentsHost) => {
            seen.push(info);
            retryAfterHeader = responseHeader(adapter, host, 'Retry-After');
            return undefined;
          },
        },
        async (t) => {
          await t.http.get('/').set(as('u', 'default')).expect(200);
          // undefined and nothing written: the default 429.
          const first = await t.http.get('/').set(as('u')).expect(429);
          expect(first.body.error).toBe('Too Many Requests');
          t.clock.advance(10_000);
          await t.http.get('/').set(as('u')).expect(429);
        },
      );
      expect(seen[0]).toMatchObject({
        retryAfter: 90,
        unit: 'minute',
        blocked: true,
        user: 'u',
        group: 'default',
      });
      expect(seen[0]!.rule.minute).toBe(1);
      expect(seen[0]!.counter).toEqual({ user: 'u', scope: 'path:/', method: '*' });
      // The second comes during the block: the minute is still exhausted (50 s left), but the
      // block's 80 s are the longer wait.
      expect(seen[1]).toMatchObject({ retryAfter: 80, unit: 'minute', blocked: true });
      expect(seen[1]!.units).toEqual([
        { unit: 'minute', limit: 1, windowMs: 60_000, remaining: 0, resetMs: 50_000 },
      ]);
      expect(retryAfterHeader).toBe('80');
    });

    it('may write the response itself', () =>
      withApp(
        {
          config,
          onBlocked: (info, host) => {
            writeItself(adapter, host, `<p>Slow down for ${info.retryAfter}s</p>`);
          },
        },
        async (t) => {
          await t.http.get('/').set(as('u')).expect(200);
          const res = await t.http.get('/').set(as('u')).expect(503);
          expect(res.text).toBe('<p>Slow down for 90s</p>');
          expect(res.headers['retry-after']).toBe('90');
        },
      ));

    it('may return a string, a Buffer or an object body, sync or async', async () => {
      const bodies: unknown[] = [
        'plain text',
        Buffer.from([1, 2, 3]),
        { error: 'slow down', wait: 60 },
      ];
      for (const body of bodies) {
        await withApp(
          { config: { '/': [{ minute: 1 }] }, onBlocked: async () => body },
          async (t) => {
            await t.http.get('/').set(as('u')).expect(200);
            const res = await t.http.get('/').set(as('u')).buffer(true).expect(429);
            if (typeof body === 'string') {
              expect(res.text).toBe(body);
              expect(res.headers['content-type']).toMatch(/^text\/plain/);
            } else if (Buffer.isBuffer(body)) {
              expect(Buffer.from(res.body as Buffer)).toEqual(body);
              expect(res.headers['content-type']).toBe('application/octet-stream');
            } else {
              expect(res.body).toEqual(body);
            }
          },
        );
      }
    });

    it('falls back to the default 429 when the handler throws, never a 500', () =>
      withApp(
        {
          config: { '/': [{ minute: 1 }] },
          onBlocked: () => {
            throw new Error('handler bug');
          },
        },
        async (t) => {
          await t.http.get('/').set(as('u')).expect(200);
          const res = await t.http.get('/').set(as('u')).expect(429);
          expect(res.body.statusCode).toBe(429);
        },
      ));
  });

  describe('rate-limit headers', () => {
    it('are off by default', () =>
      withApp({ config: { '/': [{ minute: 5 }] } }, async (t) => {
        const res = await t.http.get('/').set(as('u')).expect(200);
        expect(res.headers['ratelimit']).toBeUndefined();
        expect(res.headers['x-ratelimit-limit']).toBeUndefined();
      }));

    it('follow draft-ietf-httpapi-ratelimit-headers-10', () =>
      withApp({ headers: 'draft-10', config: { '/': [{ second: 10, minute: 3 }] } }, async (t) => {
        let res = await t.http.get('/').set(as('u')).expect(200);
        expect(res.headers['ratelimit-policy']).toBe('"second";q=10;w=1, "minute";q=3;w=60');
        expect(res.headers['ratelimit']).toBe('"minute";r=2;t=60');
        t.clock.advance(15_000);
        res = await t.http.get('/').set(as('u')).expect(200);
        expect(res.headers['ratelimit']).toBe('"minute";r=1;t=45');
        await t.http.get('/').set(as('u')).expect(200);
        res = await t.http.get('/').set(as('u')).expect(429);
        expect(res.headers['ratelimit']).toBe('"minute";r=0;t=45');
        expect(res.headers['retry-after']).toBe('45');
      }));

    it('can be the legacy X-RateLimit-* set, or both', () =>
      withApp({ headers: 'both', config: { '/': [{ minute: 2 }] } }, async (t) => {
        const res = await t.http.get('/').set(as('u')).expect(200);
        expect(res.headers['x-ratelimit-limit']).toBe('2');
        expect(res.headers['x-ratelimit-remaining']).toBe('1');
        expect(res.headers['x-ratelimit-reset']).toBe('60');
        expect(res.headers['ratelimit']).toBe('"minute";r=1;t=60');
      }));

    it('during a block, point at the tightest unit of the rule, and reset with Retry-After', () =>
      withApp(
        { headers: 'both', config: { '/': [{ minute: 2, hour: 3, blockTime: 300 }] } },
        async (t) => {
          await t.http.get('/').set(as('u')).expect(200);
          await t.http.get('/').set(as('u')).expect(200);
          let res = await t.http.get('/').set(as('u')).expect(429); // the minute: a 300 s block
          expect(res.headers['ratelimit']).toBe('"minute";r=0;t=300');
          // Two minutes on, the minute has room again and the hour one request: the block alone
          // rejects, and the headers watch the unit with the fewest requests left.
          t.clock.advance(120_000);
          res = await t.http.get('/').set(as('u')).expect(429);
          expect(res.headers['retry-after']).toBe('180');
          expect(res.headers['ratelimit']).toBe('"hour";r=0;t=180');
          expect(res.headers['x-ratelimit-limit']).toBe('3');
          expect(res.headers['x-ratelimit-remaining']).toBe('0');
          expect(res.headers['x-ratelimit-reset']).toBe('180');
        },
      ));

    it('show a custom window with its real length, in every format and in onBlocked', async () => {
      const seen: RateLimitInfo[] = [];
      await withApp(
        {
          headers: 'both',
          config: { '/': [{ second: 5, limit: 2, window: '15m' }] },
          onBlocked: (info) => {
            seen.push(info);
            return undefined;
          },
        },
        async (t) => {
          let res = await t.http.get('/').set(as('u')).expect(200);
          expect(res.headers['ratelimit-policy']).toBe('"second";q=5;w=1, "window";q=2;w=900');
          expect(res.headers['ratelimit']).toBe('"window";r=1;t=900');
          expect(res.headers['x-ratelimit-limit']).toBe('2');
          expect(res.headers['x-ratelimit-remaining']).toBe('1');
          expect(res.headers['x-ratelimit-reset']).toBe('900');
          t.clock.advance(300_000);
          await t.http.get('/').set(as('u')).expect(200);
          res = await t.http.get('/').set(as('u')).expect(429);
          expect(res.headers['retry-after']).toBe('600');
          expect(res.headers['ratelimit']).toBe('"window";r=0;t=600');
          expect(seen.map(({ unit, retryAfter }) => [unit, retryAfter])).toEqual([['window', 600]]);
          expect(seen[0]!.units.map(({ unit, windowMs }) => [unit, windowMs])).toEqual([
            ['second', 1_000],
            ['window', 900_000],
          ]);
        },
      );
    });

    it('keep a custom window as long as a named unit apart, and round a fractional one up', () =>
      withApp(
        {
          headers: 'draft-10',
          config: {
            '/same': [{ minute: 10, limit: 3, window: 60 }],
            '/short': [{ limit: 4, window: 1.5 }],
          },
        },
        async (t) => {
          let res = await t.http.get('/same').set(as('u')).expect(200);
          expect(res.headers['ratelimit-policy']).toBe('"minute";q=10;w=60, "window";q=3;w=60');
          expect(res.headers['ratelimit']).toBe('"window";r=2;t=60');
          res = await t.http.get('/short').set(as('u')).expect(200);
          expect(res.headers['ratelimit-policy']).toBe('"window";q=4;w=2');
        },
      ));

    it('are not sent for unlimited rules or unmatched paths', () =>
      withApp(
        { headers: 'both', config: { '/limited': [{ minute: 2 }, { group: 'admin' }] } },
        async (t) => {
          let res = await t.http.get('/limited').set(as('boss', 'admin')).expect(200);
          expect(res.headers['ratelimit']).toBeUndefined();
          res = await t.http.get('/other').set(as('u')).expect(200);
          expect(res.headers['x-ratelimit-limit']).toBeUndefined();
        },
      ));
  });
});

describe('onBlocked writing the reply itself on Fastify', () => {
  /** A Fastify app whose every reply goes through an asynchronous onSend hook, as plugins add. */
  async function withHookedApp(
    onBlocked: RateLimitModuleOptions['onBlocked'],
    body: (t: TestApp) => Promise<void>,
  ): Promise<void> {
    const t = await createTestApp({
      adapter: 'fastify',
      rateLimit: { authenticate: headerAuth, config: { '/': [{ minute: 1 }] }, onBlocked },
      configure: (app) => {
        (app as NestFastifyApplication)
          .getHttpAdapter()
          .getInstance()
          .addHook('onSend', async (_request, reply, payload) => {
            await new Promise((resolve) => setImmediate(resolve));
            reply.header('x-on-send', 'ran');
            return payload;
          });
      },
    });
    try {
      await body(t);
    } finally {
      await t.close();
    }
  }

  it.each([
    [
      'returning the reply, as Fastify handlers do',
      ((info, host) =>
        host
          .switchToHttp()
          .getResponse<FastifyReply>()
          .code(429)
          .send({ slowDown: info.retryAfter })) satisfies RateLimitModuleOptions['onBlocked'],
    ],
    [
      'awaiting the reply',
      (async (info, host) => {
        const reply = host.switchToHttp().getResponse<FastifyReply>();
        await reply.code(429).send({ slowDown: info.retryAfter });
      }) satisfies RateLimitModuleOptions['onBlocked'],
    ],
  ])('is sent once, as written, %s, through asynchronous onSend hooks', (_name, onBlocked) =>
    withHookedApp(onBlocked, async (t) => {
      await t.http.get('/').set(as('u')).expect(200).expect('x-on-send', 'ran');
      const res = await t.http.get('/').set(as('u')).expect(429);
      expect(res.body).toEqual({ slowDown: 60 });
      expect(res.headers['retry-after']).toBe('60');
      expect(res.headers['x-on-send']).toBe('ran');
    }),
  );
});
