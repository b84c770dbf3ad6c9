/**
 * One path per handler: a pattern rule counts every spelling the router sends to the same
 * handler on one counter (letter case, trailing slash, repeated slashes, dot segments,
 * percent-escapes, `;` parameters, HEAD for GET), follows the router's own case and trailing-slash
 * settings, and is written without the global prefix. On Express and on Fastify, whose routers
 * have opposite defaults: Express ignores letter case and a trailing slash unless told otherwise,
 * Fastify's router (find-my-way) counts both unless told otherwise.
 */
import { jest } from '@jest/globals';
import { Controller, Get, Head, Logger, Param } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import request from 'supertest';
import {
  ADAPTERS,
  as,
  createTestApp,
  headerAuth,
  HelloController,
  type AdapterName,
  type TestApp,
  type TestAppOptions,
} from './support/nest-app.js';

@Controller()
class PlacesController {
  @Get('towns')
  towns(): string {
    return 'towns';
  }

  @Get('forests/:id')
  forest(@Param('id') id: string): string {
    return `forest ${id}`;
  }

  @Head('lakes')
  lakesHead(): void {}

  @Get('lakes')
  lakes(): string {
    return 'lakes';
  }
}

/** A router set up one way, on one adapter. */
type RouterSetup = Pick<TestAppOptions, 'configure' | 'fastify'>;

/**
 * The router that sends `/Towns` and `/towns/` to the `/towns` handler (Express's default; Fastify
 * told so, and told to ignore repeated slashes too), and the one that does not (Fastify's default;
 * Express told so).
 */
const ROUTERS: Record<AdapterName, { lenient: RouterSetup; strict: RouterSetup }> = {
  express: {
    lenient: {},
    strict: {
      configure: (app) => {
        const express = app as NestExpressApplication;
        express.set('case sensitive routing', true);
        express.set('strict routing', true);
      },
    },
  },
  fastify: {
    lenient: {
      fastify: {
        routerOptions: {
          caseSensitive: false,
          ignoreTrailingSlash: true,
          ignoreDuplicateSlashes: true,
        },
      },
    },
    strict: {},
  },
};

/** What the lenient router of each adapter sends to the `/towns` handler. */
const LENIENT_SPELLINGS: Record<AdapterName, string[]> = {
  express: ['/TOWNS', '/Towns', '/towns/', '/TOWNS/', '/towns?x=1'],
  fastify: [
    '/TOWNS',
    '/Towns',
    '/towns/',
    '/TOWNS/',
    '/towns?x=1',
    '//towns',
    '/towns//',
    '/%54OWNS',
  ],
};

