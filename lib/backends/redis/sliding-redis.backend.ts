import type { UnitLimit } from '../../rules/rule-units.js';
import type { ConsumeQuery, ConsumeResult, RateLimitCounter } from '../rate-limit.backend.js';
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
import { slidingLogKey, slidingLogKeyAt } from './redis-keys.js';
import { SLIDING_WINDOW_CONSUME_LUA, SLIDING_WINDOW_RESET_LUA } from './sliding-window.lua.js';

const CONSUME = defineScript(SLIDING_WINDOW_CONSUME_LUA);
const RESET = defineScript(SLIDING_WINDOW_RESET_LUA);

/**
 * The consume call's arguments for one `limits` (see sliding-window.lua.ts): after the keys, the
 * clock and the block, each unit's limit and window.
 */
function slidingWindowTemplate(limits: readonly UnitLimit[]): ConsumeTemplate {
  const args: string[] = [];
  for (const limit of limits) args.push(redisArg(limit.limit), redisArg(limit.windowMs));
  return consumeTemplate(CONSUME, limits, args);
}

/**
 * Exact sliding windows in Redis (or Redis Cluster): a unit admits a request at millisecond `t`
 * when fewer than `limit` admitted requests fall in `(t - window, t]` (whole milliseconds, like
 * `MemoryBackend`), so there is no burst at a window boundary. A rejected request is logged
 * nowhere; when a unit is full, the wait is the time until enough of its oldest entries leave the
 * window for one more request. Blocks, the one-script-call decision, Redis time and the key
 * guarantees are as in `RedisBackend`.
 *
 * Keys: one list per (counter, unit) holding the millisecond of each admitted request of the last
 * window (so up to `limit` entries, about 10 bytes each), oldest first, expiring two windows after
 * its oldest entry (between one and two windows after the last admitted request); see
 * `redis-keys.ts` for the layout and the memory.
 * Entries are in order while Redis's clock moves forward; if it is set back, the limiter gets
 * stricter until the entries logged before leave, never looser (see sliding-window.lua.ts).
 */
export class SlidingRedisBackend extends RedisBackendBase {
  /** Each rule's call arguments, computed once per `limits` array. */
  private readonly templates = new UnitArgsCache(slidingWindowTemplate);

  /**
   * @param client an ioredis `Redis` or `Cluster` (stays yours), or a URL / ioredis options from
   *   which the backend creates its own client (ioredis is loaded then)
   * @param options key prefix and test hooks
   * @throws RateLimitConfigError (`RATE_LIMIT_INVALID_OPTION`) when an argument is invalid
   */
  constructor(client: RedisBackendClient, options?: RedisBackendOptions) {
    super('SlidingRedisBackend', client, options);
  }

  /** Decides one request in one script call. See `RateLimitBackend` for the contract. */
  override consume(query: ConsumeQuery): Promise<ConsumeResult> {
    return this.consumeWith(CONSUME, this.templates.get(query.limits), query, slidingLogKeyAt);
  }

  /**
   * Forgets one counter's logs in every unit (one script call). The user's block, if any, stays.
   * Covers the standard window of every unit (all that `Rule`s use) and any other window length
   * this process has used for a hand-built query.
   * @returns whether any log still held a request inside its window
   */
  override async reset(counter: RateLimitCounter): Promise<boolean> {
    const keys: string[] = [];
    const args: number[] = [];
    for (const window of this.resetWindows()) {
      keys.push(slidingLogKey(this.prefix, counter, window));
      args.push(window.windowMs);
    }
    return this.parseFlag(await this.call(RESET, keys, args));
  }
}
