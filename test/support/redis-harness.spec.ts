import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import {
  findFreeClusterPort,
  findFreePort,
  keySlot,
  startOwnedRedisServer,
  startRedisCluster,
  startRedisServer,
  type OwnedRedisServerHandle,
  type RedisClusterHandle,
} from './redis-harness.js';

/** True while a process with this PID exists (signal 0 only checks). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

/** Resolves the error code of a raw TCP connect to 127.0.0.1:port, or 'connected'. */
function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('timeout');
    }, 2_000);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(error.code ?? error.message);
    });
  });
}

/** Waits (bounded) until `predicate` holds. */
async function waitFor(what: string, predicate: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < timeoutMs / 10 && Date.now() < deadline; i++) {
    if (predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
}

describe('redis harness', () => {
  const clients: (Redis | Cluster)[] = [];
  const servers: { stop(): Promise<void> }[] = [];

  function track<T extends Redis | Cluster>(client: T): T {
    clients.push(client);
    return client;
  }

  function quietRedis(port: number, options: RedisOptions = {}): Redis {
    const client = track(new Redis({ ...options, host: '127.0.0.1', port }));
    client.on('error', () => undefined);
    return client;
  }

  afterAll(async () => {
    // Safety net for failed tests. Tests disconnect before stopping the server: disconnect() on a
    // client whose socket is already closed leaves ioredis's 2 s disconnect timer pending.
    for (const client of clients) if (client.status !== 'end') client.disconnect();
    await Promise.allSettled(servers.map((server) => server.stop()));
  });

  describe('ports', () => {
    it('findFreePort returns a port that is free on 127.0.0.1', async () => {
      const port = await findFreePort();
      expect(port).toBeGreaterThan(0);
      expect(port).toBeLessThanOrEqual(65_535);
      expect(await connectOutcome(port)).toBe('ECONNREFUSED');
    });

    it('findFreeClusterPort leaves room for the cluster bus port', async () => {
      const port = await findFreeClusterPort();
      expect(port + 10_000).toBeLessThanOrEqual(65_535);
      expect(await connectOutcome(port + 10_000)).toBe('ECONNREFUSED');
    });
  });

  describe('single node', () => {
    it('answers SET/GET through ioredis and stop() leaves nothing behind', async () => {
      const server = await startOwnedRedisServer();
      servers.push(server);
      expect(server.host).toBe('127.0.0.1');
      expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
      expect(server.port).not.toBe(6379);
      expect(processExists(server.pid)).toBe(true);
      expect(existsSync(server.dir)).toBe(true);

      const client = quietRedis(server.port);
      expect(await client.set('greeting', 'hello')).toBe('OK');
      expect(await client.get('greeting')).toBe('hello');
      client.disconnect();

      await server.stop();
      expect(processExists(server.pid)).toBe(false);
      expect(existsSync(server.dir)).toBe(false);
      expect(await connectOutcome(server.port)).toBe('ECONNREFUSED');
      await server.stop(); // idempotent
    });

    it('kill() makes commands fail; restart() brings it back on the same port', async () => {
      const server: OwnedRedisServerHandle = await startOwnedRedisServer();
      servers.push(server);
      const { port } = server;
      const firstPid = server.pid;
      const client = quietRedis(port, { retryStrategy: () => 50, maxRetriesPerRequest: 1 });
      await client.set('k', 'v');

      await server.kill();
      expect(processExists(firstPid)).toBe(false);
      expect(await connectOutcome(port)).toBe('ECONNREFUSED');
      await waitFor('ioredis to notice the dead server', () => client.status !== 'ready');
      await expect(client.get('k')).rejects.toThrow();
      await expect(server.kill()).resolves.toBeUndefined(); // already dead: no-op

      await server.restart();
      expect(server.port).toBe(port);
      expect(server.pid).not.toBe(firstPid);
      expect(processExists(server.pid)).toBe(true);
      // The client reconnects by itself; the restarted server is empty (no persistence).
      expect(await client.get('k')).toBeNull();
      expect(await client.set('k', 'v2')).toBe('OK');
      expect(await client.get('k')).toBe('v2');

      const secondPid = server.pid;
      client.disconnect();
      await server.stop();
      expect(processExists(secondPid)).toBe(false);
      await expect(server.restart()).rejects.toThrow(/stop\(\) was called/);
    });

    it('pause() makes the server hang without closing connections; resume() un-hangs it', async () => {
      const server = await startOwnedRedisServer();
      servers.push(server);
      const client = quietRedis(server.port, { commandTimeout: 300, maxRetriesPerRequest: 0 });
      expect(await client.ping()).toBe('PONG');

      await server.pause();
      await expect(client.ping()).rejects.toThrow(/timed out/i);
      await server.resume();
      expect(await client.ping()).toBe('PONG');
      client.disconnect();
      await server.stop();
    });

    it('passes extraArgs to redis-server', async () => {
      const server = await startOwnedRedisServer({ extraArgs: ['--maxmemory', '1mb'] });
      servers.push(server);
      const client = quietRedis(server.port);
      expect(await client.config('GET', 'maxmemory')).toEqual(['maxmemory', '1048576']);
      client.disconnect();
      await server.stop();
    });
  });

  describe('start-up failure', () => {
    it("reports redis-server's own output when it does not come up", async () => {
      await expect(
        startOwnedRedisServer({ extraArgs: ['--no-such-directive', 'x'] }),
      ).rejects.toThrow(
        /exited with code 1 during start-up[\s\S]*redis-server output[\s\S]*no-such-directive/,
      );
    });
  });

  describe('REDIS_URL', () => {
    const saved = process.env['REDIS_URL'];
    afterEach(() => {
      if (saved === undefined) delete process.env['REDIS_URL'];
      else process.env['REDIS_URL'] = saved;
    });

    it('startRedisServer returns a handle for the external server, which it never stops', async () => {
      const owned = await startOwnedRedisServer();
      servers.push(owned);
      process.env['REDIS_URL'] = owned.url;

      const external = await startRedisServer();
      expect(external.external).toBe(true);
      expect(external.pid).toBeUndefined();
      expect(external.url).toBe(owned.url);
      expect(external.port).toBe(owned.port);
      await expect(external.kill()).rejects.toThrow(/harness-started server/);
      await expect(external.restart()).rejects.toThrow(/startOwnedRedisServer/);
      await external.stop();
      expect(processExists(owned.pid)).toBe(true);

      // startOwnedRedisServer ignores REDIS_URL.
      const another = await startOwnedRedisServer();
      servers.push(another);
      expect(another.port).not.toBe(owned.port);
      await another.stop();
      await owned.stop();
    });

    it('refuses a REDIS_URL that is not loopback, without printing its password', async () => {
      process.env['REDIS_URL'] = 'redis://:hunter2@10.0.0.1:6379';
      const failure = startRedisServer();
      await expect(failure).rejects.toThrow(/not a loopback address/);
      await expect(failure).rejects.not.toThrow(/hunter2/);
    });

    it('spawns its own server when extraArgs are given, even with REDIS_URL set', async () => {
      process.env['REDIS_URL'] = 'redis://127.0.0.1:1';
      const server = await startRedisServer({ extraArgs: ['--maxmemory', '2mb'] });
      servers.push(server);
      expect(server.external).toBe(false);
      expect(server.pid).toEqual(expect.any(Number));
      await server.stop();
    });
  });

  describe('missing binaries', () => {
    const savedPath = process.env['PATH'];
    afterEach(() => {
      process.env['PATH'] = savedPath;
    });

    it('fails with an install hint instead of skipping', async () => {
      process.env['PATH'] = '/nonexistent-redis-harness-dir';
      await expect(startOwnedRedisServer()).rejects.toThrow(
        /redis-server.*apt-get install redis-server.*brew install redis/s,
      );
      await expect(startRedisCluster()).rejects.toThrow(/apt-get install redis-server/);
    });
  });

  describe('keySlot', () => {
    it('matches known CLUSTER KEYSLOT answers and honours hash tags', () => {
      expect(keySlot('foo')).toBe(12182);
      expect(keySlot('bar')).toBe(5061);
      expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'));
    });
  });

  describe('cluster', () => {
    let cluster: RedisClusterHandle;

    beforeAll(async () => {
      cluster = await startRedisCluster();
      servers.push(cluster);
    }, 30_000);

    it('has 3 masters on distinct loopback ports', () => {
      expect(cluster.nodes).toHaveLength(3);
      expect(new Set(cluster.nodes.map((node) => node.port)).size).toBe(3);
      for (const node of cluster.nodes) expect(node.host).toBe('127.0.0.1');
      for (const server of cluster.servers) expect(processExists(server.pid)).toBe(true);
    });

    it('serves SET/GET on keys in different slots through an ioredis Cluster client', async () => {
      const client = track(
        new Cluster([cluster.nodes[0]!], {
          clusterRetryStrategy: () => null,
          redisOptions: { maxRetriesPerRequest: 1 },
        }),
      );
      client.on('error', () => undefined);

      // One key per master, found by slot.
      const keyByPort = new Map<number, string>();
      for (let i = 0; i < 1_000 && keyByPort.size < 3; i++) {
        const key = `key:${i}`;
        const { port } = cluster.nodeFor(keySlot(key));
        if (!keyByPort.has(port)) keyByPort.set(port, key);
      }
      expect(keyByPort.size).toBe(3);

      for (const [port, key] of keyByPort) {
        expect(await client.cluster('KEYSLOT', key)).toBe(keySlot(key));
        expect(await client.set(key, `value-of-${key}`)).toBe('OK');
        expect(await client.get(key)).toBe(`value-of-${key}`);

        // The key really lives on the master nodeFor() names.
        const direct = quietRedis(port);
        expect(await direct.get(key)).toBe(`value-of-${key}`);
        direct.disconnect();
      }

      // Hash-tag edge cases agree with the server.
      for (const key of ['foo{}{bar}', 'foo{{bar}}zap', 'foo{bar}{zap}', '{', 'ключ', '']) {
        expect({ key, slot: keySlot(key) }).toEqual({
          key,
          slot: await client.cluster('KEYSLOT', key),
        });
      }
      client.disconnect();
    });

    it('stop() leaves no process behind', async () => {
      const pids = cluster.servers.map((server) => server.pid);
      await cluster.stop();
      for (const pid of pids) expect(processExists(pid)).toBe(false);
      for (const node of cluster.nodes)
        expect(await connectOutcome(node.port)).toBe('ECONNREFUSED');
    });
  });
});
