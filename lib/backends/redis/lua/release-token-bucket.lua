-- Gives back what an admitted request took from its token buckets (RateLimitBackend.release), in
-- one atomic step.
--
-- KEYS[i] = the bucket of unit i (see token-bucket.lua), units with a limit of 0 left out.
-- ARGV[1] = the cost c to give back (at least 1), then for each unit i: ARGV[2i] = its rate L,
-- ARGV[2i + 1] = its window W (whole ms).
--
-- The debt D goes down by c * W (the theoretical arrival time moves back by the cost's refill
-- time), never below 0 (never before now): a bucket that is full again has nothing to give back,
-- and one that becomes full is deleted, as a full bucket has no key. Otherwise it is stored as the
-- consume script stores it.
--
-- Reply: 1 when some bucket gave something back, else 0.
-- Commands: one MGET (every unit), a TTL per bucket that exists and, for one with a debt, a SET
-- or a DEL.

local values = redis.call('MGET', unpack(KEYS))
local cost = tonumber(ARGV[1])
local gave = 0
for i = 1, #KEYS do
  local key = KEYS[i]
  local rest = tonumber(values[i])
  if rest then
    local rate, window = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
    local left = redis.call(TTL, key) - TTL_BASE
    local debt = left * rate - rest
    if left > 0 and debt > 0 then
      debt = debt - cost * window
      if debt <= 0 then
        redis.call('DEL', key)
      else
        local until_full = math.ceil(debt / rate)
        redis.call('SET', key, until_full * rate - debt, EXPIRE_PX, until_full + TTL_BASE)
      end
      gave = 1
    end
  end
end
return gave
