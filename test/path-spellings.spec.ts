/**
 * One path per handler: a pattern rule counts every spelling the router sends to the same
 * handler on one counter (letter case, trailing slash, repeated slashes, dot segments,
 * percent-escapes, `;` parameters, HEAD for GET), follows the router's own case and trailing-slash
 * settings, and is written without the global prefix.
 */
import { jest } from '@jest/globals';
import { Controller, Get, Head, Logger, Param, type INestApplication } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import request from 'supertest';
import {
  as,
  createTestApp,
  headerAuth,
  HelloController,
  type TestApp,
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

describe('path spellings', () => {
  let t: TestApp;
  afterEach(async () => {
    await t?.close();
  });

  async function start(
    config: Record<string, { minute: number; method?: string; zone?: string }[]>,
    options: { configure?: (app: INestApplication) => void; catchAll?: boolean } = {},
  ): Promise<void> {
    t = await createTestApp({
      rateLimit: { authenticate: headerAuth, config },
      controllers: options.catchAll ? [HelloController] : [PlacesController],
      configure: options.configure,
    });
  }

  it.each(['/TOWNS', '/Towns', '/towns/', '/TOWNS/', '/towns?x=1'])(
    'Express sends %s to the /towns handler: it is counted with /towns',
    async (spelling) => {
      await start({ '^/towns': [{ minute: 1 }] });
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
    '/towns//',
    '/t%6Fwns',
    '/%54%4F%57%4E%53',
    '/towns;jsessionid=abc',
    '/./towns',
    '/x/../towns',
    '/%2e%2e/towns',
  ])('a catch-all route receives %s: it is counted with /towns', async (spelling) => {
    await start({ '^/towns': [{ minute: 1 }], '^/': [{ minute: 100 }] }, { catchAll: true });
    await t.http.get('/towns').set(as('u')).expect(200);
    await t.http.get(spelling).set(as('u')).expect(429);
  });

  it('applies the rules of the path a route receives with dot segments, too', async () => {
    // `/forests/..` reaches forests/:id with id '..', though its canonical form is `/`.
    await start({ '^/forests': [{ minute: 1, zone: 'nature' }], '^/': [{ minute: 100 }] });
    await t.http.get('/forests/1').set(as('u')).expect(200, 'forest 1');
    await t.http.get('/forests/..').set(as('u')).expect(429);
  });

  it('counts path counters apart when the router is case-sensitive and strict', async () => {
    await start(
      { '^/towns': [{ minute: 1 }] },
      {
        configure: (app) => {
          const express = app as NestExpressApplication;
          express.set('case sensitive routing', true);
          express.set('strict routing', true);
        },
        catchAll: true,
      },
    );
    await t.http.get('/towns').set(as('u')).expect(200);
    await t.http.get('/towns').set(as('u')).expect(429);
    // Other routes for this router, with counters of their own; `^/towns` is case-sensitive now.
    await t.http.get('/towns/').set(as('u')).expect(200);
    await t.http.get('/Towns').set(as('u')).expect(200);
    await t.http.get('/Towns').set(as('u')).expect(200); // not matched by '^/towns' at all
  });

  it('matches patterns without the global prefix, and warns about a pattern that has it', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    let warned: string[];
    try {
      await start(
        { '^/towns': [{ minute: 1 }], '^/api/forests': [{ minute: 1 }] },
        {
          configure: (app) => {
            app.setGlobalPrefix('api');
          },
        },
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
