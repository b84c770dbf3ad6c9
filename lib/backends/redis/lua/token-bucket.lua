-- Token buckets (GCRA): decides one request, the user's block and every unit in one atomic step.
--
-- KEYS[1] = the user's block key, KEYS[1 + i] = the bucket of unit i. ARGV[1] = the block's length
-- (whole ms, 0 for none), ARGV[2] = the request's cost c (at least 1), then for each unit i:
-- ARGV[3i] = its rate L (tokens per window), ARGV[3i + 1] = its window W (whole ms),
-- ARGV[3i + 2] = its bucket size B (tokens, the limit unless the rule sets a burst).
--
-- Exact integers, scaled so that one token is W and one millisecond is L: a bucket's debt D is how
-- far its theoretical arrival time lies ahead of now (0 for a full bucket). A request is admitted
-- when D + c * W <= B * W; then D grows by c * W. A bucket is stored as the time D reaches 0, as
-- the key's expiry (so Redis reclaims a full bucket by itself, and no TIME is needed), and a
-- remainder r, as the key's value: end = now + ceil(D / L), r = ceil(D / L) * L - D, so that
-- D = max(0, (end - now) * L - r) exactly.
--
-- Remaining: floor((B * W - D) / W). Reset: ceil(D / L), until the bucket is full again. Wait:
-- ceil((D + c * W - B * W) / L), until enough tokens for this request's cost. A rate of 0 never
-- refills and admits nothing (wait and reset: the window; remaining 0); a cost above B never fits
-- (wait: the window).
--
-- Reply as in fixed-window.lua; admitted under one unit, reset * (B + 1) + remaining.
-- Commands: one MGET (the block and every bucket), a TTL for each of those that exists and, when
-- admitted, a SET per bucket.

local values = redis.call('MGET', unpack(KEYS))
local block_left = 0
if values[1] then
  local left = redis.call(TTL, KEYS[1]) - TTL_BASE
  if left > 0 then block_left = left end
end
local n = (#ARGV - 2) / 3
if n == 0 and block_left == 0 then return {1, 0, 0, 0} end
local cost = tonumber(ARGV[2])

-- Unit 1's debt. Under one unit, a request that fits (the decision a limiter makes most) is
-- counted and answered here, without the reply table and the loop below.
local debt1 = 0
local rest1 = tonumber(values[2])
if rest1 then
  local left = redis.call(TTL, KEYS[2]) - TTL_BASE
  if left > 0 then
    debt1 = left * tonumber(ARGV[3]) - rest1
    if debt1 < 0 then debt1 = 0 end
  end
end
if n == 1 and block_left == 0 then
  local rate, window, size = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
  local debt = debt1 + cost * window
  if rate > 0 and debt <= size * window then
    local until_full = math.ceil(debt / rate)
    redis.call('SET', KEYS[2], until_full * rate - debt, EXPIRE_PX, until_full + TTL_BASE)
    local remaining, base = math.floor((size * window - debt) / window), size + 1
    local packed = until_full * base + remaining
    if packed < 9007199254740992 and base == math.floor(base) then return packed end
    return {1, 0, 0, 0, remaining, until_full}
  end
end

-- Look at every unit before changing any, so a rejected request takes no token. Until the decision
-- is known, unit i's first reply slot holds its debt.
local reply = {1, 0, 0, 0, 0, 0}
local worst, wait = 0, 0
for i = 1, n do
  local rate, window, size = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2])
  local debt = debt1
  if i > 1 then
    debt = 0
    local rest = tonumber(values[1 + i])
    if rest then
      local left = redis.call(TTL, KEYS[1 + i]) - TTL_BASE
      if left > 0 then
        debt = left * rate - rest
        if debt < 0 then debt = 0 end
      end
    end
  end
  reply[3 + 2 * i] = debt
  local unit_wait = 0
  if rate == 0 or cost > size then
    unit_wait = window -- never fits
  else
    local over = debt + cost * window - size * window
    if over > 0 then unit_wait = math.ceil(over / rate) end
  end
  if unit_wait > 0 and unit_wait > wait then worst, wait = i, unit_wait end
end

-- Rejected (by a unit, or by a running block): take nothing, maybe block the user.
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
    local rate, window, size = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2])
    local debt = reply[3 + 2 * i]
    if rate == 0 then
      reply[3 + 2 * i], reply[4 + 2 * i] = 0, window
    else
      reply[3 + 2 * i] = math.max(0, math.floor((size * window - debt) / window))
      reply[4 + 2 * i] = math.ceil(debt / rate)
    end
  end
  return reply
end

-- Admitted: take the tokens in every unit.
for i = 1, n do
  local rate, window, size = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2])
  local debt = reply[3 + 2 * i] + cost * window
  local until_full = math.ceil(debt / rate)
  redis.call('SET', KEYS[1 + i], until_full * rate - debt, EXPIRE_PX, until_full + TTL_BASE)
  reply[3 + 2 * i] = math.max(0, math.floor((size * window - debt) / window))
  reply[4 + 2 * i] = until_full
end
if n == 1 then
  local base = tonumber(ARGV[5]) + 1
  local packed = reply[6] * base + reply[5]
  if packed < 9007199254740992 and base == math.floor(base) then return packed end
end
return reply
