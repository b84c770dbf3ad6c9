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
  nonStandardWindows,
  fixedWindowKey,
  fixedWindowKeyAt,
  unitName,
  userKeyStart,
} from './redis-keys.js';

export type { RedisBackendClient, RedisBackendOptions } from './redis-backend.base.js';

const CONSUME = defineScript(FIXED_WINDOW_CONSUME_LUA);
const RESET = defineScript(FIXED_WINDOW_RESET_LUA);

/** Where the consume script's keys go in the call (see fixed-window.lua.ts). */
const BLOCK_KEY = SCRIPT_FIRST_KEY;
const FIRST_WINDOW_KEY = SCRIPT_FIRST_KEY + 1;

/** What the consume call needs for one `limits`, computed once per array. */
interface ConsumeTemplate {
  /**
   * The call's arguments with the per-request slots (keys, clock, block) left empty: the script
   * and 1 + n keys, the keys (the block, the n windows), the clock, the block, then every limit,
   * then every window (whole ms, rounded up).
   */
  readonly argv: readonly (string | number)[];
  /** Each unit's name, for its window's key. */
  readonly names: readonly string[];
  /** The units whose window is not their standard one (hand-built queries), for `reset()`. */
  readonly extra: readonly UnitLimit[];
}

function consumeTemplate(limits: readonly UnitLimit[]): ConsumeTemplate {
  const argv = scriptArgv(CONSUME, 1 + limits.length);
  for (let i = 0; i <= limits.length; i++) argv.push(''); // the keys
  argv.push('', 0);
  for (const limit of limits) argv.push(redisArg(limit.limit));
  // A key lives whole milliseconds; in whole-millisecond time a fractional window ends with the
  // millisecond it rounds up to.
  for (const limit of limits) argv.push(redisArg(Math.ceil(limit.windowMs)));
  return {
    argv,
    names: limits.map(unitName),
    extra: nonStandardWindows(limits),
  };
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
    const template = this.templates.get(query.limits);
    const { names } = template;
    const argv = template.argv.slice();
    const start = userKeyStart(this.prefix, counter.user);
    const part = counterPart(counter);
    argv[BLOCK_KEY] = blockKeyAt(start);
    for (let i = 0; i < names.length; i++) {
      argv[FIRST_WINDOW_KEY + i] = fixedWindowKeyAt(start, part, names[i]!);
    }
    argv[FIRST_WINDOW_KEY + names.length + 1] = RedisBackendBase.blockArg(query.blockMs);
    if (template.extra.length > 0) this.rememberWindows(template.extra);
    return this.parseConsume(await this.send(CONSUME, argv), query);
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
