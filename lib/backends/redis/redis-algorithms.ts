/**
 * What the Redis backend needs to know of each algorithm: which script decides, where its counters
 * live, which arguments each unit sends, and how its reply is checked. The decisions themselves are
 * the scripts in `lua/`, each described at its top; the definitions are `RateLimitAlgorithm`'s.
 *
 * @module
 */
import type { RateLimitAlgorithm, UnitLimit } from '../../rules/rule-units.js';
import { ALGORITHM_KEY_KINDS } from './redis-keys.js';
import { batchVariants, scriptVariants, type ScriptVariants } from './redis-scripts.js';

/** One algorithm, as the Redis backend runs it. */
export interface RedisAlgorithm {
  readonly algorithm: RateLimitAlgorithm;
  /** The script that decides a request: the block key, one key per unit, then its arguments. */
  readonly consume: ScriptVariants;
  /** The same script in batch form: several decisions in one call (see lua/batch.lua). */
  readonly consumeBatch: ScriptVariants;
  /** The kind in its keys' names (see redis-keys.ts). */
  readonly keyKind: string;
  /**
   * The arguments of every unit, after the block's length and the cost: strings, converted once
   * per rule rather than by ioredis on every call.
   */
  unitArgs(limits: readonly UnitLimit[], burst: number | undefined): string[];
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

/** `'fixed-window'` (lua/fixed-window.lua): every limit, then every window. */
const FIXED_WINDOW: RedisAlgorithm = {
  algorithm: 'fixed-window',
  consume: scriptVariants('fixed-window'),
  consumeBatch: batchVariants('fixed-window'),
  keyKind: ALGORITHM_KEY_KINDS['fixed-window'],
  unitArgs(limits) {
    return [...limits.map((limit) => redisArg(limit.limit)), ...limits.map(wholeWindow)];
  },
  capacity: () => undefined,
  resetWithinWait: true,
  expiring: true,
};

/** `'sliding-log'` (lua/sliding-log.lua): each unit's limit and window. */
const SLIDING_LOG: RedisAlgorithm = {
  algorithm: 'sliding-log',
  consume: scriptVariants('sliding-log'),
  consumeBatch: batchVariants('sliding-log'),
  keyKind: ALGORITHM_KEY_KINDS['sliding-log'],
  unitArgs(limits) {
    return limits.flatMap((limit) => [redisArg(limit.limit), redisArg(limit.windowMs)]);
  },
  capacity: () => undefined,
  resetWithinWait: true,
  expiring: false,
};

/** `'sliding-window'` (lua/sliding-window.lua): each unit's limit and window. */
const SLIDING_WINDOW: RedisAlgorithm = {
  algorithm: 'sliding-window',
  consume: scriptVariants('sliding-window'),
  consumeBatch: batchVariants('sliding-window'),
  keyKind: ALGORITHM_KEY_KINDS['sliding-window'],
  unitArgs(limits) {
    return limits.flatMap((limit) => [redisArg(limit.limit), wholeWindow(limit)]);
  },
  capacity: () => undefined,
  resetWithinWait: false,
  expiring: true,
};

/** `'token-bucket'` (lua/token-bucket.lua): each unit's rate, window and bucket size. */
const TOKEN_BUCKET: RedisAlgorithm = {
  algorithm: 'token-bucket',
  consume: scriptVariants('token-bucket'),
  consumeBatch: batchVariants('token-bucket'),
  keyKind: ALGORITHM_KEY_KINDS['token-bucket'],
  unitArgs(limits, burst) {
    return limits.flatMap((limit) => [
      redisArg(limit.limit),
      wholeWindow(limit),
      redisArg(burst ?? limit.limit),
    ]);
  },
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
