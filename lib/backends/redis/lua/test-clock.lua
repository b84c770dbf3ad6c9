-- Prelude of every script under the `testClock` test hook: time is the virtual clock the backend
-- sends as the LAST argument (whole microseconds), which this prelude removes from ARGV, so the
-- script body sees the same ARGV as in production (see redis-clock.lua for the names).
--
-- Every lifetime becomes an absolute expiry of `test_now + lifetime + 2^44` ms (PXAT, PEXPIREAT):
-- 2^44 ms is about 557 years, so Redis never expires those keys on its own, and a key's time left
-- is read back on the virtual clock alone (PEXPIRETIME minus the same base). So the decisions are
-- the same for the same sequence of times, however long a test takes. Needs Redis 7.0.
local test_now = math.floor(tonumber(table.remove(ARGV)) / 1000)
local TTL, EXPIRE_PX, EXPIRE = 'PEXPIRETIME', 'PXAT', 'PEXPIREAT'
local EPOCH = 17592186044416
local TTL_BASE = test_now + EPOCH
local function now_ms() return test_now end
