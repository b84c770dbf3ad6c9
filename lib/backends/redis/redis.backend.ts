import type { ConsumeQuery, ConsumeResult, RateLimitCounter } from '../rate-limit.backend.js';
import { FIXED_WINDOW_CONSUME_LUA, FIXED_WINDOW_RESET_LUA } from './fixed-window.lua.js';
import {
  RedisBackendBase,
  type RedisBackendClient,
  type RedisBackendOptions,
  type ScriptDefinition,
} from './redis-backend.base.js';
import { blockKey, fixedWindowKey, unitName } from './redis-keys.js';

export type { RedisBackendClient, RedisBackendOptions } from './redis-backend.base.js';

const CONSUME: ScriptDefinition = {
  name: 'nestjsRateLimitFixedV1',
  lua: FIXED_WINDOW_CONSUME_LUA,
};
const RESET: ScriptDefinition = {
  name: 'nestjsRateLimitFixedResetV1',
  lua: FIXED_WINDOW_RESET_LUA,
};

/**
 * Fixed-window counters in Redis (or Redis Cluster), shared by every process and host that uses
 * the same Redis and prefix. Decides exactly like `MemoryBackend`: a window per (counter, unit)
 * starts with the first request after the previous one ended and covers `[start, start +
 * window)` in milliseconds; a rejected request counts in no unit; a block belongs to the user,
 * across every counter, and is not extended by requests made while blocked.
 *
 * Each decision is one Lua script call (`EVALSHA`, reloaded transparently after `NOSCRIPT`) that
 * covers the block and every unit atomically. Time comes from Redis (`TIME`), never from the
 * application servers. All keys of one call share the user's hash tag, so they live in one slot
 * of a Cluster, and no user id, scope or method can reach into another counter's key.
 *
 * Keys: one hash per counter (`<prefix>{<user>}f:...`, a field per unit holding its count and
 * window end), expiring with its longest live window, and one key per blocked user; see
 * `redis-keys.ts` for the layout and the memory each key costs.
 *
 * @example
 * new RedisBackend(new Redis({ enableOfflineQueue: false, maxRetriesPerRequest: 0 }))
 * new RedisBackend('redis://localhost:6379') // creates, and on close() quits, its own client
 */
export class RedisBackend extends RedisBackendBase {
  /**
   * @param client an ioredis `Redis` or `Cluster` (stays yours), or a URL / ioredis options from
   *   which the backend creates its own client (ioredis is loaded then)
   * @param options key prefix and test hooks
   * @throws RateLimitConfigError (`RATE_LIMIT_INVALID_OPTION`) when an argument is invalid
   */
  constructor(client: RedisBackendClient, options?: RedisBackendOptions) {
    super('RedisBackend', [CONSUME, RESET], client, options);
  }

  /** Decides one request in one script call. See `RateLimitBackend` for the contract. */
  override async consume(query: ConsumeQuery): Promise<ConsumeResult> {
    const { counter, limits } = query;
    const args: (string | number)[] = [RedisBackendBase.blockArg(query.blockMs)];
    for (const limit of limits) args.push(unitName(limit), limit.limit, limit.windowMs);
    const keys = [fixedWindowKey(this.prefix, counter), blockKey(this.prefix, counter.user)];
    return this.parseConsume(await this.call(CONSUME, keys, args), query);
  }

  /**
   * Forgets every unit of one counter (one script call). The user's block, if any, stays.
   * @returns whether a live window existed in any unit
   */
  override async reset(counter: RateLimitCounter): Promise<boolean> {
    return this.parseFlag(await this.call(RESET, [fixedWindowKey(this.prefix, counter)], []));
  }
}
