/**
 * Where a Redis backend connects, as log lines show it: never with a password.
 *
 * @module
 */
import type { RedisClientLike, RedisConnectionOptions } from './redis-client.js';

/** ioredis's defaults for a client given neither a host nor a port. */
const DEFAULT_HOST = 'localhost';
const DEFAULT_PORT = 6379;

/** `host:port`, with an IPv6 host in brackets. */
function hostPort(host: string, port: number | string): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * A connection URL without its password (in the user part or a `password` query parameter). A
 * string that is no URL (a socket path, `host:port`) is shown as it is, minus anything up to an
 * `@`, in case it holds credentials anyway.
 */
export function urlWithoutPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.host !== '') {
      parsed.password = '';
      parsed.searchParams.delete('password');
      return parsed.toString();
    }
  } catch {
    // not a URL: handled below
  }
  const at = url.lastIndexOf('@');
  return at === -1 ? url : url.slice(at + 1);
}

/** Where a client created from `source` (a URL or ioredis options) connects. */
export function describeSource(source: string | RedisConnectionOptions): string {
  if (typeof source === 'string') return urlWithoutPassword(source);
  if (typeof source.path === 'string') return source.path;
  return hostPort(source.host ?? DEFAULT_HOST, source.port ?? DEFAULT_PORT);
}

/**
 * Where a client passed in connects, read from its documented `options`: `host:port` or the
 * socket path of a `Redis`; `'Redis Cluster'` for a `Cluster` (whose options name no address:
 * the start-up report names the node that failed).
 */
export function describeClient(client: RedisClientLike): string {
  const options = client.options;
  if (typeof options?.path === 'string' && options.path !== '') return options.path;
  if (typeof options?.host === 'string' && options.port !== undefined) {
    return hostPort(options.host, options.port);
  }
  // `nodes()` is the documented Cluster method to list its nodes; a single-node Redis has none.
  if (typeof Reflect.get(client, 'nodes') === 'function') return 'Redis Cluster';
  return 'an ioredis client';
}
