import { ConfigurableModuleBuilder, type DynamicModule, type Provider } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { describeValue, optionFailure, type FailOption } from './config-validation.js';
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

/** Extras that switch something on or off. */
const SWITCHES = ['isGlobal', 'useGlobalGuard', 'useGlobalFilter'] as const;

const fail: FailOption = optionFailure('RateLimitModule');

/**
 * Checks the extras' types: a string such as `'false'` (from an environment variable) would
 * otherwise switch the guard on, since only `false` turns it off.
 */
function assertValidExtras(extras: RateLimitModuleExtras): void {
  for (const name of SWITCHES) {
    const value: unknown = extras[name];
    if (value !== undefined && typeof value !== 'boolean') {
      fail(name, `expected true or false, got ${describeValue(value)}.`);
    }
  }
  const imports: unknown = extras.imports;
  if (imports !== undefined && !Array.isArray(imports)) {
    fail('imports', `expected an array of modules, got ${describeValue(imports)}.`);
  }
}

/** Applies the structural extras: global scope, the global guard and filter, extra imports. */
function applyExtras(definition: DynamicModule, extras: RateLimitModuleExtras): DynamicModule {
  assertValidExtras(extras);
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
