import {
  LUA_EXHAUSTED,
  LUA_REJECT,
  LUA_TEST_CLOCK,
  luaAdmittedReturn,
  luaBlockCheck,
  luaPackedReturn,
  luaSetExpiring,
  luaTimeLeft,
} from './shared.lua.js';

/**
 * Sets the Lua variables `count, left` (the names given) for unit `i` (a Lua expression): its
 * count and the time its window has left in ms, or 0 and 0 when none is running (or the key holds
 * something this script never writes). Needs `values` from the script's `MGET`.
 */
function luaReadWindow(count: string, left: string, i: string): string {
  return `${count}, ${left} = tonumber(values[1 + ${i}]), 0
if ${count} then
  ${luaTimeLeft(left, `KEYS[1 + ${i}]`)}
end
if ${left} <= 0 then ${count}, ${left} = 0, 0 end`;
}

/**
 * Decides one request with fixed windows, every unit and the block in one atomic step.
 *
 * KEYS[1] = the user's block key, KEYS[1+i] = the window of unit i (a string holding its count,
 * see redis-keys.ts). ARGV[1] = the test clock (µs) or `''`, ARGV[2] = block length (whole ms, 0
 * for none), then for n units: ARGV[2+i] = the limit of unit i, ARGV[2+n+i] = its window (whole
 * ms, at least 1; the backend rounds a fractional window up, which decides exactly as the
 * fractional one would in whole-millisecond time).
 *
 * A window is a key that lives exactly as long as the window (see shared.lua.ts): the first
 * admitted request after the previous window ended writes `1` with `PX <window>`, later ones
 * `INCR` it (which keeps its expiry), and the time it has left is its `PTTL`. So a window covers
 * `[start, start + window)` in whole milliseconds of Redis's clock, and Redis reclaims it the
 * moment it ends. Reply: `{allowed, retryAfterMs, blocked, unit index (1-based, 0 for none)}`,
 * followed by `remaining, resetMs` for each unit; admitted under one unit, the packed integer of
 * {@link luaAdmittedReturn}. While the user is blocked, the request is rejected (`blocked` 1) with
 * every unit read but none counted, the wait being the longer of the block's remainder and the
 * exhausted units' (the unit index names the exhausted unit with the longest wait, 0 for none).
 *
 * Commands: one `MGET` (the block and every unit), then a `PTTL` for each of those that exists
 * and, when admitted, an `INCR` per running window or a `SET` per window that starts; a request
 * rejected while the user is blocked writes nothing (`MGET` and `PTTL`s only). An admitted
 * request in a running one-unit window costs `MGET`, `PTTL`, `INCR`: no `TIME`, and no number
 * parsed from or formatted into text but the count. That case, the decision a limiter makes most,
 * is answered before the general loop, with no table (about half a microsecond of Redis's CPU less
 * per call, measured with `INFO commandstats` on 100,000 keys).
 */
export const FIXED_WINDOW_CONSUME_LUA = `${LUA_TEST_CLOCK}
-- 1. One read for the block and every unit: values[1] = the block, values[1 + i] = unit i.
local values = redis.call('MGET', unpack(KEYS))
${luaBlockCheck('KEYS[1]', 'values[1]')}
local n = (#ARGV - 2) / 2
if n == 0 and block_left == 0 then return {1, 0, 0, 0} end

-- 2. Unit 1 first. Under one unit, a running window with room left (the decision a limiter makes
-- most) is counted and answered here, without the reply table and the loop below, unless the
-- user is blocked.
local count1, left1
${luaReadWindow('count1', 'left1', '1')}
if n == 1 and left1 > 0 and block_left == 0 then
  local limit = tonumber(ARGV[3])
  if count1 < limit then
    redis.call('INCR', KEYS[2])
    ${luaPackedReturn('limit', 'limit - count1 - 1', 'left1')}
    return {1, 0, 0, 0, limit - count1 - 1, left1}
  end
end

-- 3. Look at every unit before changing any, so a rejected request counts nothing.
-- The reply, sized for one unit (more grow it). Until the decision is known, unit i's slots hold
-- its count and the time its window has left (0: none running), which saves two tables.
local reply = {1, 0, 0, 0, 0, 0}
for i = 1, n do
  local limit = tonumber(ARGV[2 + i])
  local count, left = count1, left1
  if i > 1 then
    ${luaReadWindow('count', 'left', 'i')}
  end
  reply[3 + 2 * i], reply[4 + 2 * i] = count, left
  local unit_wait = 0
  if limit == 0 then
    unit_wait = tonumber(ARGV[2 + n + i])
  elseif left > 0 and count >= limit then
    unit_wait = left
  end
  ${LUA_EXHAUSTED}
end

-- 4. Rejected (by a unit, or by a running block): count nothing, maybe block the user, report
-- the longest wait.
if worst > 0 or block_left > 0 then
  ${LUA_REJECT}
  for i = 1, n do
    local limit = tonumber(ARGV[2 + i])
    if reply[4 + 2 * i] > 0 then
      reply[3 + 2 * i] = math.max(0, limit - reply[3 + 2 * i])
    else
      reply[3 + 2 * i], reply[4 + 2 * i] = limit, tonumber(ARGV[2 + n + i])
    end
  end
  return reply
end

-- 5. Admitted: count it in every unit, starting the windows that are not running.
for i = 1, n do
  local key, left = KEYS[1 + i], reply[4 + 2 * i]
  if left > 0 then
    redis.call('INCR', key)
  else
    ${luaSetExpiring('key', "'1'", `ARGV[2 + n + i]`)}
    left = tonumber(ARGV[2 + n + i])
  end
  reply[3 + 2 * i] = tonumber(ARGV[2 + i]) - (reply[3 + 2 * i] + 1)
  reply[4 + 2 * i] = left
end
${luaAdmittedReturn('3')}
`;

/**
 * Forgets one counter's windows. KEYS[i] = a unit's window; ARGV[1] = the test clock (µs) or
 * `''`. Returns 1 when one of them was running, else 0; every key is deleted either way.
 */
export const FIXED_WINDOW_RESET_LUA = `${LUA_TEST_CLOCK}
local live = 0
for i = 1, #KEYS do
  local left
  ${luaTimeLeft('left', 'KEYS[i]')}
  if left > 0 then
    live = 1
    break
  end
end
redis.call('DEL', unpack(KEYS))
return live
`;
