import fastifyCookie from '@fastify/cookie';
import fastifySession from '@fastify/session';
import type { INestApplication } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import session from 'express-session';

/** The HTTP adapters the sample runs on: `npm start` (Express), `npm run start:fastify`. */
export type SampleAdapter = 'express' | 'fastify';

/**
 * The adapter `HTTP_ADAPTER` names (`express`, the default, or `fastify`).
 * @throws Error for any other value, so that a typo does not quietly start Express
 */
export function adapterFromEnvironment(env: NodeJS.ProcessEnv = process.env): SampleAdapter {
  const name = env.HTTP_ADAPTER ?? 'express';
  if (name !== 'express' && name !== 'fastify') {
    throw new Error(`HTTP_ADAPTER must be "express" or "fastify", got ${JSON.stringify(name)}`);
  }
  return name;
}

/** A new Nest HTTP adapter of that kind, for `NestFactory.create` or `createNestApplication`. */
export function createHttpAdapter(adapter: SampleAdapter): ExpressAdapter | FastifyAdapter {
  return adapter === 'fastify' ? new FastifyAdapter() : new ExpressAdapter();
}

// At least 32 characters: @fastify/session refuses a shorter secret.
const SESSION_SECRET = process.env.SESSION_SECRET ?? 'sample-session-secret-change-me-please';

/**
 * What the sample needs before the rate-limit guard runs: a session, so that SessionAuthResolver
 * can read `session.user`. express-session on Express; on Fastify @fastify/session (with
 * @fastify/cookie), whose sessions also keep their fields as properties, so the same controller
 * code and the same resolver work on both. Shared by main.ts and the sample's tests; call it
 * before `listen` or `init`.
 */
export async function configureApp(app: INestApplication): Promise<void> {
  if (app.getHttpAdapter().getType() === 'fastify') {
    const fastify = app as NestFastifyApplication;
    await fastify.register(fastifyCookie);
    await fastify.register(fastifySession, {
      secret: SESSION_SECRET,
      saveUninitialized: false,
      // The plugin's default is a Secure cookie, which a browser never sends back over plain
      // http://localhost; 'auto' marks it Secure on HTTPS requests only.
      cookie: { secure: 'auto' },
    });
    return;
  }
  app.use(session({ secret: SESSION_SECRET, resave: false, saveUninitialized: false }));
}
