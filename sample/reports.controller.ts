import { Controller, Get } from '@nestjs/common';
import { RateLimit, SkipRateLimit } from 'nestjs-ratelimit';

/**
 * Decorator rules: they come before the pattern table. The class rule counts per handler; a
 * handler rule replaces it for that handler.
 */
@RateLimit({ minute: 10 }, { group: 'admin' })
@Controller('reports')
export class ReportsController {
  @Get('daily')
  daily(): { report: string } {
    return { report: 'daily' };
  }

  // Expensive: two a minute. Admins are still exempt: the handler list has no admin rule, so an
  // admin falls through to the class list, whose admin rule is unlimited.
  @RateLimit({ minute: 2 })
  @Get('export')
  export(): { report: string } {
    return { report: 'export' };
  }

  @SkipRateLimit()
  @Get('health')
  health(): { ok: true } {
    return { ok: true };
  }
}
