import fastifyCookie from '@fastify/cookie';
import fastifySecureSession from '@fastify/secure-session';
import fastifySession from '@fastify/session';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import session from 'express-session';
import type { AdapterName, TestNestApp } from './nest-app.js';

/** A real session middleware (Express) or plugin (Fastify) that `SessionAuthResolver` reads. */
export type SessionPlugin = 'express-session' | '@fastify/secure-session' | '@fastify/session';

/** The session middleware and plugins each adapter is tested with. */
export const SESSION_PLUGINS: Record<AdapterName, readonly SessionPlugin[]> = {
  express: ['express-session'],
  fastify: ['@fastify/secure-session', '@fastify/session'],
};

/** @fastify/secure-session's key: 32 bytes (libsodium's secretbox key), fixed for the tests. */
const SECURE_SESSION_KEY = Buffer.from('0123456789abcdef0123456789abcdef');

/**
 * Registers `plugin` on `app` as its README tells users to, in `main.ts`, so that it runs before
 * any guard: `app.use(session(...))` on Express, `app.register(...)` on Fastify. Cookies are not
 * `Secure`, since the tests speak plain HTTP.
 */
export async function useSessions(app: TestNestApp, plugin: SessionPlugin): Promise<void> {
  switch (plugin) {
    case 'express-session':
      (app as NestExpressApplication).use(
        session({ secret: 'test-session-secret', resave: false, saveUninitialized: false }),
      );
      return;
    case '@fastify/secure-session':
      await (app as NestFastifyApplication).register(fastifySecureSession, {
        key: SECURE_SESSION_KEY,
        cookie: { path: '/' },
      });
      return;
    case '@fastify/session':
      await (app as NestFastifyApplication).register(fastifyCookie);
      await (app as NestFastifyApplication).register(fastifySession, {
        secret: 'a test session secret of at least 32 characters',
        saveUninitialized: false,
        cookie: { secure: false },
      });
      return;
  }
}
