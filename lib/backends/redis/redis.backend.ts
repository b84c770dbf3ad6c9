import type { UnitLimit } from '../../rules/rule-units.js';
import type { ConsumeQuery, ConsumeResult, RateLimitCounter } from '../rate-limit.backend.js';
import { FIXED_WINDOW_CONSUME_LUA, FIXED_WINDOW_RESET_LUA } from './fixed-window.lua.js';
import {
  consumeTemplate,
  defineScript,
  RedisBackendBase,
  redisArg,
  UnitArgsCache,
  type ConsumeTemplate,
  type RedisBackendClient,
  type RedisBackendOptions,
} from './redis-backend.base.js';
import { fixedWindowKey, fixedWindowKeyAt } from './redis-keys.js';

export type { RedisBackendClient, RedisBackendOptions } from './redis-backend.base.js';

const CONSUME = defineScript(FIXED_WINDOW_CONSUME_LUA);
const RESET = defineScript(FIXED_WINDOW_RESET_LUA);

/**
 * The consume call's arguments for one `limits` (see fixed-window.lua.ts): after the keys, the
 * clock and the block, every limit, then every window in whole ms. A key lives whole milliseconds;
 * in whole-millisecond time a fractional window ends with the millisecond it rounds up to.
 */
function fixedWindowTemplate(limits: readonly UnitLimit[]): ConsumeTemplate {
  const args: string[] = [];
  for (const limit of limits) args.push(redisArg(limit.limit));
  for (const limit of limits) args.push(redisArg(Math.ceil(limit.windowMs)));
  return consumeTemplate(CONSUME, limits, args);
}

/**
 * Fixed-window counters in Redis (or Redis Cluster), shared by every process and host that uses
 * the same Redis and prefix. Decides exactly like `MemoryBackend`: a window per (counter, unit)
 * starts with the first request after the previous one ended and covers `[start, start +
 * window)` in milliseconds; a rejected request counts in no unit; a block belongs to the user,
 * across every counter, and is not extended by requests made while blocked.
 *
 * Each decision is one Lua script call (`EVALSHA`, reloaded transparently after `NOSCRIPT`) that
 * covers the block and every unit atomically. Time comes from Redis, never from the application
 * servers: a window is a key that lives exactly as long as the window (`PX`), so Redis's own
 * clock ends it and tells how long it has left. All keys of one call share the user's hash tag, so
 * they live in one slot of a Cluster, and no user id, scope or method can reach into another
 * counter's key.
 *
 * Keys: one string per running (counter, unit) window (`<prefix>{<user>}w:...`, holding its
 * count), and one per blocked user, each expiring when its window or block ends; see
 * `redis-keys.ts` for the layout and the memory each key costs.
 *
 * @example
 * new RedisBackend(new Redis({ enableOfflineQueue: false, maxRetriesPerRequest: 0 }))
 * new RedisBackend('redis://localhost:6379') // creates, and on close() quits, its own client
 */
export class RedisBackend extends RedisBackendBase {
  /** Each rule's call arguments, computed once per `limits` array. */
  private readonly templates = new UnitArgsCache(fixedWindowTemplate);

  /**
   * @param client an ioredis `Redis` or `Cluster` (stays yours), or a URL / ioredis options from
   *   which the backend creates its own client (ioredis is loaded then)
   * @param options key prefix and test hooks
   * @throws RateLimitConfigError (`RATE_LIMIT_INVALID_OPTION`) when an argument is invalid
   */
  constructor(client: RedisBackendClient, options?: RedisBackendOptions) {
    super('RedisBackend', client, options);
  }

  /** Decides one request in one script call. See `RateLimitBackend` for the contract. */
  override consume(query: ConsumeQuery): Promise<ConsumeResult> {
    return this.consumeWith(CONSUME, this.templates.get(query.limits), query, fixedWindowKeyAt);
  }

  /**
   * Forgets one counter's window in every unit (one script call). The user's block, if any,
   * stays. Covers the standard window of every unit (all that `Rule`s use) and any other window
   * length this process has used for a hand-built query.
   * @returns whether a window was running in any unit
   */
  override async reset(counter: RateLimitCounter): Promise<boolean> {
    const keys = this.resetWindows().map((window) => fixedWindowKey(this.prefix, counter, window));
    return this.parseFlag(await this.call(RESET, keys, []));
  }
}
