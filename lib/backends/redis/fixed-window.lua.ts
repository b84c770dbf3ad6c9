import { LUA_PRELUDE } from './shared.lua.js';

/**
 * Decides one request with fixed windows, every unit and the block in one atomic step.
 *
 * KEYS[1] = the counter's hash (field per unit: `<count>:<window end ms>`), KEYS[2] = the user's
 * block key. ARGV[1] = the test clock (µs) or `''` for Redis's `TIME`, ARGV[2] = block length
 * (whole ms, 0 for none), then for each unit i: ARGV[3i] = its field name, ARGV[3i+1] = its limit,
 * ARGV[3i+2] = its window (ms).
 *
 * A window starts with the first admitted request after the previous one ended and covers
 * `[start, start + window)` in whole milliseconds. Reply: `{allowed, retryAfterMs, blocked, unit
 * index (1-based, 0 for none)}`, followed by `remaining, resetMs` for each unit unless an earlier
 * block decided.
 */
export const FIXED_WINDOW_CONSUME_LUA = `${LUA_PRELUDE}
-- 1. The user's block, from any counter.
local left = block_left(KEYS[2])
if left > 0 then return {0, left, 1, 0} end

-- 2. Look at every unit before changing any, so a rejected request counts nothing.
local n = (#ARGV - 2) / 3
local names, limits, windows, counts, ends = {}, {}, {}, {}, {}
for i = 1, n do
  names[i] = ARGV[3 * i]
  limits[i] = tonumber(ARGV[3 * i + 1])
  windows[i] = tonumber(ARGV[3 * i + 2])
end
local stored = {}
if n > 0 then stored = redis.call('HMGET', KEYS[1], unpack(names)) end
for i = 1, n do
  local count, stop = 0, nil
  local value = stored[i]
  if value then
    local sep = string.find(value, ':', 1, true)
    if sep then
      count = tonumber(string.sub(value, 1, sep - 1))
      stop = tonumber(string.sub(value, sep + 1))
    end
  end
  if count == nil or stop == nil or stop <= now then
    count, stop = 0, nil -- no live window
  end
  counts[i], ends[i] = count, stop
  local unit_wait = 0
  if limits[i] == 0 then
    unit_wait = windows[i]
  elseif stop and count >= limits[i] then
    unit_wait = stop - now
  end
  exhausted(i, unit_wait)
end

-- 3. Rejected: count nothing, maybe block the user, report the longest wait.
if worst > 0 then
  local reply = rejection()
  for i = 1, n do
    if ends[i] then
      reply[#reply + 1] = math.max(0, limits[i] - counts[i])
      reply[#reply + 1] = math.ceil(ends[i] - now)
    else
      reply[#reply + 1] = limits[i]
      reply[#reply + 1] = math.ceil(windows[i])
    end
  end
  return reply
end

-- 4. Admitted: count it in every unit; keep the hash as long as its longest live window.
local reply = {1, 0, 0, 0}
local fields = {}
local keep = 0
for i = 1, n do
  local count, stop = counts[i] + 1, ends[i]
  if not stop then
    count, stop = 1, now + windows[i]
  end
  fields[#fields + 1] = names[i]
  fields[#fields + 1] = num(count) .. ':' .. num(stop)
  reply[#reply + 1] = limits[i] - count
  reply[#reply + 1] = math.ceil(stop - now)
  if stop - now > keep then keep = stop - now end
end
if n > 0 then
  redis.call('HSET', KEYS[1], unpack(fields))
  keep_at_least(KEYS[1], math.ceil(keep))
end
return reply
`;

/**
 * Forgets every unit of one counter. KEYS[1] = the counter's hash; ARGV[1] = the test clock (µs)
 * or `''`. Returns 1 when a live window existed, else 0; the hash is deleted either way.
 */
export const FIXED_WINDOW_RESET_LUA = `${LUA_PRELUDE}
local live = 0
for _, value in ipairs(redis.call('HVALS', KEYS[1])) do
  local sep = string.find(value, ':', 1, true)
  local stop = sep and tonumber(string.sub(value, sep + 1))
  if stop and stop > now then
    live = 1
    break
  end
end
redis.call('DEL', KEYS[1])
return live
`;
