import { Query, Resolver } from '@nestjs/graphql';
import { RateLimit } from 'nestjs-ratelimit';

/**
 * A code-first GraphQL resolver. `@RateLimit` counts each call of the field per caller, who is
 * identified from the GraphQL request by the same resolvers as over REST; the 3rd call in a
 * minute is a GraphQL error with `extensions.code: 'TOO_MANY_REQUESTS'` and `retryAfter`.
 */
@Resolver()
export class WeatherResolver {
  @RateLimit({ minute: 2 })
  @Query(() => String, { description: "Today's forecast; 2 a minute per caller." })
  forecast(): string {
    return 'sunny';
  }
}
