-- Fixed windows: decides one request, the user's block and every unit in one atomic step.
--
-- KEYS[1] = the user's block key, KEYS[1 + i] = the window of unit i (a string holding its count).
-- ARGV[1] = the block's length (whole ms, 0 for none), ARGV[2] = the request's cost (at least 1),
-- then for n units: ARGV[2 + i] = the limit of unit i, ARGV[2 + n + i] = its window (whole ms).
--
-- A window is a key that lives exactly as long as the window: the first admitted request after
-- the previous window ended writes its cost with a lifetime of one window, later ones INCR (INCRBY
-- for a cost above 1) it, which keeps the expiry, and the time it has left is its TTL. So a window
-- covers [start, start + window) in whole milliseconds of the clock, and Redis reclaims it when it
-- ends. No TIME: Redis's clock is each key's expiry.
--
-- Reply: {allowed, retryAfterMs, blocked, unit index (1-based, 0 for none)}, then remaining and
-- resetMs for each unit; admitted under one unit, the one integer reset * (limit + 1) + remaining
-- when that is exact (Redis turns a table into a reply for about half a microsecond).
--
-- Commands: one MGET (the block and every unit), a TTL for each of those that exists and, when
-- admitted, an INCR per running window or a SET per window that starts. A request rejected while
-- the user is blocked writes nothing.

local values = redis.call('MGET', unpack(KEYS))
local block_left = 0
if values[1] then
  local left = redis.call(TTL, KEYS[1]) - TTL_BASE
  if left > 0 then block_left = left end
end
local n = (#ARGV - 2) / 2
if n == 0 and block_left == 0 then return {1, 0, 0, 0} end
local cost = tonumber(ARGV[2])

-- Unit 1 first: under one unit, a running window with room (the decision a limiter makes most) is
-- counted and answered here, without the reply table and the loop below.
local count1, left1 = tonumber(values[2]), 0
if count1 then left1 = redis.call(TTL, KEYS[2]) - TTL_BASE end
if left1 <= 0 then count1, left1 = 0, 0 end
if n == 1 and left1 > 0 and block_left == 0 then
  local limit = tonumber(ARGV[3])
  if count1 + cost <= limit then
    if cost == 1 then redis.call('INCR', KEYS[2]) else redis.call('INCRBY', KEYS[2], cost) end
    local remaining, base = limit - count1 - cost, limit + 1
    local packed = left1 * base + remaining
    if packed < 9007199254740992 and base == math.floor(base) then return packed end
    return {1, 0, 0, 0, remaining, left1}
  end
end

-- Look at every unit before changing any, so a rejected request counts nothing. Until the
-- decision is known, unit i's reply slots hold its count and the time its window has left.
local reply = {1, 0, 0, 0, 0, 0}
local worst, wait = 0, 0
for i = 1, n do
  local limit, window = tonumber(ARGV[2 + i]), tonumber(ARGV[2 + n + i])
  local count, left = count1, left1
  if i > 1 then
    count, left = tonumber(values[1 + i]), 0
    if count then left = redis.call(TTL, KEYS[1 + i]) - TTL_BASE end
    if left <= 0 then count, left = 0, 0 end
  end
  reply[3 + 2 * i], reply[4 + 2 * i] = count, left
  local unit_wait = 0
  if limit == 0 or cost > limit then
    unit_wait = window -- never fits
  elseif left > 0 and count + cost > limit then
    unit_wait = left
  end
  if unit_wait > 0 and unit_wait > wait then worst, wait = i, unit_wait end
end

-- Rejected (by a unit, or by a running block): count nothing, maybe block the user.
if worst > 0 or block_left > 0 then
  local blocked = 0
  if block_left > 0 then
    -- A request made while blocked neither extends nor restarts the block.
    blocked = 1
    if block_left > wait then wait = block_left end
  else
    local block_ms = tonumber(ARGV[1])
    if block_ms > 0 then
      redis.call('SET', KEYS[1], '1', EXPIRE_PX, block_ms + TTL_BASE)
      blocked = 1
      if block_ms > wait then wait = block_ms end
    end
  end
  reply[1], reply[2], reply[3], reply[4] = 0, wait, blocked, worst
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

-- Admitted: count it in every unit, starting the windows that are not running.
for i = 1, n do
  local key, left = KEYS[1 + i], reply[4 + 2 * i]
  local window = tonumber(ARGV[2 + n + i])
  if left > 0 then
    if cost == 1 then redis.call('INCR', key) else redis.call('INCRBY', key, cost) end
  else
    redis.call('SET', key, cost, EXPIRE_PX, window + TTL_BASE)
    left = window
  end
  reply[3 + 2 * i] = tonumber(ARGV[2 + i]) - (reply[3 + 2 * i] + cost)
  reply[4 + 2 * i] = left
end
if n == 1 then
  local base = tonumber(ARGV[3]) + 1
  local packed = reply[6] * base + reply[5]
  if packed < 9007199254740992 and base == math.floor(base) then return packed end
end
return reply
