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
 * decisions and the same waits. Key expiry (`PEXPIRE`, `PX`) only reclaims memory and never decides
 * a request. Under a test clock keys get no expiry at all: Redis expires keys on its own real
 * clock, which a test clock does not follow, so a key could otherwise vanish before its window
 * ended in test time.
 *
 * @module
 */

/**
 * What every script starts with: `now_us` (the time in µs), `now` (in whole ms), `expires`
 * (whether keys get a TTL) and the helper functions. ARGV[1] is reserved for the test clock.
 */
export const LUA_PRELUDE = `
local now_us, expires
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  expires = true
else
  now_us = tonumber(ARGV[1]) -- the test clock
  expires = false
end
local now = math.floor(now_us / 1000)

-- A number as Redis should store it: integers in full (tostring would cut them to 14 digits).
local function num(x)
  if x == math.floor(x) then return string.format('%.0f', x) end
  return string.format('%.17g', x)
end

-- Milliseconds left in the user's block (0 when none). The key holds the block's end, in ms.
local function block_left(key)
  local value = redis.call('GET', key)
  if value then
    local stop = tonumber(value)
    if stop and stop > now then return math.ceil(stop - now) end
  end
  return 0
end

-- Blocks the user for ms (whole) milliseconds from now; PX only reclaims the key afterwards.
local function start_block(key, ms)
  if expires then
    redis.call('SET', key, num(now + ms), 'PX', ms)
  else
    redis.call('SET', key, num(now + ms))
  end
end

-- The exhausted unit with the longest wait so far (0: none), and that wait in ms. Consume scripts
-- report each exhausted unit here; the decision is the worst one.
local worst, wait = 0, 0
local function exhausted(i, unit_wait)
  if unit_wait > 0 and (worst == 0 or unit_wait > wait) then
    worst, wait = i, unit_wait
  end
end

-- A rejected request (consume scripts: KEYS[2] = the block key, ARGV[2] = block ms): starts the
-- user's block when the rule has one and returns the head of the reply, to which the script
-- appends each unit's state.
local function rejection()
  local blocked = 0
  local block_ms = tonumber(ARGV[2])
  if block_ms > 0 then
    start_block(KEYS[2], block_ms)
    blocked = 1
    if block_ms > wait then wait = block_ms end
  end
  return {0, math.ceil(wait), blocked, worst}
end

-- Makes key live at least ms more milliseconds (never shortens it); nothing under a test clock.
local function keep_at_least(key, ms)
  if expires and redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end
`;

/**
 * Lifts a user's block. KEYS[1] = the block key; ARGV[1] = the test clock (µs) or `''`.
 * Returns 1 when a block was still active, else 0; the key is deleted either way.
 */
export const UNBLOCK_LUA = `${LUA_PRELUDE}
local left = block_left(KEYS[1])
redis.call('DEL', KEYS[1])
if left > 0 then return 1 end
return 0
`;
