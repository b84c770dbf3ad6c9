import { FIXED_WINDOW_EXPIRY_FIELD } from './redis-keys.js';
import {
  LUA_BLOCK_CHECK,
  LUA_EXHAUSTED,
  LUA_PRELUDE,
  LUA_REJECT,
  luaAdmittedReturn,
} from './shared.lua.js';

/**
 * Decides one request with fixed windows, every unit and the block in one atomic step.
 *
 * KEYS[1] = the counter's hash (field per unit: `<count>:<window end ms>`; see redis-keys.ts),
 * KEYS[2] = the user's block key. ARGV[1] = the test clock (µs) or `''` for Redis's `TIME`,
 * ARGV[2] = block length (whole ms, 0 for none), then for n units: ARGV[3 .. 2+n] = their field
 * names, ARGV[3+n .. 2+2n] = their limits, ARGV[3+2n .. 2+3n] = their windows (ms). The names come
 * first and together so that `HMGET` can take them straight from ARGV.
 *
 * A window starts with the first admitted request after the previous one ended and covers
 * `[start, start + window)` in whole milliseconds. Reply: `{allowed, retryAfterMs, blocked, unit
 * index (1-based, 0 for none)}`, followed by `remaining, resetMs` for each unit unless an earlier
 * block decided; admitted under one unit, the packed integer of {@link luaAdmittedReturn}.
 *
 * Commands: `TIME`, `GET` (the block), one `HMGET` (every unit and the hash's recorded expiry)
 * and, when admitted, one `HSET`. The hash must outlive its longest live window. Rather than
 * reading its TTL on every call, the hash records the expiry it was given (field
 * {@link FIXED_WINDOW_EXPIRY_FIELD}, ms on Redis's clock), and the script calls `PEXPIREAT` only
 * when a window starts that ends after that expiry (while windows run on, the expiry already
 * covers them). The expiry never moves earlier, so a unit that only some of the rules sharing a
 * zone count keeps its hash alive until its own window ends. A hash without the field is a new
 * one: every window this script starts outside tests records it. (No released version wrote
 * hashes without it, so the script need not read a TTL to respect one it did not set.)
 */
export const FIXED_WINDOW_CONSUME_LUA = `${LUA_PRELUDE}
-- 1. The user's block, from any counter.
local block_key = KEYS[2]
${LUA_BLOCK_CHECK}
local n = (#ARGV - 2) / 3
if n == 0 then return {1, 0, 0, 0} end

-- 2. Look at every unit before changing any, so a rejected request counts nothing. One read:
-- stored[1] = the hash's recorded expiry, stored[1 + i] = unit i.
local stored = redis.call('HMGET', KEYS[1], '${FIXED_WINDOW_EXPIRY_FIELD}', unpack(ARGV, 3, 2 + n))
local recorded = stored[1] -- read as a number only when a window starts
-- The reply, sized for one unit (more grow it). Until the decision is known, unit i's slots hold
-- its count and window end (false: no live window), which saves two tables.
local reply = {1, 0, 0, 0, 0, 0}
for i = 1, n do
  local limit = tonumber(ARGV[2 + n + i])
  local count, stop = 0, false
  local value = stored[1 + i]
  if value then
    local sep = string.find(value, ':', 1, true)
    if sep then
      count = tonumber(string.sub(value, 1, sep - 1))
      stop = tonumber(string.sub(value, sep + 1))
    end
  end
  if count == nil or not stop or stop <= now then
    count, stop = 0, false -- no live window
  end
  reply[3 + 2 * i], reply[4 + 2 * i] = count, stop
  local unit_wait = 0
  if limit == 0 then
    unit_wait = tonumber(ARGV[2 + 2 * n + i])
  elseif stop and count >= limit then
    unit_wait = stop - now
  end
  ${LUA_EXHAUSTED}
end

-- 3. Rejected: count nothing, maybe block the user, report the longest wait.
if worst > 0 then
  ${LUA_REJECT}
  for i = 1, n do
    local limit = tonumber(ARGV[2 + n + i])
    local count, stop = reply[3 + 2 * i], reply[4 + 2 * i]
    if stop then
      reply[3 + 2 * i] = math.max(0, limit - count)
      reply[4 + 2 * i] = math.ceil(stop - now)
    else
      reply[3 + 2 * i] = limit
      reply[4 + 2 * i] = math.ceil(tonumber(ARGV[2 + 2 * n + i]))
    end
  end
  return reply
end

-- 4. Admitted: count it in every unit. The HMGET reply, read already, becomes HSET's arguments.
local fields = stored
local keep = 0 -- the longest time left in a live window, ms
local started = false -- whether a window starts
for i = 1, n do
  local count, stop = reply[3 + 2 * i] + 1, reply[4 + 2 * i]
  if not stop then
    count, stop = 1, now + tonumber(ARGV[2 + 2 * n + i])
    started = true
  end
  fields[2 * i - 1] = ARGV[2 + i]
  if stop == math.floor(stop) then
    fields[2 * i] = string.format('%d:%d', count, stop)
  else
    fields[2 * i] = string.format('%d:%.17g', count, stop) -- a fractional window
  end
  reply[3 + 2 * i] = tonumber(ARGV[2 + n + i]) - count
  reply[4 + 2 * i] = math.ceil(stop - now)
  if stop - now > keep then keep = stop - now end
end
-- The hash lives as long as its longest live window. A window that was live already is covered:
-- the request that started it made the hash live that long. So only a new window can need more,
-- and only when it ends after the recorded expiry (none: a new hash), which the write then moves.
local size, expire_at = 2 * n, false
if expires and started then
  local stop = now + math.ceil(keep)
  recorded = tonumber(recorded)
  if not recorded or stop > recorded then
    expire_at = string.format('%d', stop)
    fields[size + 1], fields[size + 2] = '${FIXED_WINDOW_EXPIRY_FIELD}', expire_at
    size = size + 2
  end
end
redis.call('HSET', KEYS[1], unpack(fields, 1, size))
if expire_at then redis.call('PEXPIREAT', KEYS[1], expire_at) end
${luaAdmittedReturn('4')}
`;

/**
 * Forgets every unit of one counter. KEYS[1] = the counter's hash; ARGV[1] = the test clock (µs)
 * or `''`. Returns 1 when a live window existed, else 0; the hash is deleted either way. (The
 * recorded-expiry field holds no `:`, so it never counts as a window.)
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
