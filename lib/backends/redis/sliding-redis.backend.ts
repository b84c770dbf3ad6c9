import type { UnitLimit } from '../../rules/rule-units.js';
import { RATE_LIMIT_UNITS, UNIT_WINDOW_SECONDS } from '../../rules/rule-units.js';
import type { ConsumeQuery, ConsumeResult, RateLimitCounter } from '../rate-limit.backend.js';
import {
  RedisBackendBase,
  type RedisBackendClient,
  type RedisBackendOptions,
  type ScriptDefinition,
} from './redis-backend.base.js';
import { blockKey, isStandardWindow, slidingLogKey, slidingSequenceKey } from './redis-keys.js';
import { SLIDING_WINDOW_CONSUME_LUA, SLIDING_WINDOW_RESET_LUA } from './sliding-window.lua.js';

const CONSUME: ScriptDefinition = {
  name: 'nestjsRateLimitSlidingV1',
  lua: SLIDING_WINDOW_CONSUME_LUA,
};
const RESET: ScriptDefinition = {
  name: 'nestjsRateLimitSlidingResetV1',
  lua: SLIDING_WINDOW_RESET_LUA,
};

/** Every unit with its standard window: what `reset()` always clears. */
const STANDARD_WINDOWS: readonly Pick<UnitLimit, 'unit' | 'windowMs'>[] = RATE_LIMIT_UNITS.map(
  (unit) => ({ unit, windowMs: UNIT_WINDOW_SECONDS[unit] * 1000 }),
);

/** Most non-standard windows remembered for `reset()`; only hand-built queries create them. */
const MAX_EXTRA_WINDOWS = 64;

/**
 * Exact sliding windows in Redis (or Redis Cluster): a unit admits a request at millisecond `t`
 * when fewer than `limit` admitted requests fall in `(t - window, t]` (whole milliseconds, like
 * `MemoryBackend`; the log keeps microseconds only to order its entries), so there is no burst at
 * a window boundary. A rejected request is logged nowhere; when a unit is full, the wait is the
 * time until enough of its oldest entries leave the window for one more request. Blocks, the
 * one-script-call decision, Redis time and the key guarantees are as in `RedisBackend`.
 *
 * Keys: one sorted set per (counter, unit) holding the admitted requests still inside the window
 * (so up to `limit` entries), expiring one window after the last admitted request, and one small
 * sequence key per counter that keeps log members unique; see `redis-keys.ts` for the memory.
 */
export class SlidingRedisBackend extends RedisBackendBase {
  /** Non-standard windows seen in this process, so `reset()` can name their logs. */
  private readonly extraWindows = new Map<string, Pick<UnitLimit, 'unit' | 'windowMs'>>();

  /**
   * @param client an ioredis `Redis` or `Cluster` (stays yours), or a URL / ioredis options from
   *   which the backend creates its own client (ioredis is loaded then)
   * @param options key prefix and test hooks
   * @throws RateLimitConfigError (`RATE_LIMIT_INVALID_OPTION`) when an argument is invalid
   */
  constructor(client: RedisBackendClient, options?: RedisBackendOptions) {
    super('SlidingRedisBackend', [CONSUME, RESET], client, options);
  }

  /** Decides one request in one script call. See `RateLimitBackend` for the contract. */
  override async consume(query: ConsumeQuery): Promise<ConsumeResult> {
    const { counter, limits } = query;
    const keys = [slidingSequenceKey(this.prefix, counter), blockKey(this.prefix, counter.user)];
    const args: (string | number)[] = [RedisBackendBase.blockArg(query.blockMs)];
    for (const limit of limits) {
      keys.push(slidingLogKey(this.prefix, counter, limit));
      args.push(limit.limit, limit.windowMs);
      if (!isStandardWindow(limit)) this.rememberWindow(limit);
    }
    return this.parseConsume(await this.call(CONSUME, keys, args), query);
  }

  /**
   * Forgets one counter's logs in every unit (one script call). The user's block, if any, stays.
   * Covers the standard window of every unit (all that `Rule`s use) and any other window length
   * this process has used for a hand-built query.
   * @returns whether any log still held a request inside its window
   */
  override async reset(counter: RateLimitCounter): Promise<boolean> {
    const keys = [slidingSequenceKey(this.prefix, counter)];
    const args: number[] = [];
    for (const window of [...STANDARD_WINDOWS, ...this.extraWindows.values()]) {
      keys.push(slidingLogKey(this.prefix, counter, window));
      args.push(window.windowMs);
    }
    return this.parseFlag(await this.call(RESET, keys, args));
  }

  private rememberWindow(limit: UnitLimit): void {
    const name = `${limit.unit}/${limit.windowMs}`;
    if (this.extraWindows.has(name) || this.extraWindows.size >= MAX_EXTRA_WINDOWS) return;
    this.extraWindows.set(name, { unit: limit.unit, windowMs: limit.windowMs });
  }
}
