import { SetMetadata } from '@nestjs/common';
import { RATE_LIMIT_RULES } from '../rate-limit.constants.js';
import { Rule, type RuleInput } from '../rules/rule.js';

/**
 * Limits a controller or a handler. The rules are tried in order and the first one for the
 * caller's group and the request method is used. A handler's rules come before its controller's,
 * which come before the pattern table; a list without a rule for the caller falls through to the
 * next. Without a `zone`, decorator rules count per handler.
 *
 * The rules are validated when the decorator runs, so a bad one fails at start-up.
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
  return SetMetadata(RATE_LIMIT_RULES, compiled);
}
