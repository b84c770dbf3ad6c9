/**
 * The kinds of call the module can limit, as Nest's `ExecutionContext.getType()` names them
 * (`'graphql'` is what `@nestjs/graphql` reports for a resolver call).
 */
export type RateLimitContextType = 'http' | 'graphql' | 'ws' | 'rpc';

/** Every context type, in the order the `contexts` option documents them. */
export const RATE_LIMIT_CONTEXT_TYPES: readonly RateLimitContextType[] = Object.freeze([
  'http',
  'graphql',
  'ws',
  'rpc',
]);
