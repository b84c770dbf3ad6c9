/**
 * What the Redis backend needs to know of each algorithm: which script decides, where its counters
 * live, which arguments each unit sends, and how its reply is checked. The decisions themselves are
 * the scripts in `lua/`, each described at its top; the definitions are `RateLimitAlgorithm`'s.
 *
 * @module
 */
import type { RateLimitAlgorithm, UnitLimit } from '../../rules/rule-units.js';
import { ALGORITHM_KEY_KINDS } from './redis-keys.js';
import {
  batchVariants,
  peekVariants,
  scriptVariants,
  type ScriptVariants,
} from './redis-scripts.js';

/** One algorithm, as the Redis backend runs it. */
export interface RedisAlgorithm {
  readonly algorithm: RateLimitAlgorithm;
  /** The script that decides a request: the block key, one key per unit, then its arguments. */
  readonly consume: ScriptVariants;
  /** The same script in batch form: several decisions in one call (see lua/batch.lua). */
  readonly consumeBatch: ScriptVariants;
  /**
   * The same script as a peek (lua/peek.lua): a consume call with no block and a cost above
   * {@link holds} of every unit, answered with the block's time left and the units as they stand.
   */
  readonly peek: ScriptVariants;
  /** Gives back a request's cost (lua/release-<algorithm>.lua): one key per unit, then the cost. */
  readonly release: ScriptVariants;
  /** The release script in batch form (see lua/batch.lua). */
  readonly releaseBatch: ScriptVariants;
  /** The kind in its keys' names (see redis-keys.ts). */
  readonly keyKind: string;
  /**
   * The arguments of every unit, after the block's length and the cost: strings, converted once
   * per rule rather than by ioredis on every call.
   */
  unitArgs(limits: readonly UnitLimit[], burst: number | undefined): string[];
  /** The arguments of every unit of a release call, after the cost. */
  releaseArgs(limits: readonly UnitLimit[]): string[];
  /** The largest cost one request may take under `limit` and still fit: its limit, or the burst. */
  holds(limit: UnitLimit, burst: number | undefined): number;
  /** Token bucket: the bucket's size (what the reply packs against); else undefined. */
  capacity(burst: number | undefined, limits: readonly UnitLimit[]): number | undefined;
  /** Whether an exhausted unit's reset never comes after the request's wait (see redis-replies). */
  readonly resetWithinWait: boolean;
  /** True when its keys live as long as what they count (the reset script reads their TTL). */
  readonly expiring: boolean;
}

/**
 * A number as ioredis would send it (its `toArg`: integers beyond 2^53 in full rather than in
 * exponent form), converted once per rule.
 */
export function redisArg(value: number): string {
  return Number.isInteger(value) && !Number.isSafeInteger(value)
    ? BigInt(value).toString()
    : String(value);
}

/** A key lives whole milliseconds: in whole-millisecond time a fractional window ends with the millisecond it rounds up to. */
function wholeWindow(limit: UnitLimit): string {
  return redisArg(Math.ceil(limit.windowMs));
}

/**
 * `'fixed-window'` (lua/fixed-window.lua): every limit, then every window. Release
 * (lua/release-fixed-window.lua): nothing per unit, a window's key says it all.
 */
const FIXED_WINDOW: RedisAlgorithm = {
  algorithm: 'fixed-window',
  consume: scriptVariants('fixed-window'),
  consumeBatch: batchVariants('fixed-window'),
  peek: peekVariants('fixed-window'),
  release: scriptVariants('release-fixed-window'),
  releaseBatch: batchVariants('release-fixed-window'),
  keyKind: ALGORITHM_KEY_KINDS['fixed-window'],
  unitArgs(limits) {
    return [...limits.map((limit) => redisArg(limit.limit)), ...limits.map(wholeWindow)];
  },
  releaseArgs: () => [],
  holds: (limit) => limit.limit,
  capacity: () => undefined,
  resetWithinWait: true,
  expiring: true,
};

