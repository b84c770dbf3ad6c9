import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { MemoryBackend } from './backends/memory.backend.js';
import { RateLimitBackend } from './backends/rate-limit.backend.js';
import { RateLimitEdge } from './http/rate-limit-edge.js';
import { RATE_LIMIT_OPTIONS } from './rate-limit.constants.js';
import { RateLimitExceptionFilter } from './rate-limit.filter.js';
import { assertValidOptions } from './rate-limit.options-validation.js';
import { RateLimitAdmin } from './rate-limit.admin.js';
import { RateLimitGuard } from './rate-limit.guard.js';
import { RateLimitInterceptor } from './rate-limit.interceptor.js';
import { ConfigurableRateLimitModule } from './rate-limit.module-definition.js';
import type { RateLimitModuleOptions } from './rate-limit.options.js';
import { RateLimitService } from './rate-limit.service.js';

/**
 * Rate limiting for the whole application.
 *
 * `RateLimitModule.forRoot({ backend, authenticate, config })` registers a global guard that
 * applies the pattern table and the `@RateLimit()` decorators, and a global filter that answers
 * over-limit requests with a 429. `forRootAsync({ imports, inject, useFactory | useClass |
 * useExisting })` builds the same options from other providers, such as `ConfigService`.
 *
 * `RateLimitBackend`, `RateLimitService` and `RateLimitAdmin` are exported (globally, unless `isGlobal: false`).
 *
 * @example
 * RateLimitModule.forRoot({
 *   config: { '^/towns': [{ second: 1 }, { group: 'admin' }] },
 * })
 */
@Module({
  // Nest's public discovery API, to check every @RateLimit() rule against the backend at start-up.
  imports: [DiscoveryModule],
  providers: [
    {
      provide: RateLimitBackend,
      // The first provider to read the options, so it validates them: bad options stop start-up.
      useFactory: (options: RateLimitModuleOptions) => {
        assertValidOptions(options);
        return options.backend ?? new MemoryBackend();
      },
      inject: [RATE_LIMIT_OPTIONS],
    },
    RateLimitEdge,
    RateLimitService,
    RateLimitAdmin,
    RateLimitGuard,
    RateLimitInterceptor,
    RateLimitExceptionFilter,
  ],
  exports: [
    RateLimitEdge,
    RateLimitBackend,
    RateLimitService,
    RateLimitAdmin,
    RateLimitGuard,
    RateLimitInterceptor,
    RateLimitExceptionFilter,
    RATE_LIMIT_OPTIONS,
  ],
})
export class RateLimitModule extends ConfigurableRateLimitModule {}
