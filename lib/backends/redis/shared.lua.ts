/**
 * Lua shared by the scripts of both Redis backends: the clock and the user's block.
 *
 * Time always comes from Redis (`TIME`), never from the application servers, shifted by ARGV[1]
 * (microseconds; 0 in production, the `timeOffsetMs` test hook otherwise). Every script also
 * returns the (shifted) time it ran at, in µs, so tests can check when a decision was made. Window ends, block
 * ends and log timestamps are stored as values and compared with that time; key expiry
 * (`PEXPIRE`, `PX`) only reclaims memory and never decides a request.
 *
 * @module
 */

/** Local helper functions every script starts with. */
export const LUA_PRELUDE = `
-- Redis time in microseconds, plus the offset (microseconds) passed by the backend.
local function now_us(offset)
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2]) + offset
end

-- A number as Redis should store it: integers in full (tostring would cut them to 14 digits).
local function num(x)
  if x == math.floor(x) then return string.format('%.0f', x) end
  return string.format('%.17g', x)
end

-- Milliseconds left in the user's block (0 when none). The key holds the block's end, in ms.
local function block_left(key, now)
  local value = redis.call('GET', key)
  if value then
    local stop = tonumber(value)
    if stop and stop > now then return math.ceil(stop - now) end
  end
  return 0
end

-- Blocks the user for ms milliseconds from now; PX only reclaims the key afterwards.
local function start_block(key, now, ms)
  redis.call('SET', key, num(now + ms), 'PX', math.ceil(ms))
end
`;

/**
 * Lifts a user's block. KEYS[1] = the block key; ARGV[1] = time offset (µs).
 * Returns `{1 when a block was still active else 0, Redis time (µs)}`; the key is deleted
 * either way.
 */
export const UNBLOCK_LUA = `${LUA_PRELUDE}
local now_micro = now_us(tonumber(ARGV[1]))
local left = block_left(KEYS[1], math.floor(now_micro / 1000))
redis.call('DEL', KEYS[1])
if left > 0 then return {1, now_micro} end
return {0, now_micro}
`;
