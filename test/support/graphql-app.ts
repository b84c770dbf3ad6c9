/**
 * Real GraphQL applications for the e2e tests: `@nestjs/graphql` with the Apollo driver on
 * Express and with the Mercurius driver on Fastify, code-first with the schema kept in memory
 * (`autoSchemaFile: true`), each listening on a loopback port so that HTTP and WebSocket clients
 * reach it as a user's would. The drivers keep their default GraphQL context: the tests add no
 * `context` function, as a user adds none for the limiter.
 */
import type { DynamicModule, INestApplication, Provider, Type } from '@nestjs/common';
import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import { GraphQLModule } from '@nestjs/graphql';
import { MercuriusDriver, type MercuriusDriverConfig } from '@nestjs/mercurius';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Test, type TestingModule } from '@nestjs/testing';
import { createClient, type Client } from 'graphql-ws';
import request from 'supertest';
import WebSocket from 'ws';
import {
  MemoryBackend,
  RateLimitModule,
  type RateLimitModuleExtras,
  type RateLimitModuleOptions,
} from 'nestjs-ratelimit';
import { TestClock } from './nest-app.js';

/** One GraphQL driver on its HTTP adapter. */
export interface GraphqlDriverSetup {
  readonly name: 'apollo' | 'mercurius';
  readonly adapter: 'express' | 'fastify';
  /** `GraphQLModule.forRoot` for this driver; `fieldGuards` runs guards on `@ResolveField`. */
  module(options: { fieldGuards: boolean }): DynamicModule;
  /** The Nest application on the driver's adapter; `trustProxy` is the adapter's own setting. */
  create(moduleRef: TestingModule, options: { trustProxy: boolean }): INestApplication;
}

/** The two drivers the tests run on, as their documentation sets them up. */
export const GRAPHQL_DRIVERS: readonly GraphqlDriverSetup[] = [
  {
    name: 'apollo',
    adapter: 'express',
    module: ({ fieldGuards }) =>
      GraphQLModule.forRoot<ApolloDriverConfig>({
        driver: ApolloDriver,
        autoSchemaFile: true,
        graphiql: false,
        fieldResolverEnhancers: fieldGuards ? ['guards'] : [],
        subscriptions: { 'graphql-ws': true },
      }),
    create: (moduleRef, { trustProxy }) => {
      const app = moduleRef.createNestApplication<NestExpressApplication>({ logger: false });
      app.set('trust proxy', trustProxy);
      return app;
    },
  },
  {
    name: 'mercurius',
    adapter: 'fastify',
    module: ({ fieldGuards }) =>
      GraphQLModule.forRoot<MercuriusDriverConfig>({
        driver: MercuriusDriver,
        autoSchemaFile: true,
        graphiql: false,
        fieldResolverEnhancers: fieldGuards ? ['guards'] : [],
        subscription: true,
      }),
    create: (moduleRef, { trustProxy }) =>
      moduleRef.createNestApplication<NestFastifyApplication>(new FastifyAdapter({ trustProxy }), {
        logger: false,
      }),
  },
];

export interface GraphqlAppOptions {
  /** Module options; a MemoryBackend on the test clock is used unless a backend is given. */
  rateLimit?: RateLimitModuleOptions & RateLimitModuleExtras;
  resolvers: readonly Type<unknown>[];
  controllers?: readonly Type<unknown>[];
  providers?: readonly Provider[];
  /** `fieldResolverEnhancers: ['guards']` (default true). */
  fieldGuards?: boolean;
  /** The adapter trusts every proxy (Express's `trust proxy`, Fastify's `trustProxy`); default false. */
  trustProxy?: boolean;
}

/** What one GraphQL HTTP request answered. */
export interface GraphqlResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly body: {
    data?: Record<string, unknown> | null;
    errors?: readonly GraphqlErrorBody[];
  };
}

/** A GraphQL error as it is sent. */
export interface GraphqlErrorBody {
  readonly message: string;
  readonly path?: readonly (string | number)[];
  readonly extensions?: Record<string, unknown>;
}

