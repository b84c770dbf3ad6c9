-- Weighted two-window counters: decides one request, the user's block and every unit in one
-- atomic step.
--
-- KEYS[1] = the user's block key, KEYS[1 + i] = the counter of unit i. ARGV[1] = the block's
-- length (whole ms, 0 for none), ARGV[2] = the request's cost c (at least 1), then for each unit
-- i: ARGV[1 + 2i] = its limit L, ARGV[2 + 2i] = its window W (whole ms).
--
-- Windows are aligned to multiples of W on Redis's clock: window k covers [kW, (k + 1)W). A
-- counter is one string, "k:p:q": the last window k a request was admitted in, the admitted cost
-- p of the window before it and q of window k; it expires when window k + 1 ends (PXAT (k + 2)W),
-- when it could no longer weigh in. With e = now - kW, a request is admitted when
-- p * (W - e) + (q + c) * W <= L * W (the estimate p * (1 - e / W) + q + c <= L in exact integer
-- arithmetic), and q grows by c. Remaining: floor((L * W - p * (W - e) - q * W) / W) after the
-- decision. Reset: W - e. Wait: the first later millisecond at which the same request would be
-- admitted if nothing else came (see RateLimitAlgorithm in lib/rules/rule-units.ts).
--
-- Time: a counter's expiry is exactly (k + 2)W, so the instant is (k + 2)W minus its TTL: the
-- script reads TIME only when no unit has a counter yet.
--
-- Reply as in fixed-window.lua; admitted under one unit, reset * (L + 1) + remaining.
-- Commands: one MGET (the block and every counter), the block's TTL when it exists, one TTL (or
-- TIME) for the instant and, when admitted, a SET per counter (KEEPTTL within the same window).

local values = redis.call('MGET', unpack(KEYS))
local block_left = 0
if values[1] then
  local left = redis.call(TTL, KEYS[1]) - TTL_BASE
  if left > 0 then block_left = left end
end
local n = (#ARGV - 2) / 2
if n == 0 and block_left == 0 then return {1, 0, 0, 0} end
local cost = tonumber(ARGV[2])

-- Under one unit and no block, a counter of the current or the previous window (the decisions a
-- limiter makes most) is decided here, without the tables and loops below, when admitted; a
-- rejection goes on to the general path (which reads the counter's TTL once more).
if n == 1 and block_left == 0 and values[2] then
  local k, p, q = string.match(values[2], '^(%d+):(%d+):(%d+)$')
  if k then
    local limit, window = tonumber(ARGV[3]), tonumber(ARGV[4])
    k, p, q = tonumber(k), tonumber(p), tonumber(q)
    local left = redis.call(TTL, KEYS[2]) - TTL_BASE
    if left >= 0 then
      local now = (k + 2) * window - left
      local current = math.floor(now / window)
      local same = current == k
      if not same then
        if current == k + 1 then p, q = q, 0 else p, q = 0, 0 end
      end
      local e = now - current * window
      local used = p * (window - e) + (q + cost) * window
      if used <= limit * window then
        local value = string.format('%d:%d:%d', current, p, q + cost)
        if same then
          redis.call('SET', KEYS[2], value, 'KEEPTTL')
        else
          redis.call('SET', KEYS[2], value, 'PXAT', (current + 2) * window + EPOCH)
        end
        local remaining = math.floor((limit * window - used) / window)
        local base = limit + 1
        local packed = (window - e) * base + remaining
        if packed < 9007199254740992 and base == math.floor(base) then return packed end
        return {1, 0, 0, 0, remaining, window - e}
      end
    end
  end
end

-- Each counter's stored window and costs (false: none, or not one this script wrote), and the
-- instant from the first counter's expiry.
local now = false
local stored = {}
for i = 1, n do
  local value = values[1 + i]
  local k, p, q = false, 0, 0
  if value then
    k, p, q = string.match(value, '^(%d+):(%d+):(%d+)$')
    if k then
      k, p, q = tonumber(k), tonumber(p), tonumber(q)
      if not now then
        local left = redis.call(TTL, KEYS[1 + i]) - TTL_BASE
        if left >= 0 then now = (k + 2) * tonumber(ARGV[2 + 2 * i]) - left end
      end
    else
      k, p, q = false, 0, 0
    end
  end
  stored[3 * i - 2], stored[3 * i - 1], stored[3 * i] = k, p, q
end
if not now then now = now_ms() end

-- Every unit before changing any: its window, e, and p and q as they stand now.
local reply = {1, 0, 0, 0, 0, 0}
local worst, wait = 0, 0
for i = 1, n do
  local limit, window = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  local k = math.floor(now / window)
  local e = now - k * window
  local sk, p, q = stored[3 * i - 2], stored[3 * i - 1], stored[3 * i]
  if sk ~= k then
    if sk == k - 1 then p, q = q, 0 else p, q = 0, 0 end
    -- A counter that moves to window k gets its new expiry when admitted (false: a new one).
    stored[3 * i - 2] = false
  end
  stored[3 * i - 1], stored[3 * i] = p, q
  local unit_wait = 0
  if limit == 0 or cost > limit then
    unit_wait = window -- never fits
  elseif p * (window - e) + (q + cost) * window > limit * window then
    if q + cost <= limit then
      -- Later in this window, as the previous one weighs less (p > 0, or it would fit now).
      local fits = window - math.floor((limit - q - cost) * window / p)
      if fits < window then unit_wait = fits - e end
    end
    if unit_wait == 0 then
      -- In the next window, where this window's q is the previous cost.
      local fits = 0
      if q > 0 then fits = math.max(0, window - math.floor((limit - cost) * window / q)) end
      unit_wait = window - e + fits
    end
  end
  if unit_wait > 0 and unit_wait > wait then worst, wait = i, unit_wait end
  reply[3 + 2 * i], reply[4 + 2 * i] = e, window - e
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
    local limit, window = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
    local p, q, e = stored[3 * i - 1], stored[3 * i], reply[3 + 2 * i]
    reply[3 + 2 * i] =
      math.max(0, math.floor((limit * window - p * (window - e) - q * window) / window))
  end
  return reply
end

-- Admitted: count the cost in every unit's current window.
for i = 1, n do
  local limit, window = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  local k = math.floor(now / window)
  local p, q, e = stored[3 * i - 1], stored[3 * i] + cost, reply[3 + 2 * i]
  local value = string.format('%d:%d:%d', k, p, q)
  if stored[3 * i - 2] then
    redis.call('SET', KEYS[1 + i], value, 'KEEPTTL') -- the same window: the same end
  else
    redis.call('SET', KEYS[1 + i], value, 'PXAT', (k + 2) * window + EPOCH)
  end
  reply[3 + 2 * i] =
    math.max(0, math.floor((limit * window - p * (window - e) - q * window) / window))
end
if n == 1 then
  local base = tonumber(ARGV[3]) + 1
  local packed = reply[6] * base + reply[5]
  if packed < 9007199254740992 and base == math.floor(base) then return packed end
end
return reply
