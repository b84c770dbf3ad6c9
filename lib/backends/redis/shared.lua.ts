/**
 * Lua shared by the scripts of both Redis backends: the clock, key lifetimes and the user's block.
 *
 * Time comes from Redis, never from the application servers, in two ways:
 *
 * - Key expiry. A fixed window and a block are a key that lives exactly as long as they do
 *   (`SET ... PX`), so whether one is still running, and how long it has left, is the key's
 *   `PTTL` on Redis's clock. Redis's expiry is exact to the millisecond: a key set at `t` with
 *   `PX w` is gone from `t + w` on (it still exists, with a `PTTL` of 0, during millisecond
 *   `t + w`, which the scripts count as ended), so a window covers `[t, t + w)` in whole
 *   milliseconds, as in `MemoryBackend`. Inside a script Redis expires keys against the time the
 *   script started, so no key vanishes halfway through a decision (a `PTTL` of 0 or less read
 *   from a key that is still there counts as ended all the same).
 * - `TIME`, where a script needs the instant itself: the sliding logs store when each request was
 *   admitted.
 *
 * Why expiry rather than `TIME` plus stored window ends: `TIME` and the parsing and formatting of
 * stored times cost a script more than its reads and writes do (measured with `INFO
 * commandstats`: `TIME` alone about 0.65 µs, as much as `MGET` of two keys), and a fixed window
 * needs neither, since Redis already keeps each key's end.
 *
 * The `testClock` test hook replaces both with a virtual clock: the backend passes the time itself
 * as ARGV[1] (whole microseconds; ARGV[1] is `''` otherwise, always in production), the scripts
 * read it as `test_now` (whole ms, `false` in production), and keys that carry a lifetime get an
 * absolute expiry of `test_now + lifetime +` {@link TEST_CLOCK_EXPIRY_OFFSET_MS} (`PXAT`), read
 * back with `PEXPIRETIME`. The offset puts those expiries centuries after any real clock, so Redis
 * never expires them on its own, and the time left is computed on the virtual clock alone: the
 * same decisions for the same sequence of times, however long a test takes. The scripts' logic is
 * the same in both modes; only {@link luaTimeLeft} and {@link luaSetExpiring} branch. (Sliding
 * logs get no expiry under the test clock: only their entries decide, and nothing reads their
 * TTL.)
 *
 * The consume scripts run on every decision, so they are written for Redis's CPU, which a script
 * spends mostly on its `redis.call`s (each about as costly as a small command from a client) and
 * on allocations (every Lua table, string and closure goes through Redis's allocator and Lua's
 * collector). Hence: as few commands as the decision needs, tables reused where one is already at
 * hand, and the shared pieces below spliced in as code rather than defined as `local function`s,
 * since Lua 5.1 allocates a new closure for each of those on every run, used or not.
 *
 * Numbers Redis stores are written with `string.format('%d')`: Lua 5.1 formats `%d` through a C
 * `long`, exact below 2^63 and much cheaper than a floating-point format such as `%.0f`
 * (`tostring` would also cut them to 14 digits). Numbers go to `redis.call` as such strings too:
 * Redis 7.0 turns a Lua number argument into text with `%.17g`.
 *
 * Tested on Redis 7.0. The test clock needs 7.0 (`PEXPIRETIME`); production paths use older
 * commands only (`MGET`, `PTTL`, `INCR`, `SET ... PX`, `TIME`, the list commands).
 *
 * @module
 */

/**
 * Added to a virtual expiry under the test clock, in ms: 2^44 ms is about 557 years, so an expiry
 * written for any test time (at least 0) lies after any real clock this code meets, and virtual
 * time plus the offset stays an exact integer in Lua's doubles (the test clock is capped near
 * 2^53 µs, about 9e12 ms).
 */
export const TEST_CLOCK_EXPIRY_OFFSET_MS = 2 ** 44;

/** Every script starts with this: `test_now`, the test clock in whole ms, or `false`. */
export const LUA_TEST_CLOCK = `
local test_now = false
if ARGV[1] ~= '' then test_now = math.floor(tonumber(ARGV[1]) / 1000) end
`;

/**
 * Sets the Lua variable `target` to the time `key` has left, in ms on the clock in use: Redis's
 * (`PTTL`) or the test clock's. At most 0 means the key is gone, has no expiry, or (test clock)
 * expired in virtual time, and the scripts treat all three as "not running".
 */
export function luaTimeLeft(target: string, key: string): string {
  return `if test_now then
  ${target} = redis.call('PEXPIRETIME', ${key}) - ${TEST_CLOCK_EXPIRY_OFFSET_MS} - test_now
else
  ${target} = redis.call('PTTL', ${key})
end`;
}

/**
 * Writes `value` to `key`, to live `ms` milliseconds (Lua expressions; `ms` a whole number of at
 * least 1, as a string or a number) on the clock in use.
 */
