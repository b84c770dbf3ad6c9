/**
 * How the Redis backends run their Lua scripts: the sources (the `.lua` files next to this module,
 * read once when it loads), their two variants (Redis's clock, or the `testClock` test hook) and
 * one call per decision, `EVALSHA`, reloaded transparently after `NOSCRIPT`.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { RedisClientLike } from './redis-client.js';

/**
 * Added to every expiry under the test clock, in ms (see lua/test-clock.lua): 2^44 ms is about 557
 * years, so a key written for any test time lies after any real clock, and virtual time plus the
 * offset stays an exact integer in Lua's doubles.
 */
export const TEST_CLOCK_EXPIRY_OFFSET_MS = 2 ** 44;

/**
 * A Lua script as Redis caches it: by the SHA1 of its text, which is also how `EVALSHA` names it,
 * so two versions of this package sharing a Redis each run their own.
 */
export interface RedisScript {
  readonly lua: string;
  /** SHA1 of `lua`, in hex. */
  readonly sha: string;
}

/** A script body in its two variants: on Redis's clock, and on the `testClock` test hook. */
export interface ScriptVariants {
  readonly redisClock: RedisScript;
  readonly testClock: RedisScript;
}

/** A `.lua` file of `lua/`, read once. Resolved from this module, so it works from lib/ and dist/. */
function luaSource(name: string): string {
  return readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8');
}

function script(lua: string): RedisScript {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

const REDIS_CLOCK_PRELUDE = luaSource('redis-clock');
const TEST_CLOCK_PRELUDE = luaSource('test-clock');

/**
 * The script `lua/<name>.lua` in both variants: the body after the prelude of the clock it runs
 * on. The prelude defines the names every body uses for time (`TTL`, `TTL_BASE`, `EXPIRE_PX`,
 * `EXPIRE`, `EPOCH`, `now_ms()`), so a body has no branch for the test clock.
 */
export function scriptVariants(name: string): ScriptVariants {
  const body = luaSource(name);
  return {
    redisClock: script(`${REDIS_CLOCK_PRELUDE}\n${body}`),
    testClock: script(`${TEST_CLOCK_PRELUDE}\n${body}`),
  };
}

const BATCH_DRIVER = luaSource('batch');

/**
 * The batch form of `lua/<name>.lua` in both variants: the script, prelude included, becomes the
 * function `decide(KEYS, ARGV)`, which lua/batch.lua calls once per decision of the batch. So a
 * decision in a batch runs exactly the code of a lone call, and the test-clock prelude takes each
 * decision's own clock reading from the end of its own arguments.
 */
export function batchVariants(name: string): ScriptVariants {
  const body = luaSource(name);
  const decide = (prelude: string): string =>
    `local function decide(KEYS, ARGV)\n${prelude}\n${body}\nend`;
  return {
    // Redis's clock: the prelude once, outside, as its names do not depend on the arguments.
    redisClock: script(`${REDIS_CLOCK_PRELUDE}\n${decide('')}\n${BATCH_DRIVER}`),
    testClock: script(`${decide(TEST_CLOCK_PRELUDE)}\n${BATCH_DRIVER}`),
  };
}

const PEEK_DRIVER = luaSource('peek');

/**
 * The peek form of the consume script `lua/<name>.lua` in both variants: the script becomes the
 * function `decide(KEYS, ARGV)`, which lua/peek.lua calls once, with the clock's prelude outside
 * it (one call, one clock reading, removed from the arguments before `decide` sees them).
 */
export function peekVariants(name: string): ScriptVariants {
  const body = luaSource(name);
  const peek = (prelude: string): string =>
    `${prelude}\nlocal function decide(KEYS, ARGV)\n${body}\nend\n${PEEK_DRIVER}`;
  return {
    redisClock: script(peek(REDIS_CLOCK_PRELUDE)),
    testClock: script(peek(TEST_CLOCK_PRELUDE)),
  };
}

/** Redis's answer to `EVALSHA` when it does not have the script (a restart, `SCRIPT FLUSH`). */
function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}

/**
 * The arguments of one script call: the script's slot (filled by {@link runScript}), the number of
 * keys, the keys, then the script's own arguments. Build a fresh one per call.
 */
export type ScriptCall = (string | number)[];

/**
 * Runs `script` with `call`'s keys and arguments: one `EVALSHA` through ioredis's documented
 * generic `call(command, args)`, or, when Redis answers `NOSCRIPT` (which ran nothing: it has not
 * seen the script since it started, or its scripts were flushed), one `EVAL` with the script
 * itself, which Redis caches for every later `EVALSHA`.
 *
 * Why `call` rather than `defineCommand`: both go through ioredis's auto-pipelining and cost the
 * same client CPU within the noise of a measurement (an INCR script at 256 in flight on ioredis 6:
 * 11.1 to 15.6 µs per call for `defineCommand`, 11.6 to 14.6 for `call`), and `call` keeps the
 * commands sent exactly `EVALSHA` (a `defineCommand` script is sent whole as the first command of
 * each connection's pipelines).
 */
export async function runScript(
  client: RedisClientLike,
  script: RedisScript,
  call: ScriptCall,
): Promise<unknown> {
  call[0] = script.sha;
  try {
    return await client.call('evalsha', call);
  } catch (error) {
    if (!isNoScript(error)) throw error;
    call[0] = script.lua;
    return await client.call('eval', call);
  }
}
