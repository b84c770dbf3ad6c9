import { applyDecorators, SetMetadata, UseInterceptors } from '@nestjs/common';
import { RATE_LIMIT_RULES } from '../rate-limit.constants.js';
import { RateLimitInterceptor } from '../rate-limit.interceptor.js';
import { Rule, type RuleInput } from '../rules/rule.js';

/**
 * Limits a controller or a handler. The rules are tried in order and the first one for the
 * caller's group and the request method is used. A handler's rules come before its controller's,
 * which come before the pattern table; a list without a rule for the caller falls through to the
 * next. Without a `zone`, decorator rules count per handler.
 *
 * The rules are validated when the decorator runs, so a bad one fails at start-up. A rule with
 * `count: 'failures' | 'successes'` also puts `RateLimitInterceptor` on the class or handler, to
 * see the outcome of GraphQL, WebSocket and microservice calls (no other handler pays for it).
 *
 * @example
 * @RateLimit({ minute: 10 }, { group: 'admin' })
 * @Get('search')
 * search() {}
 */
export function RateLimit(...rules: (Rule | RuleInput)[]): ClassDecorator & MethodDecorator {
  const compiled = Object.freeze(
    rules.map((rule, index) => Rule.from(rule, `@RateLimit() rule ${index + 1}`)),
  );
  const rulesMetadata = SetMetadata(RATE_LIMIT_RULES, compiled);
  if (compiled.every((rule) => rule.count === 'all')) return rulesMetadata;
  return applyDecorators(rulesMetadata, UseInterceptors(RateLimitInterceptor));
}
