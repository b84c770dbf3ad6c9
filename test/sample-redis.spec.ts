/**
 * The sample on Redis, as `REDIS_URL=... npm start` and `REDIS_CLUSTER_NODES=... npm start` run
 * it: the same module, backed by a real single node or a real 3-master cluster.
 */
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { AppModule } from '../sample/app.module.js';
import { backendFromEnvironment, type SampleBackend } from '../sample/backend.js';
import { configureApp } from '../sample/setup.js';
import {
  startRedisCluster,
  startRedisServer,
  type RedisClusterHandle,
  type RedisServerHandle,
} from './support/redis-harness.js';

async function boot(sample: SampleBackend): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [AppModule.register(sample.backend)],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await configureApp(app);
  await app.init();
  return app;
}

/** Boots the sample on `sample`'s backend and checks its POST limit, then closes both. */
async function expectPostLimit(sample: SampleBackend): Promise<void> {
  const app = await boot(sample);
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++)
      statuses.push((await request(app.getHttpServer()).post('/towns').send({})).status);
    expect(statuses).toEqual([201, 201, 201, 429]);
  } finally {
    await app.close();
    await sample.close();
  }
}

describe('the sample on Redis', () => {
  let server: RedisServerHandle;
  let cluster: RedisClusterHandle;

  beforeAll(async () => {
    [server, cluster] = await Promise.all([startRedisServer(), startRedisCluster()]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([server?.stop(), cluster?.stop()]);
  });

  it.each([
    ['REDIS_URL', 'RedisBackend on redis://127.0.0.1:'],
    ['REDIS_URL with RATE_LIMIT_ALGORITHM=sliding', 'SlidingRedisBackend on redis://127.0.0.1:'],
  ])('%s', async (name, description) => {
    const sample = backendFromEnvironment({
      REDIS_URL: server.url,
      ...(name.includes('sliding') ? { RATE_LIMIT_ALGORITHM: 'sliding' } : {}),
    });
    expect(sample.description.startsWith(description)).toBe(true);
    // Both cases count the same caller on one server; the fixed and sliding backends keep
    // their counters under different keys, so neither sees the other's requests.
    await expectPostLimit(sample);
  });

  it('REDIS_CLUSTER_NODES', async () => {
    const sample = backendFromEnvironment({
      REDIS_CLUSTER_NODES: cluster.nodes.map(({ host, port }) => `${host}:${port}`).join(','),
    });
    expect(sample.description).toMatch(/^RedisBackend on Redis Cluster 127\.0\.0\.1:\d+,/);
    await expectPostLimit(sample);
  }, 30_000);
});
