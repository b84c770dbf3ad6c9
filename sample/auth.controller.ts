import { Body, Controller, Get, Post, Req } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import type { Request } from 'express';
import { SkipRateLimit } from 'nestjs-ratelimit';

type SessionRequest = Request & { session: Record<string, unknown> };

/** Logs callers in (a session, then counted per user) and hands out a demo admin token. */
@Controller('auth')
export class AuthController {
  constructor(private readonly jwt: JwtService) {}

  /** Demo login: no password check. The session user is then the rate-limit user. */
  @Post('login')
  login(@Req() request: SessionRequest, @Body() body: { user?: string }): { user: string } {
    const user = String(body?.user ?? 'guest').slice(0, 40);
    request.session.user = user;
    return { user };
  }

  @SkipRateLimit()
  @Post('logout')
  logout(@Req() request: SessionRequest): { user: null } {
    delete request.session.user;
    return { user: null };
  }

  /** Demo only: a token in the 'admin' group, which the pattern table leaves unlimited. */
  @SkipRateLimit()
  @Get('admin-token')
  async adminToken(): Promise<{ token: string }> {
    return { token: await this.jwt.signAsync({ user: 'ada', group: 'admin' }) };
  }
}
