import {
  BadRequestException,
  Body,
  Controller,
  Get,
  Injectable,
  Param,
  Post,
  Query,
  UseGuards,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { RateLimitAdmin, SkipRateLimit, type RateLimitCounter } from 'nestjs-ratelimit';

/** Lets through only callers with a valid JWT of the group 'admin' (GET /auth/admin-token). */
@Injectable()
class AdminOnly implements CanActivate {
  constructor(private readonly jwt: JwtService) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const header = context.switchToHttp().getRequest<{ headers: Record<string, unknown> }>()
      .headers['authorization'];
    const token = typeof header === 'string' ? /^Bearer (.+)$/.exec(header)?.[1] : undefined;
    if (token === undefined) return false;
    try {
      const claims = await this.jwt.verifyAsync<{ group?: unknown }>(token);
      return claims.group === 'admin';
    } catch {
      return false;
    }
  }
}

/** The counter named by query or body fields `user`, `scope`, `method` (default `*`). */
function counterOf(fields: Record<string, unknown>): RateLimitCounter {
  const { user, scope, method = '*' } = fields;
  if (typeof user !== 'string' || typeof scope !== 'string' || typeof method !== 'string') {
    throw new BadRequestException('expected user and scope (and optionally method) as strings');
  }
  return { user, scope, method };
}

/**
 * What support staff need: look at a caller's counter, reset it, block or unblock a caller.
 * Admins only; and never limited itself, since a block covers every limited route, this one too.
 */
@SkipRateLimit()
@UseGuards(AdminOnly)
@Controller('admin/rate-limits')
export class AdminController {
  constructor(private readonly admin: RateLimitAdmin) {}

  /** `GET /admin/rate-limits/peek?user=..&scope=path:/hello`: each unit's remaining and reset. */
  @Get('peek')
  async peek(@Query() query: Record<string, unknown>): Promise<unknown> {
    const { blockedMs, units } = await this.admin.peek(counterOf(query));
    return {
      blockedMs,
      units: units.map(({ unit, limit, remaining }) => ({ unit, limit, remaining })),
    };
  }

  @Post('reset')
  async reset(@Body() body: Record<string, unknown>): Promise<{ reset: boolean }> {
    return { reset: await this.admin.reset(counterOf(body ?? {})) };
  }

  @Post('block/:user')
  async block(
    @Param('user') user: string,
    @Body() body: { seconds?: unknown },
  ): Promise<{ blockedForMs: number }> {
    const seconds = Number(body?.seconds ?? 60);
    if (!Number.isSafeInteger(seconds) || seconds < 1) {
      throw new BadRequestException('seconds must be a whole number of at least 1');
    }
    await this.admin.block(user, seconds * 1000);
    return { blockedForMs: await this.admin.blockedFor(user) };
  }

  @Post('unblock/:user')
  async unblock(@Param('user') user: string): Promise<{ unblocked: boolean }> {
    return { unblocked: await this.admin.unblock(user) };
  }
}
