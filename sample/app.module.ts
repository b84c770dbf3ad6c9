import { Module, type DynamicModule } from '@nestjs/common';
import { JwtModule } from '@nestjs/jwt';
import { RateLimitModule, type RateLimitBackend } from 'nestjs-ratelimit';
import { ApiKeyAuthResolver, ApiKeyService } from './api-keys.js';
import { AuthController } from './auth.controller.js';
import { CatalogController } from './catalog.controller.js';
import { HomeController } from './home.controller.js';
import { JWT_SECRET, rateLimitOptions } from './rate-limit.config.js';
import { ReportsController } from './reports.controller.js';

@Module({
  providers: [ApiKeyService, ApiKeyAuthResolver],
  exports: [ApiKeyService, ApiKeyAuthResolver],
})
export class ApiKeysModule {}

/** The sample application; `backend` lets tests pass a memory backend on a test clock. */
@Module({})
export class AppModule {
  static register(backend?: RateLimitBackend): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ApiKeysModule,
        JwtModule.register({
          secret: JWT_SECRET,
          signOptions: { algorithm: 'HS256', expiresIn: '1h' },
        }),
        RateLimitModule.forRoot({ ...rateLimitOptions(backend), imports: [ApiKeysModule] }),
      ],
      controllers: [HomeController, CatalogController, ReportsController, AuthController],
    };
  }
}
