import {
  Inject,
  Injectable,
  Optional,
  type ExecutionContext,
  type OnModuleInit,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { RATE_LIMIT_OPTIONS } from '../rate-limit.constants.js';
import type { RateLimitModuleOptions } from '../rate-limit.options.js';
import type { ContextReader } from './contexts/context-edge.js';
import { contextReaders } from './contexts/context-readers.js';
import type { HttpPlatform } from './http-platform.js';
import { expressPlatform } from './platforms/express.platform.js';
import { platformOfResponse, selectPlatform } from './platforms/select-platform.js';

/**
 * The module's one edge to the transports: which calls are limited at all (the `contexts`
 * option), how each kind of call is read, and how the application's HTTP adapter reads requests
 * and writes responses. The service, the guard and the filter go through it and never touch a
 * request, a response or a client socket themselves.
 */
@Injectable()
export class RateLimitEdge implements OnModuleInit {
  private readonly readers: Map<string, ContextReader>;
  /** The reader of HTTP calls (undefined when they are not limited): most calls, no lookup. */
  private readonly httpReader: ContextReader | undefined;
  private adapterPlatform: HttpPlatform | undefined;
  /** The Express application, whose `trust proxy` setting WebSocket handshakes follow too. */
  private expressApp: unknown;

  constructor(
    @Inject(RATE_LIMIT_OPTIONS) options: Pick<RateLimitModuleOptions, 'contexts'>,
    @Optional() private readonly adapterHost?: HttpAdapterHost,
  ) {
    this.readers = contextReaders(options.contexts, () => this.expressApp);
    this.httpReader = this.readers.get('http');
  }

  /** The adapter is known once the application exists, which is after providers are created. */
  onModuleInit(): void {
    this.adapterPlatform = selectPlatform(this.adapterHost);
    const adapter = this.adapterHost?.httpAdapter ?? undefined;
    if (adapter?.getType() === 'express') this.expressApp = adapter.getInstance();
  }

  /** How `context` is read, or `undefined` when its type is not limited (`contexts`). */
  readerOf(context: ExecutionContext): ContextReader | undefined {
    const type = context.getType();
    return type === 'http' ? this.httpReader : this.readers.get(type);
  }

  /** The application's HTTP platform (Express's until the module has started). */
  get platform(): HttpPlatform {
    return this.adapterPlatform ?? expressPlatform;
  }

  /** The platform that writes `response`: the application's, or told by its shape. */
  platformFor(response: object): HttpPlatform {
    return this.adapterPlatform ?? platformOfResponse(response);
  }
}
