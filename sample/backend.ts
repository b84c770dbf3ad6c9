import { Cluster } from 'ioredis';
import { RedisBackend, SlidingRedisBackend, type RateLimitBackend } from 'nestjs-ratelimit';

/** Which backend the sample uses, and a line saying so at start-up. */
export interface SampleBackend {
  backend: RateLimitBackend | undefined;
  description: string;
  /** Closes what the sample itself opened (a user-supplied cluster client stays the caller's). */
  close(): Promise<void>;
}

/**
 * Picks the backend from the environment:
 * - `REDIS_CLUSTER_NODES=127.0.0.1:7000,127.0.0.1:7001`: Redis Cluster, through an ioredis
 *   `Cluster` created without an offline queue, so a request never waits on a dead cluster;
 * - `REDIS_URL=redis://127.0.0.1:6379`: one Redis node (the backend creates its own client);
 * - neither: the in-process memory backend.
 * `RATE_LIMIT_ALGORITHM=sliding` picks SlidingRedisBackend instead of the fixed window.
 */
export function backendFromEnvironment(env: NodeJS.ProcessEnv = process.env): SampleBackend {
  const Backend = env.RATE_LIMIT_ALGORITHM === 'sliding' ? SlidingRedisBackend : RedisBackend;
  if (env.REDIS_CLUSTER_NODES) {
    const nodes = env.REDIS_CLUSTER_NODES.split(',').map((node) => {
      const [host, port] = node.trim().split(':');
      return { host: host || '127.0.0.1', port: Number(port || 6379) };
    });
    const cluster = new Cluster(nodes, {
      enableOfflineQueue: false,
      redisOptions: { maxRetriesPerRequest: 0, connectTimeout: 1_000 },
    });
    return {
      backend: new Backend(cluster),
      description: `${Backend.name} on Redis Cluster ${env.REDIS_CLUSTER_NODES}`,
      close: async () => {
        cluster.disconnect();
      },
    };
  }
  if (env.REDIS_URL) {
    return {
      backend: new Backend(env.REDIS_URL),
      description: `${Backend.name} on ${env.REDIS_URL.replace(/\/\/[^@/]*@/, '//***@')}`,
      close: async () => undefined,
    };
  }
  return {
    backend: undefined,
    description: 'MemoryBackend (set REDIS_URL to use Redis)',
    close: async () => undefined,
  };
}
