-- Gives back what an admitted request took from its fixed windows (RateLimitBackend.release), in
-- one atomic step.
--
-- KEYS[i] = the window of unit i (see fixed-window.lua), units with a limit of 0 left out.
-- ARGV[1] = the cost to give back (at least 1).
--
-- A running window's count goes down by the cost, never below 0, and keeps its expiry (DECRBY,
-- or SET KEEPTTL for 0), so the window neither ends early nor starts again: the next request is
-- still counted in it. A window that is no longer running (no key, or no time left) ended since
-- the request was counted, and gave everything back when it ended: nothing to do. A running
-- window may have started after the request's own one ended (a response slower than what was
-- left of its window); nothing in a window's state tells it apart, so it gives the cost back
-- there (see RateLimitBackend.release).
--
-- Reply: 1 when some window gave something back, else 0.
-- Commands: one MGET (every unit), and for a window with a count, its TTL and, when it runs,
-- one write.

local values = redis.call('MGET', unpack(KEYS))
local cost = tonumber(ARGV[1])
local gave = 0
for i = 1, #KEYS do
  local key = KEYS[i]
  local count = tonumber(values[i])
  if count and count > 0 and redis.call(TTL, key) - TTL_BASE > 0 then
    if count > cost then
      redis.call('DECRBY', key, cost)
    else
      redis.call('SET', key, '0', 'KEEPTTL')
    end
    gave = 1
  end
end
return gave
