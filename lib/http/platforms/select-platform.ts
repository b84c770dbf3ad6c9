import type { HttpAdapterHost } from '@nestjs/core';
import type { HttpPlatform } from '../http-platform.js';
import { adapterPlatform } from './adapter.platform.js';
import { expressPlatform } from './express.platform.js';
import { fastifyPlatform } from './fastify.platform.js';

/**
 * The platform of the application's HTTP adapter, or `undefined` when it has none (an
 * application context, a pure microservice): then no HTTP request is ever limited.
 */
export function selectPlatform(host: HttpAdapterHost | undefined): HttpPlatform | undefined {
  // `null` in an application context without HTTP (createApplicationContext, a microservice).
  const adapter = host?.httpAdapter ?? undefined;
  if (adapter === undefined) return undefined;
  switch (adapter.getType()) {
    case 'express':
      return expressPlatform;
    case 'fastify':
      return fastifyPlatform;
    default:
      return adapterPlatform(adapter);
  }
}

/**
 * The platform for a response when no adapter is known (a filter created by hand with `new`):
 * Fastify's reply is told apart by its documented `raw` (Node's response) and `code()`.
 */
export function platformOfResponse(response: object): HttpPlatform {
  const reply = response as { raw?: unknown; code?: unknown };
  return reply.raw !== undefined && typeof reply.code === 'function'
    ? fastifyPlatform
    : expressPlatform;
}
