-- How long a user stays blocked (RateLimitBackend.blockedFor). KEYS[1] = the user's block key.
-- Returns the block's time left in ms, read as the consume scripts read it; 0 when none runs.
local left = redis.call(TTL, KEYS[1]) - TTL_BASE
if left > 0 then return left end
return 0