/**
 * `'sliding-log'` (lua/sliding-log.lua): each unit's limit and window. Release
 * (lua/release-sliding-log.lua): each unit's window, which tells the entries that still count.
 */
const SLIDING_LOG: RedisAlgorithm = {
  algorithm: 'sliding-log',
  consume: scriptVariants('sliding-log'),
  consumeBatch: batchVariants('sliding-log'),
  peek: peekVariants('sliding-log'),
  release: scriptVariants('release-sliding-log'),
  releaseBatch: batchVariants('release-sliding-log'),
  keyKind: ALGORITHM_KEY_KINDS['sliding-log'],
  unitArgs(limits) {
    return limits.flatMap((limit) => [redisArg(limit.limit), redisArg(limit.windowMs)]);
  },
  releaseArgs(limits) {
    return limits.map((limit) => redisArg(limit.windowMs));
  },
  holds: (limit) => limit.limit,
  capacity: () => undefined,
  resetWithinWait: true,
  expiring: false,
};

/**
 * `'sliding-window'` (lua/sliding-window.lua): each unit's limit and window. Release
 * (lua/release-sliding-window.lua): nothing per unit, a counter's expiry says whether it weighs.
 */
const SLIDING_WINDOW: RedisAlgorithm = {
  algorithm: 'sliding-window',
  consume: scriptVariants('sliding-window'),
  consumeBatch: batchVariants('sliding-window'),
  peek: peekVariants('sliding-window'),
  release: scriptVariants('release-sliding-window'),
  releaseBatch: batchVariants('release-sliding-window'),
  keyKind: ALGORITHM_KEY_KINDS['sliding-window'],
  unitArgs(limits) {
    return limits.flatMap((limit) => [redisArg(limit.limit), wholeWindow(limit)]);
  },
  releaseArgs: () => [],
  holds: (limit) => limit.limit,
  capacity: () => undefined,
  resetWithinWait: false,
  expiring: true,
};

/**
 * `'token-bucket'` (lua/token-bucket.lua): each unit's rate, window and bucket size. Release
 * (lua/release-token-bucket.lua): each unit's rate and window, which give its debt.
 */
const TOKEN_BUCKET: RedisAlgorithm = {
  algorithm: 'token-bucket',
  consume: scriptVariants('token-bucket'),
  consumeBatch: batchVariants('token-bucket'),
  peek: peekVariants('token-bucket'),
  release: scriptVariants('release-token-bucket'),
  releaseBatch: batchVariants('release-token-bucket'),
  keyKind: ALGORITHM_KEY_KINDS['token-bucket'],
  unitArgs(limits, burst) {
    return limits.flatMap((limit) => [
      redisArg(limit.limit),
      wholeWindow(limit),
      redisArg(burst ?? limit.limit),
    ]);
  },
  releaseArgs(limits) {
    return limits.flatMap((limit) => [redisArg(limit.limit), wholeWindow(limit)]);
  },
  holds: (limit, burst) => burst ?? limit.limit,
  capacity: (burst, limits) => burst ?? (limits.length === 1 ? limits[0]!.limit : undefined),
  resetWithinWait: false,
  expiring: true,
};

/** Every algorithm, by name. */
export const REDIS_ALGORITHMS: Readonly<Record<RateLimitAlgorithm, RedisAlgorithm>> = Object.freeze(
  {
    'fixed-window': FIXED_WINDOW,
    'sliding-window': SLIDING_WINDOW,
    'sliding-log': SLIDING_LOG,
    'token-bucket': TOKEN_BUCKET,
  },
);

/** Unblocks a user (lua/unblock.lua). */
export const UNBLOCK_SCRIPT = scriptVariants('unblock');

/** Forgets one counter in every algorithm (lua/reset.lua). */
export const RESET_SCRIPT = scriptVariants('reset');

/** Blocks a user, replacing any block (lua/block.lua). */
export const BLOCK_SCRIPT = scriptVariants('block');

/** The time left of a user's block (lua/blocked-for.lua). */
export const BLOCKED_FOR_SCRIPT = scriptVariants('blocked-for');
