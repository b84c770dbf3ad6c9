import { Body, Controller, HttpCode, Post, Req } from '@nestjs/common';

/**
 * `POST /login` copies its JSON body into the session, whatever its types (so tests can store odd
 * values too), and answers 204: a login for the session resolver's tests. The session is
 * express-session's, `@fastify/session`'s or `@fastify/secure-session`'s (whose session takes
 * property writes as `session.set(key, value)`).
 */
@Controller()
export class SessionLoginController {
  @Post('login')
  @HttpCode(204)
  login(@Req() req: { session: Record<string, unknown> }, @Body() body: Record<string, unknown>) {
    Object.assign(req.session, body);
  }
}
