import type { UnitLimit } from '../../rules/rule-units.js';
import type { ConsumeQuery, ConsumeResult, RateLimitCounter } from '../rate-limit.backend.js';
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
  slidingLogKey,
  slidingLogKeyAt,
  unitName,
  userKeyStart,
} from './redis-keys.js';
import { SLIDING_WINDOW_CONSUME_LUA, SLIDING_WINDOW_RESET_LUA } from './sliding-window.lua.js';

const CONSUME = defineScript(SLIDING_WINDOW_CONSUME_LUA);
const RESET = defineScript(SLIDING_WINDOW_RESET_LUA);

/** Where the consume script's keys go in the call (see sliding-window.lua.ts). */
const BLOCK_KEY = SCRIPT_FIRST_KEY;
const FIRST_LOG_KEY = SCRIPT_FIRST_KEY + 1;

/** What the consume call needs for one `limits`, computed once per array. */
interface ConsumeTemplate {
  /**
   * The call's arguments with the per-request slots (keys, clock, block) left empty: the script
   * and 1 + n keys, the keys (the block, the n logs), the clock, the block, then each unit's limit
   * and window.
   */
  readonly argv: readonly (string | number)[];
  /** Each unit's name, for its log's key. */
  readonly names: readonly string[];
  /** The units whose window is not their standard one (hand-built queries), for `reset()`. */
  readonly extra: readonly UnitLimit[];
}

function consumeTemplate(limits: readonly UnitLimit[]): ConsumeTemplate {
  const argv = scriptArgv(CONSUME, 1 + limits.length);
  argv.push(''); // the block key
  for (let i = 0; i < limits.length; i++) argv.push('');
  argv.push('', 0);
  for (const limit of limits) argv.push(redisArg(limit.limit), redisArg(limit.windowMs));
  return {
    argv,
    names: limits.map(unitName),
    extra: nonStandardWindows(limits),
  };
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
 * window (so up to `limit` entries, about 10 bytes each), oldest first, expiring one window after
 * the last admitted request; see `redis-keys.ts` for the layout and the memory.
 * Entries are in order while Redis's clock moves forward; if it is set back, the limiter gets
 * stricter until the entries logged before leave, never looser (see sliding-window.lua.ts).
 */
export class SlidingRedisBackend extends RedisBackendBase {
  /** Each rule's call arguments, computed once per `limits` array. */
  private readonly templates = new UnitArgsCache(consumeTemplate);

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
  override async consume(query: ConsumeQuery): Promise<ConsumeResult> {
    const { counter } = query;
    const template = this.templates.get(query.limits);
    const { names } = template;
    const argv = template.argv.slice();
    const start = userKeyStart(this.prefix, counter.user);
    const part = counterPart(counter);
    argv[BLOCK_KEY] = blockKeyAt(start);
    for (let i = 0; i < names.length; i++) {
      argv[FIRST_LOG_KEY + i] = slidingLogKeyAt(start, part, names[i]!);
    }
    argv[FIRST_LOG_KEY + names.length + 1] = RedisBackendBase.blockArg(query.blockMs);
    if (template.extra.length > 0) this.rememberWindows(template.extra);
    return this.parseConsume(await this.send(CONSUME, argv), query);
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
