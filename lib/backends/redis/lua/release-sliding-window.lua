-- Gives back what an admitted request took from its weighted two-window counters
-- (RateLimitBackend.release), in one atomic step.
--
-- KEYS[i] = the counter of unit i (see sliding-window.lua: "k:p:q", expiring when window k + 1
-- ends), units with a limit of 0 left out. ARGV[1] = the cost to give back (at least 1).
--
-- The cost comes off q, the cost of window k, the last window a request was counted in, never
-- below 0, keeping the expiry. A counter that still has time left still weighs in: window k is
-- the current window (q counts whole) or the previous one (q weighs as the previous cost). One
-- that expired had window k end a window ago: nothing of it counts, nothing to do. If the
-- request was counted in the window before k (its response came after a window end, and another
-- request was counted since), the state cannot tell: the cost comes off window k all the same
-- (see RateLimitBackend.release).
--
-- Reply: 1 when some counter gave something back, else 0.
-- Commands: one MGET (every unit), and for a counter with a cost, its TTL and, when it has time
-- left, a SET.

local values = redis.call('MGET', unpack(KEYS))
local cost = tonumber(ARGV[1])
local gave = 0
for i = 1, #KEYS do
  local key = KEYS[i]
  local value = values[i]
  if value then
    local k, p, q = string.match(value, '^(%d+):(%d+):(%d+)$')
    if k and tonumber(q) > 0 and redis.call(TTL, key) - TTL_BASE > 0 then
      local left = tonumber(q) - cost
      if left < 0 then left = 0 end
      redis.call('SET', key, string.format('%s:%s:%d', k, p, left), 'KEEPTTL')
      gave = 1
    end
  end
end
return gave
