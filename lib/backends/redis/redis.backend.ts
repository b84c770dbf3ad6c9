import type { UnitLimit } from '../../rules/rule-units.js';
import type { ConsumeQuery, ConsumeResult, RateLimitCounter } from '../rate-limit.backend.js';
import { FIXED_WINDOW_CONSUME_LUA, FIXED_WINDOW_RESET_LUA } from './fixed-window.lua.js';
import {
  defineScript,
  RedisBackendBase,
  redisArg,
  SCRIPT_FIRST_KEY,
  scriptArgv,
  UnitArgsCache,
  type RedisBackendClient,
  type RedisBackendOptions,
} from './redis-backend.base.js';
import {
  blockKeyAt,
  counterPart,
  fixedWindowKey,
  fixedWindowKeyAt,
  unitName,
  userKeyStart,
} from './redis-keys.js';

export type { RedisBackendClient, RedisBackendOptions } from './redis-backend.base.js';

const CONSUME = defineScript(FIXED_WINDOW_CONSUME_LUA);
const RESET = defineScript(FIXED_WINDOW_RESET_LUA);

/** Where the consume script's arguments go in the call (see fixed-window.lua.ts). */
const HASH_KEY = SCRIPT_FIRST_KEY;
const BLOCK_KEY = SCRIPT_FIRST_KEY + 1;
const BLOCK_MS = SCRIPT_FIRST_KEY + 3;

/**
 * The consume call's arguments for one `limits`, with the per-request slots (keys, clock, block)
 * left empty: the script and 2 keys, the two keys, the clock, the block, then every unit's field
 * name, every limit, every window. Copied per call, then filled in.
 */
function consumeTemplate(limits: readonly UnitLimit[]): readonly (string | number)[] {
  const argv = scriptArgv(CONSUME, 2);
  argv.push('', '', '', 0);
  for (const limit of limits) argv.push(unitName(limit));
  for (const limit of limits) argv.push(redisArg(limit.limit));
  for (const limit of limits) argv.push(redisArg(limit.windowMs));
  return argv;
}

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
  /** Each rule's call arguments, computed once per `limits` array. */
  private readonly templates = new UnitArgsCache(consumeTemplate);

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
  override async consume(query: ConsumeQuery): Promise<ConsumeResult> {
    const { counter } = query;
    const argv = this.templates.get(query.limits).slice();
    const start = userKeyStart(this.prefix, counter.user);
    argv[HASH_KEY] = fixedWindowKeyAt(start, counterPart(counter));
    argv[BLOCK_KEY] = blockKeyAt(start);
    argv[BLOCK_MS] = RedisBackendBase.blockArg(query.blockMs);
    return this.parseConsume(await this.send(CONSUME, argv), query);
  }

  /**
   * Forgets every unit of one counter (one script call). The user's block, if any, stays.
   * @returns whether a live window existed in any unit
   */
  override async reset(counter: RateLimitCounter): Promise<boolean> {
    return this.parseFlag(await this.call(RESET, [fixedWindowKey(this.prefix, counter)], []));
  }
}