export function luaSetExpiring(key: string, value: string, ms: string): string {
  return `if test_now then
  redis.call('SET', ${key}, ${value}, 'PXAT',
    string.format('%d', test_now + ${ms} + ${TEST_CLOCK_EXPIRY_OFFSET_MS}))
else
  redis.call('SET', ${key}, ${value}, 'PX', ${ms})
end`;
}

/**
 * Consume scripts, first: declares `block_left`, the time the user's block key (Lua expression
 * `key`) has left in ms, 0 when no block is running. `present` is a Lua condition that is false
 * only when the key is known to be missing (a script that read it already skips a command).
 * Then declares `worst, wait`: the exhausted unit with the longest wait so far (0: none) and that
 * wait in ms, which the script updates with {@link LUA_EXHAUSTED}.
 *
 * A running block rejects the request, but the script still reads every unit (counting nothing)
 * and rejects through {@link LUA_REJECT}: the reply reports the units, and its wait covers the
 * exhausted ones too, so a client that obeys it is admitted rather than blocked again by a unit
 * that is still exhausted when the block ends. The scripts skip their fast admitted path while
 * `block_left > 0`.
 */
export function luaBlockCheck(key: string, present: string): string {
  return `
local block_left = 0
if ${present} then
  local left
  ${luaTimeLeft('left', key)}
  if left > 0 then block_left = left end
end
local worst, wait = 0, 0
`;
}

/**
 * Consume scripts: reports unit `i` as exhausted for `unit_wait` ms (a local both must set); the
 * decision is the unit with the longest wait, the first one on a tie.
 */
export const LUA_EXHAUSTED = `
if unit_wait > 0 and (worst == 0 or unit_wait > wait) then worst, wait = i, unit_wait end`;

/**
 * Consume scripts, once the request is rejected (a unit is exhausted, `worst > 0`, or a block is
 * running, `block_left > 0`; ARGV[2] = block ms, `KEYS[1]` = the block key in both scripts):
 * writes the head of the rejection into `reply[1..4]`; the script then writes each unit's state
 * after it. During a running block, the block stays as it is (a request made while blocked never
 * extends or restarts it) and the wait is the longer of its remainder and the exhausted units'.
 * Otherwise it starts the user's block when the rule has one (a key living exactly as long as
 * the block; its value says nothing), and the wait is the longer of the block and the units'.
 */
export const LUA_REJECT = `
local blocked = 0
if block_left > 0 then
  blocked = 1
  if block_left > wait then wait = block_left end
else
  local block_ms = tonumber(ARGV[2])
  if block_ms > 0 then
    ${luaSetExpiring('KEYS[1]', "'1'", 'ARGV[2]')}
    blocked = 1
    if block_ms > wait then wait = block_ms end
  end
end
reply[1], reply[2], reply[3], reply[4] = 0, math.ceil(wait), blocked, worst
`;

/**
 * Returns, when it is exact (below 2^53, with a whole `limit`), the one integer `reset * (limit +
 * 1) + remaining` that stands for an admitted request under one unit (Lua expressions; `limit` is
 * the unit's limit as a number). The backend unpacks it with the limit it sent (see
 * `parseConsumeReply`). A limit of 1,000,000 leaves room for windows of 104 days, so for any unit
 * up to a month; a limit of 100,000,000 for windows of 25 hours. Why: Redis turns a Lua table
 * into a reply for about half a microsecond, as much as two commands, ioredis decodes an integer
 * for less than an array, and an admitted request under one unit is the decision a limiter makes
 * most. When it is not exact, the script goes on to return the table.
 */
export function luaPackedReturn(limit: string, remaining: string, reset: string): string {
  return `local base = ${limit} + 1
local packed = ${reset} * base + ${remaining}
if packed < 9007199254740992 and base == math.floor(base) then return packed end`;
}

/**
 * Consume scripts, admitted, at the end: returns the reply, `reply`, or with one unit (`n == 1`)
 * whose limit is ARGV[`limitArg`], the integer of {@link luaPackedReturn} when it is exact.
 */
export function luaAdmittedReturn(limitArg: string): string {
  return `
if n == 1 then
  ${luaPackedReturn(`tonumber(ARGV[${limitArg}])`, 'reply[5]', 'reply[6]')}
end
return reply`;
}

/**
 * Lifts a user's block. KEYS[1] = the block key; ARGV[1] = the test clock (µs) or `''`.
 * Returns 1 when a block was still running, else 0; the key is deleted either way.
 */
export const UNBLOCK_LUA = `${LUA_TEST_CLOCK}
local left
${luaTimeLeft('left', 'KEYS[1]')}
redis.call('DEL', KEYS[1])
if left > 0 then return 1 end
return 0
`;
