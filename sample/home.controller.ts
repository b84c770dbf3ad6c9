import { Controller, Get, Header } from '@nestjs/common';
import { SkipRateLimit } from 'nestjs-ratelimit';
import { localBase, tryIt } from './try-it.js';

@Controller()
export class HomeController {
  @SkipRateLimit()
  @Get()
  @Header('Content-Type', 'text/plain; charset=utf-8')
  home(): string {
    return tryIt(localBase());
  }

  /** Limited by the table's catch-all '^/' rule: 30 a minute per caller. */
  @Get('hello')
  hello(): { hello: string } {
    return { hello: 'world' };
  }
}
