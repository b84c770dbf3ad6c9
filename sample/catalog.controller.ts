import { Body, Controller, Get, Param, Post } from '@nestjs/common';

/** Routes limited only by the pattern table in rate-limit.config.ts. */
@Controller()
export class CatalogController {
  private readonly towns = ['Avalon', 'Brigadoon'];

  @Get('towns')
  listTowns(): string[] {
    return this.towns;
  }

  @Post('towns')
  addTown(@Body() body: { name?: string }): string[] {
    if (body?.name) this.towns.push(String(body.name).slice(0, 40));
    return this.towns;
  }

  @Get('forests/:id')
  forest(@Param('id') id: string): { forest: string } {
    return { forest: id };
  }

  @Get('lakes/:id')
  lake(@Param('id') id: string): { lake: string } {
    return { lake: id };
  }
}
