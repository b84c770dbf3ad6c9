/**
 * Lua shared by the scripts of both Redis backends: the clock and the user's block.
 *
 * Time comes from Redis (`TIME`), never from the application servers. The one exception is the
 * `testClock` test hook: the backend then passes the time itself as ARGV[1] (whole microseconds)
 * and the script uses it instead of `TIME`, so a test decides exactly when each call happens.
 * ARGV[1] is the empty string otherwise (always, in production).
 *
 * Every decision is made in whole milliseconds (`now`, the time truncated to the millisecond, as
 * `MemoryBackend` truncates its clock): window ends, block ends and the sliding logs' timestamps
 * are stored as values and compared with it, so the same sequence of times always gives the same
 * decisions and the same waits. Key expiry (`PEXPIRE`, `PEXPIREAT`, `PX`) only reclaims memory and
 * never decides a request. Under a test clock keys get no expiry at all: Redis expires keys on its
 * own real clock, which a test clock does not follow, so a key could otherwise vanish before its
 * window ended in test time.
 *
 * The consume scripts run on every decision, so they are written for Redis's CPU, which a script
 * spends mostly on its `redis.call`s (each about as costly as a small command from a client) and
 * on allocations (every Lua table, string and closure goes through Redis's allocator and Lua's
 * collector). Hence: as few commands as the decision needs, tables reused where one is already at
 * hand, numbers formatted with one `string.format`, and the shared pieces below spliced in as code
 * rather than defined as `local function`s, since Lua 5.1 allocates a new closure for each of those
 * on every run, used or not.
 *
 * Numbers Redis stores are written with `string.format('%d')`: all are integers (but a window
 * end under a fractional window, which gets `%.17g`), and Lua 5.1 formats `%d` through a C
 * `long`, exact below 2^63 and much cheaper than a floating-point format such as `%.0f`
 * (`tostring` would also cut them to 14 digits). Numbers go to `redis.call` as such strings too:
 * Redis 7.0 turns a Lua number argument into text with `%.17g`.
 *
 * @module
 */

/**
 * What every script starts with: `now` (the time in whole ms) and `expires` (whether keys get a
 * TTL). ARGV[1] is reserved for the test clock.
 */
export const LUA_PRELUDE = `
local now, expires
if ARGV[1] == '' then
  -- Seconds and microseconds, as strings that the arithmetic converts: exact, since seconds * 1000
  -- stays far below 2^53.
  local t = redis.call('TIME')
  now = t[1] * 1000 + math.floor(t[2] / 1000)
  expires = true
else
  now = math.floor(tonumber(ARGV[1]) / 1000) -- the test clock, in whole µs
  expires = false
end
`;

/**
 * Consume scripts, right after the prelude and a `local block_key` naming the user's block key
 * (each script has its own key order): when the user is blocked (the key holds the block's end,
 * in ms, while one is active), rejects at once with the time left, looking at no unit.
 * Then declares `worst, wait`: the exhausted unit with the longest wait so far (0: none) and that
 * wait in ms, which the script updates with {@link LUA_EXHAUSTED}.
 */
export const LUA_BLOCK_CHECK = `
local block = redis.call('GET', block_key)
if block then
  local stop = tonumber(block)
  if stop and stop > now then return {0, math.ceil(stop - now), 1, 0} end
end
local worst, wait = 0, 0
`;

/**
 * Consume scripts: reports unit `i` as exhausted for `unit_wait` ms (a local both must set); the
 * decision is the unit with the longest wait, the first one on a tie.
 */
export const LUA_EXHAUSTED = `
if unit_wait > 0 and (worst == 0 or unit_wait > wait) then worst, wait = i, unit_wait end`;

/**
 * Consume scripts, once a unit is exhausted (ARGV[2] = block ms, `block_key` = the block key):
 * starts the user's block when the rule has one (`PX` only reclaims the key afterwards) and writes
 * the head of the rejection into `reply[1..4]`; the script then writes each unit's state after it.
 */
export const LUA_REJECT = `
local blocked = 0
local block_ms = tonumber(ARGV[2])
if block_ms > 0 then
  local block_end = string.format('%d', now + block_ms)
  if expires then
    redis.call('SET', block_key, block_end, 'PX', ARGV[2])
  else
    redis.call('SET', block_key, block_end)
  end
  blocked = 1
  if block_ms > wait then wait = block_ms end
end
reply[1], reply[2], reply[3], reply[4] = 0, math.ceil(wait), blocked, worst
`;

/**
 * Consume scripts, admitted, at the end: returns the reply. With one unit (`n == 1`) whose limit
 * is ARGV[`limitArg`], that is one integer, `resetMs * (limit + 1) + remaining`, whenever it is
 * exact (below 2^53: a limit of 1,000,000 leaves room for windows of 104 days, so for any unit up
 * to a month; a limit of 100,000,000 for windows of 25 hours). The backend unpacks it with the
 * limit it sent (see `parseConsumeReply`). Why: Redis turns a Lua table into a reply for about
 * half a microsecond, as much as two commands and a tenth of the whole script, ioredis decodes an
 * integer for less than an array, and an admitted request under one unit is the decision a
 * limiter makes most. Other replies keep the table, `reply`.
 */
export function luaAdmittedReturn(limitArg: string): string {
  return `
if n == 1 then
  local base = tonumber(ARGV[${limitArg}]) + 1
  local packed = reply[6] * base + reply[5]
  if packed < 9007199254740992 and base == math.floor(base) then return packed end
end
return reply`;
}

/**
 * Lifts a user's block. KEYS[1] = the block key; ARGV[1] = the test clock (µs) or `''`.
 * Returns 1 when a block was still active, else 0; the key is deleted either way.
 */
export const UNBLOCK_LUA = `${LUA_PRELUDE}
local value = redis.call('GET', KEYS[1])
redis.call('DEL', KEYS[1])
local stop = value and tonumber(value)
if stop and stop > now then return 1 end
return 0
`;
