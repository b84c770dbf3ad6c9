import { Cluster, Redis } from 'ioredis';
import { describeClient, describeSource, urlWithoutPassword } from './redis-address.js';

describe('Redis addresses in log lines', () => {
  it.each([
    ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379'],
    ['redis://:hunter2@127.0.0.1:6379/0', 'redis://127.0.0.1:6379/0'],
    ['rediss://app:hunter2@cache.example.com:6380/2', 'rediss://app@cache.example.com:6380/2'],
    ['redis://127.0.0.1:6379/0?password=hunter2&db=1', 'redis://127.0.0.1:6379/0?db=1'],
    ['/var/run/redis.sock', '/var/run/redis.sock'],
    ['app:hunter2@cache:6379', 'cache:6379'],
  ])('shows %s as %s', (url, shown) => {
    expect(urlWithoutPassword(url)).toBe(shown);
  });

  it('names a host and port from ioredis options, with their defaults', () => {
    expect(describeSource({ host: '10.0.0.5', port: 6380, password: 'hunter2' })).toBe(
      '10.0.0.5:6380',
    );
    expect(describeSource({ host: '::1' })).toBe('[::1]:6379');
    expect(describeSource({})).toBe('localhost:6379');
    expect(describeSource({ path: '/tmp/redis.sock' })).toBe('/tmp/redis.sock');
  });

  it("reads a client's address from its documented options", () => {
    const clients = [
      new Redis('redis://:hunter2@127.0.0.1:6390/1', { lazyConnect: true }),
      new Redis({ path: '/tmp/redis.sock', lazyConnect: true }),
      new Cluster([{ host: '127.0.0.1', port: 7000 }], { lazyConnect: true }),
    ];
    try {
      expect(clients.map(describeClient)).toEqual([
        '127.0.0.1:6390',
        '/tmp/redis.sock',
        'Redis Cluster',
      ]);
    } finally {
      for (const client of clients) client.disconnect();
    }
  });
});
