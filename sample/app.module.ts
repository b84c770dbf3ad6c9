import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import { Module, type DynamicModule } from '@nestjs/common';
import { GraphQLModule } from '@nestjs/graphql';
import { JwtModule } from '@nestjs/jwt';
import { MercuriusDriver, type MercuriusDriverConfig } from '@nestjs/mercurius';
import { RateLimitModule, type RateLimitBackend } from 'nestjs-ratelimit';
import { AdminController } from './admin.controller.js';
import { ApiKeyAuthResolver, ApiKeyService } from './api-keys.js';
import { AuthController } from './auth.controller.js';
import { CatalogController } from './catalog.controller.js';
import { ChatGateway } from './chat.gateway.js';
import { HomeController } from './home.controller.js';
import { JWT_SECRET, rateLimitOptions } from './rate-limit.config.js';
import { ReportsController } from './reports.controller.js';
import type { SampleAdapter } from './setup.js';
import { WeatherResolver } from './weather.resolver.js';

@Module({
  providers: [ApiKeyService, ApiKeyAuthResolver],
  exports: [ApiKeyService, ApiKeyAuthResolver],
})
export class ApiKeysModule {}

/**
 * GraphQL at /graphql, code-first with the schema kept in memory: Apollo on Express, Mercurius on
 * Fastify (Apollo's Nest driver needs an extra integration package on Fastify; Mercurius is
 * Fastify's own). The limiter needs nothing from either: the drivers' default context will do.
 */
function graphqlModule(adapter: SampleAdapter): DynamicModule {
  return adapter === 'fastify'
    ? GraphQLModule.forRoot<MercuriusDriverConfig>({
        driver: MercuriusDriver,
        autoSchemaFile: true,
      })
    : GraphQLModule.forRoot<ApolloDriverConfig>({ driver: ApolloDriver, autoSchemaFile: true });
}

/**
 * The sample application on `adapter`'s HTTP server (the default, Express, as `npm start`); the
 * `backend` lets tests pass a memory backend on a test clock.
 */
@Module({})
export class AppModule {
  static register(backend?: RateLimitBackend, adapter: SampleAdapter = 'express'): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ApiKeysModule,
        JwtModule.register({
          secret: JWT_SECRET,
          signOptions: { algorithm: 'HS256', expiresIn: '1h' },
        }),
        RateLimitModule.forRoot({ ...rateLimitOptions(backend), imports: [ApiKeysModule] }),
        graphqlModule(adapter),
      ],
      controllers: [
        HomeController,
        CatalogController,
        ReportsController,
        AuthController,
        AdminController,
      ],
      providers: [WeatherResolver, ChatGateway],
    };
  }
}
