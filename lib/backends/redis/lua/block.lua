-- Blocks a user on every counter (RateLimitBackend.block). KEYS[1] = the user's block key,
-- ARGV[1] = the block's length (whole ms, at least 1). Replaces a running block, a longer one
-- too: the same key, value and lifetime a rule's blockTime starts in the consume scripts, so every
-- consume script then rejects the user with `blocked`, and unblock lifts it. Returns 1.
redis.call('SET', KEYS[1], '1', EXPIRE_PX, tonumber(ARGV[1]) + TTL_BASE)
return 1
