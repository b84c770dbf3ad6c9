/**
 * One dead Redis Cluster master does not switch off the healthy ones. A 3-master cluster (no
 * replicas, `cluster-require-full-coverage no`, so the healthy masters keep serving their slots)
 * loses a master mid-run: a user whose slot lives on a healthy master is still limited exactly,
 * the users of the dead master follow the failure policy, the outage is logged once without
 * flapping, and the dead master's users are limited again once it is back.
 */
import { Cluster } from 'ioredis';
import { RateLimitModule, RedisBackend } from 'nestjs-ratelimit';
import { captureBackendLogs } from './support/backend-logs.js';
import { headerAuth, listenApp, type ListeningApp } from './support/nest-app.js';
import { startRedisCluster, type RedisClusterHandle } from './support/redis-harness.js';

const LIMIT = 5;
const ROUNDS = 20;
const ROUND_GAP_MS = 250;

describe('RedisBackend on a cluster with one master killed', () => {
  let cluster: RedisClusterHandle;
  let client: Cluster;
  let backend: RedisBackend;
  let running: ListeningApp;
  let logs: ReturnType<typeof captureBackendLogs>;

  beforeAll(async () => {
    logs = captureBackendLogs();
    cluster = await startRedisCluster({ extraArgs: ['--cluster-require-full-coverage', 'no'] });
    client = new Cluster([...cluster.nodes], {
      enableOfflineQueue: false,
      redisOptions: { maxRetriesPerRequest: 0, connectTimeout: 1_000 },
    });
    client.on('error', () => undefined);
    backend = new RedisBackend(client);
    running = await listenApp([
      // The default failure policy ('open') and timeout.
      RateLimitModule.forRoot({
        backend,
        authenticate: headerAuth,
        config: { '/': [{ minute: LIMIT }] },
      }),
    ]);
  }, 60_000);

  afterAll(async () => {
    await running?.close();
    client?.disconnect();
    await cluster?.stop();
    logs.restore();
  });

  /** The first user `<prefix>-<n>` whose keys live on master `node`. */
  function userOn(node: number, prefix: string): string {
    for (let n = 0; n < 10_000; n++) {
      const user = `${prefix}-${n}`;
      const slot = Number(/^hash slot (\d+)$/.exec(backend.partitionOf(user))![1]);
      if (cluster.nodeFor(slot).port === cluster.nodes[node]!.port) return user;
    }
    throw new Error(`no user on node ${node}`);
  }

  async function status(user: string): Promise<number> {
    const response = await fetch(`${running.url}/hello`, {
      headers: { user },
      signal: AbortSignal.timeout(5_000),
    });
    await response.arrayBuffer();
    return response.status;
  }

  it('limits the users of the healthy masters exactly, logs the outage once, and recovers', async () => {
    const healthy = userOn(0, 'healthy');
    const orphaned = userOn(2, 'orphaned');
    expect(await status(orphaned)).toBe(200);
    await cluster.servers[2]!.kill();

    const healthyStatuses: number[] = [];
    const orphanedStatuses: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      healthyStatuses.push(await status(healthy));
      orphanedStatuses.push(await status(orphaned));
      await new Promise((resolve) => setTimeout(resolve, ROUND_GAP_MS));
    }
    expect(healthyStatuses.filter((s) => s === 200)).toHaveLength(LIMIT);
    expect(healthyStatuses.filter((s) => s === 429)).toHaveLength(ROUNDS - LIMIT);
    // The dead master's user follows the failure policy ('open'): never a 5xx, never limited.
    expect(orphanedStatuses.every((s) => s === 200)).toBe(true);
    expect(logs.warnings()).toHaveLength(1);
    expect(logs.warnings()[0]).toMatch(
      /^The rate-limit backend RedisBackend\(Redis Cluster\) failed for hash slot \d+ /,
    );
    expect(logs.infos()).toEqual([]);

    // Back: the orphaned user is limited again (the restarted master keeps nothing on disk, so
    // its counter starts over), and the outage ends with one line.
    await cluster.servers[2]!.restart();
    const deadline = Date.now() + 20_000;
    let limitedAgain = false;
    for (let attempt = 0; attempt < 200 && Date.now() < deadline; attempt++) {
      if ((await status(orphaned)) === 429) {
        limitedAgain = true;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(limitedAgain).toBe(true);
    expect(logs.warnings()).toHaveLength(1);
    expect(logs.infos()).toHaveLength(1);
    expect(logs.infos()[0]).toMatch(
      /^The rate-limit backend RedisBackend\(Redis Cluster\) answers again after/,
    );
  }, 90_000);
});