export interface GraphqlTestApp {
  readonly app: INestApplication;
  readonly clock: TestClock;
  /** `ws://127.0.0.1:<port>/graphql`. */
  readonly wsUrl: string;
  /** POSTs one operation to `/graphql`. */
  query(
    query: string,
    headers?: Record<string, string>,
    variables?: Record<string, unknown>,
  ): Promise<GraphqlResponse>;
  /** A GET to another path of the same app (for REST controllers beside the schema). */
  get(path: string, headers?: Record<string, string>): Promise<request.Response>;
  /**
   * A graphql-ws client (the `graphql-transport-ws` protocol, which both drivers speak) on a new
   * connection; `headers` go on the handshake, `connectionParams` in `connection_init`.
   */
  wsClient(options?: {
    headers?: Record<string, string>;
    connectionParams?: Record<string, unknown>;
  }): Client;
  close(): Promise<void>;
}

/** Boots a real GraphQL application on `driver` and listens on 127.0.0.1. */
export async function createGraphqlApp(
  driver: GraphqlDriverSetup,
  options: GraphqlAppOptions,
): Promise<GraphqlTestApp> {
  const clock = new TestClock();
  const {
    rateLimit = {},
    resolvers,
    controllers = [],
    providers = [],
    fieldGuards = true,
    trustProxy = false,
  } = options;
  const backend = rateLimit.backend ?? new MemoryBackend({ clock: clock.read, sweepIntervalMs: 0 });
  const moduleRef = await Test.createTestingModule({
    imports: [RateLimitModule.forRoot({ ...rateLimit, backend }), driver.module({ fieldGuards })],
    controllers: [...controllers],
    providers: [...resolvers, ...providers],
  }).compile();
  const app = driver.create(moduleRef, { trustProxy });
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address() as { port: number };
  const clients: Client[] = [];
  const http = () => request(app.getHttpServer());
  return {
    app,
    clock,
    wsUrl: `ws://127.0.0.1:${address.port}/graphql`,
    query: async (query, headers = {}, variables) => {
      const response = await http()
        .post('/graphql')
        .set({ 'content-type': 'application/json', ...headers })
        .send(JSON.stringify({ query, variables }));
      return {
        status: response.status,
        headers: response.headers as Record<string, string | undefined>,
        body: response.body as GraphqlResponse['body'],
      };
    },
    get: (path, headers = {}) => http().get(path).set(headers),
    wsClient: ({ headers, connectionParams } = {}) => {
      const client = createClient({
        url: `ws://127.0.0.1:${address.port}/graphql`,
        webSocketImpl: handshakeWebSocket(headers),
        connectionParams,
        lazy: true,
        retryAttempts: 0,
      });
      clients.push(client);
      return client;
    },
    close: async () => {
      await Promise.all(clients.map((client) => client.dispose()));
      await app.close();
    },
  };
}

/** `ws`'s client with fixed handshake headers (the browser's WebSocket cannot send any). */
function handshakeWebSocket(headers: Record<string, string> | undefined): unknown {
  if (headers === undefined) return WebSocket;
  return class extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols, { headers });
    }
  };
}

/** What one subscription delivered: its values, and the errors it ended with. */
export interface SubscriptionOutcome {
  readonly data: readonly (Record<string, unknown> | null | undefined)[];
  readonly errors: readonly GraphqlErrorBody[];
}

/**
 * Subscribes on `client` and collects what arrives until the subscription completes (at most 10
 * results, within 5 s). A resolver's error reaches the client as a result with `errors` (Apollo's
 * graphql-ws) or as an `error` message (Mercurius): both end up in `errors`.
 */
export async function subscribe(client: Client, query: string): Promise<SubscriptionOutcome> {
  const data: SubscriptionOutcome['data'][number][] = [];
  const errors: GraphqlErrorBody[] = [];
  const iterator = client.iterate({ query });
  const deadline = setTimeout(() => void iterator.return?.(), 5_000);
  try {
    for await (const result of iterator) {
      if (result.errors) errors.push(...(result.errors as GraphqlErrorBody[]));
      else data.push(result.data as Record<string, unknown> | null | undefined);
      if (data.length + errors.length >= 10) break;
    }
  } catch (thrown) {
    // graphql-ws's client throws the `error` message's errors, or the close event.
    if (!Array.isArray(thrown)) throw thrown;
    errors.push(...(thrown as GraphqlErrorBody[]));
  } finally {
    clearTimeout(deadline);
  }
  return { data, errors };
}
