import { ConfigurableModuleBuilder, type DynamicModule, type Provider } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { RATE_LIMIT_OPTIONS } from './rate-limit.constants.js';
import { RateLimitExceptionFilter } from './rate-limit.filter.js';
import { RateLimitGuard } from './rate-limit.guard.js';
import type { RateLimitModuleExtras, RateLimitModuleOptions } from './rate-limit.options.js';

export { RATE_LIMIT_OPTIONS };

/** Extras every definition starts from; `forRoot()` / `forRootAsync()` override them. */
const DEFAULT_EXTRAS: RateLimitModuleExtras = {
  isGlobal: true,
  useGlobalGuard: true,
  useGlobalFilter: true,
};

/** Applies the structural extras: global scope, the global guard and filter, extra imports. */
function applyExtras(definition: DynamicModule, extras: RateLimitModuleExtras): DynamicModule {
  const providers: Provider[] = [...(definition.providers ?? [])];
  if (extras.useGlobalGuard !== false)
    providers.push({ provide: APP_GUARD, useExisting: RateLimitGuard });
  if (extras.useGlobalFilter !== false) {
    providers.push({ provide: APP_FILTER, useExisting: RateLimitExceptionFilter });
  }
  // forRootAsync() already put its `imports` in the definition; a Set keeps each module once.
  const imports = [...new Set([...(definition.imports ?? []), ...(extras.imports ?? [])])];
  return { ...definition, global: extras.isGlobal !== false, imports, providers };
}

export const {
  ConfigurableModuleClass: ConfigurableRateLimitModule,
  OPTIONS_TYPE: RATE_LIMIT_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: RATE_LIMIT_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<RateLimitModuleOptions>({
  moduleName: 'RateLimit',
  optionsInjectionToken: RATE_LIMIT_OPTIONS,
})
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createRateLimitOptions')
  .setExtras<RateLimitModuleExtras>(DEFAULT_EXTRAS, applyExtras)
  .build();