describe.each(ADAPTERS)('path spellings on %s', (adapter) => {
  let t: TestApp;
  afterEach(async () => {
    await t?.close();
  });

  async function start(
    config: Record<string, { minute: number; method?: string; zone?: string }[]>,
    options: { router?: 'lenient' | 'strict'; catchAll?: boolean; prefix?: string } = {},
  ): Promise<void> {
    const router = options.router === undefined ? {} : ROUTERS[adapter][options.router];
    t = await createTestApp({
      adapter,
      rateLimit: { authenticate: headerAuth, config },
      controllers: options.catchAll ? [HelloController] : [PlacesController],
      fastify: router.fastify,
      configure: async (app, name) => {
        await router.configure?.(app, name);
        if (options.prefix !== undefined) app.setGlobalPrefix(options.prefix);
      },
    });
  }

  it.each(LENIENT_SPELLINGS[adapter])(
    'a router that ignores case and a trailing slash sends %s to the /towns handler: it is counted with /towns',
    async (spelling) => {
      await start({ '^/towns': [{ minute: 1 }] }, { router: 'lenient' });
      await t.http.get('/towns').set(as('u')).expect(200, 'towns');
      await t.http.get(spelling).set(as('u')).expect(429);
      // And the other way round, for a user who starts with the odd spelling.
      await t.http.get(spelling).set(as('v')).expect(200, 'towns');
      await t.http.get('/towns').set(as('v')).expect(429);
    },
  );

  it('counts HEAD under a GET rule, on the GET counter, as the router sends HEAD to GET', async () => {
    await start({ '^/towns': [{ minute: 2, method: 'GET' }] });
    await t.http.head('/towns').set(as('u')).expect(200);
    await t.http.get('/towns').set(as('u')).expect(200);
    await t.http.head('/towns').set(as('u')).expect(429);
    await t.http.get('/towns').set(as('u')).expect(429);
  });

  it('counts HEAD under a GET rule even where the app has a HEAD handler', async () => {
    await start({ '^/lakes': [{ minute: 1, method: 'GET' }] });
    await t.http.head('/lakes').set(as('u')).expect(200);
    await t.http.get('/lakes').set(as('u')).expect(429);
  });

  it.each([
    '//towns',
    '/t%6Fwns',
    '/towns;jsessionid=abc',
    '/./towns',
    '/x/../towns',
    '/%2e%2e/towns',
  ])(
    "a catch-all route receives %s: it is counted with /towns, under the adapter's default router",
    async (spelling) => {
      await start({ '^/towns': [{ minute: 1 }], '^/': [{ minute: 100 }] }, { catchAll: true });
      await t.http.get('/towns').set(as('u')).expect(200);
      await t.http.get(spelling).set(as('u')).expect(429);
    },
  );

  it.each(['/towns//', '/%54%4F%57%4E%53'])(
    'a catch-all route receives %s: it is counted with /towns where the router ignores case and a trailing slash',
    async (spelling) => {
      await start(
        { '^/towns': [{ minute: 1 }], '^/': [{ minute: 100 }] },
        { catchAll: true, router: 'lenient' },
      );
      await t.http.get('/towns').set(as('u')).expect(200);
      await t.http.get(spelling).set(as('u')).expect(429);
    },
  );

  it('applies the rules of the path a route receives with dot segments, too', async () => {
    // `/forests/..` reaches forests/:id with id '..', though its canonical form is `/`.
    await start({ '^/forests': [{ minute: 1, zone: 'nature' }], '^/': [{ minute: 100 }] });
    await t.http.get('/forests/1').set(as('u')).expect(200, 'forest 1');
    await t.http.get('/forests/..').set(as('u')).expect(429);
  });

  it('counts path counters apart when the router is case-sensitive and strict', async () => {
    await start({ '^/towns': [{ minute: 1 }] }, { router: 'strict', catchAll: true });
    await t.http.get('/towns').set(as('u')).expect(200);
    await t.http.get('/towns').set(as('u')).expect(429);
    // Other routes for this router, with counters of their own; `^/towns` is case-sensitive now.
    await t.http.get('/towns/').set(as('u')).expect(200);
    await t.http.get('/towns//').set(as('u')).expect(429); // `/towns/` again
    await t.http.get('/Towns').set(as('u')).expect(200);
    await t.http.get('/Towns').set(as('u')).expect(200); // not matched by '^/towns' at all
    await t.http.get('/%54%4F%57%4E%53').set(as('u')).expect(200); // `/TOWNS`, not matched either
  });

  it('matches patterns without the global prefix, and warns about a pattern that has it', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    let warned: string[];
    try {
      await start(
        { '^/towns': [{ minute: 1 }], '^/api/forests': [{ minute: 1 }] },
        { router: 'lenient', prefix: 'api' },
      );
      warned = warn.mock.calls.map(([line]) => String(line));
    } finally {
      warn.mockRestore();
    }
    await t.http.get('/api/towns').set(as('u')).expect(200);
    await t.http.get('/API/Towns/').set(as('u')).expect(429);
    expect(warned).toEqual([
      'Rate-limit pattern "^/api/forests" starts with the global prefix "/api", but patterns ' +
        "are matched against the path without it (as the paths of Nest's forRoutes() are): " +
        'drop the prefix from the pattern.',
    ]);
  });

  it('never fails a request for its spelling', async () => {
    // Express itself answers 400 to a route parameter it cannot decode (`/%zz` for the catch-all's
    // `{*path}`); the limiter never turns a spelling into a 5xx.
    await start({ '^/towns': [{ minute: 100 }], '^/': [{ minute: 100 }] }, { catchAll: true });
    for (const spelling of [
      '/%zz',
      '/%E0%A4%A',
      '/towns%',
      '/;',
      '/..',
      '/%00',
      `/${'a'.repeat(8_000)}`,
    ]) {
      const res = await request(t.app.getHttpServer()).get(spelling).set(as('u'));
      const expected = /%zz|%E0%A4%A|towns%$/.test(spelling) ? 400 : 200;
      expect([spelling.slice(0, 20), res.status]).toEqual([spelling.slice(0, 20), expected]);
    }
  });
});
