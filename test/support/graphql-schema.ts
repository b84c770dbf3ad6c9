/**
 * The code-first schema the GraphQL e2e tests run: resolvers decorated the way a user decorates
 * them. Every field that can be rejected is nullable, so one rejected field leaves its siblings'
 * data in the answer (a rejected non-null field would null its whole parent).
 */
import { Controller, Get } from '@nestjs/common';
import {
  Field,
  Int,
  Mutation,
  ObjectType,
  Parent,
  Query,
  ResolveField,
  Resolver,
  Subscription,
} from '@nestjs/graphql';
import { RateLimit, SkipRateLimit } from 'nestjs-ratelimit';

@ObjectType()
export class Town {
  @Field()
  name!: string;
}

const TOWNS: readonly Town[] = [{ name: 'Aix' }, { name: 'Bern' }, { name: 'Cork' }];

/** A class rule (2 a minute, per handler), which its handlers override or skip. */
@RateLimit({ minute: 2 })
@Resolver()
export class LimitedResolver {
  /** Under the class rule. */
  @Query(() => String, { nullable: true })
  hello(): string {
    return 'hello';
  }

  @RateLimit({ minute: 1 })
  @Query(() => String, { nullable: true })
  strict(): string {
    return 'strict';
  }

  @SkipRateLimit()
  @Query(() => String, { nullable: true })
  free(): string {
    return 'free';
  }

  @RateLimit({ minute: 1 })
  @Mutation(() => String, { nullable: true })
  rename(): string {
    return 'renamed';
  }
}

/** No decorators: only the pattern table can limit these. */
@Resolver()
export class PlainResolver {
  @Query(() => String, { nullable: true })
  plain(): string {
    return 'plain';
  }

  @Query(() => [Town])
  towns(): readonly Town[] {
    return TOWNS;
  }
}

/** A decorated field resolver, run once per town of a list. */
@Resolver(() => Town)
export class TownFieldsResolver {
  @RateLimit({ minute: 4 })
  @ResolveField(() => Int, { nullable: true })
  letters(@Parent() town: Town): number {
    return town.name.length;
  }
}

/** Subscriptions: each one delivers a single event and completes. */
@Resolver()
export class TickResolver {
  @RateLimit({ minute: 2 })
  @Subscription(() => Int, { nullable: true })
  ticks(): AsyncIterable<{ ticks: number }> {
    return oneEvent({ ticks: 1 });
  }

  @Subscription(() => Int, { nullable: true })
  plainTicks(): AsyncIterable<{ plainTicks: number }> {
    return oneEvent({ plainTicks: 1 });
  }
}

async function* oneEvent<T>(payload: T): AsyncGenerator<T> {
  yield payload;
}

/** A REST route beside the schema, limited once a minute. */
@Controller('rest')
export class RestController {
  @RateLimit({ minute: 1 })
  @Get()
  rest(): string {
    return 'rest';
  }
}

/** Every resolver of the schema. */
export const RESOLVERS = [LimitedResolver, PlainResolver, TownFieldsResolver, TickResolver];
