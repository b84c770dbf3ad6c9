/**
 * One HTTP variant in its own process: `node server.js '<ServerSpec as JSON>'`, forked by the
 * driver with an IPC channel. Listens on a free 127.0.0.1 port, reports it, answers the driver's
 * resource samples (CPU, RSS) and stops when told, or as soon as the driver goes away.
 *
 * @module
 */
import 'reflect-metadata';
import type { INestApplication, NestApplicationOptions } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { RateLimitGuard } from 'nestjs-ratelimit';
import type { AddressInfo } from 'node:net';
import { buildApp, type BuiltApp } from './apps.js';
import {
  VARIANTS,
  type DriverMessage,
  type ServerMessage,
  type ServerSample,
  type ServerSpec,
} from './variants.js';

/** Longest a graceful stop may take before the process exits anyway. */
const STOP_TIMEOUT_MS = 5_000;

function send(message: ServerMessage): void {
  process.send?.(message);
}

const guardTime = { ns: 0n, calls: 0 };

/**
 * Wraps `RateLimitGuard.prototype.canActivate` to add up the wall time of its synchronous part
 * (all of it for the memory backend, which decides synchronously).
 */
function timeGuard(): void {
  const original = RateLimitGuard.prototype.canActivate;
  RateLimitGuard.prototype.canActivate = function (this: RateLimitGuard, context) {
    const started = process.hrtime.bigint();
    try {
      return original.call(this, context);
    } finally {
      guardTime.ns += process.hrtime.bigint() - started;
      guardTime.calls++;
    }
  };
}

function sample(spec: ServerSpec): ServerSample {
  const cpu = process.cpuUsage();
  const memory = process.memoryUsage();
  return {
    userUs: cpu.user,
    systemUs: cpu.system,
    rssBytes: memory.rss,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    heapUsedBytes: memory.heapUsed,
    ...(spec.timeGuard === true
      ? { guardNs: Number(guardTime.ns), guardCalls: guardTime.calls }
      : {}),
  };
}

/**
 * The Nest application on the variant's adapter. `@nestjs/platform-fastify` is loaded only by the
 * Fastify variants, so an Express server's memory and start-up are not charged for it.
 */
async function createApp(spec: ServerSpec, built: BuiltApp): Promise<INestApplication> {
  const options: NestApplicationOptions = { logger: ['error', 'warn'] };
  if (VARIANTS[spec.variant].platform === 'express') {
    return NestFactory.create(built.module, options);
  }
  const { FastifyAdapter } = await import('@nestjs/platform-fastify');
  return NestFactory.create(built.module, new FastifyAdapter(), options);
}

async function main(): Promise<void> {
  if (process.send === undefined) throw new Error('server.js must be forked with an IPC channel');
  // Never outlive the driver, whatever happens to it.
  process.on('disconnect', () => process.exit(0));

  const spec = JSON.parse(process.argv[2] ?? '') as ServerSpec;
  if (spec.timeGuard === true) timeGuard();
  const built = await buildApp(spec);
  const app = await createApp(spec, built);
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;

  let stopping = false;
  process.on('message', (message: DriverMessage) => {
    if (message.type === 'sample') {
      send({ type: 'sample', id: message.id, sample: sample(spec) });
    } else if (message.type === 'stop' && !stopping) {
      stopping = true;
      setTimeout(() => process.exit(0), STOP_TIMEOUT_MS).unref();
      void app
        .close()
        .then(built.cleanup)
        .finally(() => process.exit(0));
    }
  });
  send({ type: 'ready', port });
}

main().catch((error: unknown) => {
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  send({ type: 'error', message });
  console.error(message);
  process.exit(1);
});
