import type { INestApplication } from '@nestjs/common';
import session from 'express-session';

/**
 * Middleware the sample needs before the rate-limit guard runs: express-session, so that
 * SessionAuthResolver can read `session.user`. Shared by main.ts and the sample's e2e test.
 */
export function configureApp(app: INestApplication): void {
  app.use(
    session({
      secret: process.env.SESSION_SECRET ?? 'sample-session-secret-change-me',
      resave: false,
      saveUninitialized: false,
    }),
  );
}
