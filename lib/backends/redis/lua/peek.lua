-- Driver of a peek (RateLimitBackend.peek): appended after `<prelude> local function
-- decide(KEYS, ARGV) <consume script body> end`, so it runs the very script that decides a
-- request, once, on the keys and arguments of a consume call.
--
-- The call asks for no block (ARGV[1] = 0) and a cost above what any of its units can hold. The
-- contract makes such a request rejected by every unit, counting nothing and starting no block,
-- while it reports every unit as it stands: exactly what a peek shows, computed by the same lines
-- that report a rejected request's units, so the two can never drift apart. (A sliding log may
-- drop entries that left their window, as any decision does; that changes no decision.) The
-- reply folds the block into the wait, so the block's time left is read here.
--
-- Reply: {the block's time left (ms, 0 for none), the consume script's reply}.

local reply = decide(KEYS, ARGV)
local block_left = redis.call(TTL, KEYS[1]) - TTL_BASE
if block_left < 0 then block_left = 0 end
return {block_left, reply}
