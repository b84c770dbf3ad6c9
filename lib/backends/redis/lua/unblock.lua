-- Lifts a user's block. KEYS[1] = the block key. Returns 1 when a block was still running, else 0;
-- the key is deleted either way.
local left = redis.call(TTL, KEYS[1]) - TTL_BASE
redis.call('DEL', KEYS[1])
if left > 0 then return 1 end
return 0
