-- Gives back what an admitted request took from its sliding logs (RateLimitBackend.release), in
-- one atomic step.
--
-- KEYS[i] = the log of unit i (see sliding-log.lua), units with a limit of 0 left out.
-- ARGV[1] = the cost c to give back (at least 1), ARGV[1 + i] = the window of unit i (ms).
--
-- Removes the newest entries, up to c, that still count (s > now - window), from the tail, where
-- the request's own entries are unless a later request was admitted before the release; the
-- entries are only times, so the state cannot tell (see RateLimitBackend.release). An entry that
-- left its window gave its capacity back then: once the newest entry left, nothing is removed.
-- The head, and so the log's expiry, stays (an emptied list is deleted by Redis itself).
--
-- Reply: 1 when some log gave something back, else 0.
-- Commands: TIME once, then per unit an LRANGE of the last c entries and, when one counts, LTRIM.

local now = now_ms()
local cost = tonumber(ARGV[1])
local gave = 0
for i = 1, #KEYS do
  local key = KEYS[i]
  local out = now - tonumber(ARGV[1 + i])
  local tail = redis.call('LRANGE', key, string.format('%d', -cost), '-1')
  local drop = 0
  for j = #tail, 1, -1 do
    if (tonumber(tail[j]) or 0) > out then drop = drop + 1 else break end
  end
  if drop > 0 then
    redis.call('LTRIM', key, '0', string.format('%d', -drop - 1))
    gave = 1
  end
end
return gave
