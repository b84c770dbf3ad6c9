-- Prelude of every script in production: time is Redis's own.
--
-- A key's time left is its PTTL (at most 0: gone, no expiry, or ending this millisecond, all read
-- as "not running"), so a key that lives exactly as long as a window or a block tells how long it
-- has left without TIME. A lifetime is set relative to now (PX, PEXPIRE). A few scripts set an
-- absolute end (PXAT) on Redis's clock, `EPOCH` being 0. `now_ms()` is the instant itself
-- (TIME, truncated to the millisecond), for the scripts that need it.
--
-- The test-clock prelude (test-clock.lua) defines the same names on a virtual clock; the scripts
-- that follow use only these names, so one body serves both.
local TTL, EXPIRE_PX, EXPIRE, TTL_BASE, EPOCH = 'PTTL', 'PX', 'PEXPIRE', 0, 0
local function now_ms()
  -- Seconds and microseconds, as strings that the arithmetic converts: exact, since
  -- seconds * 1000 stays far below 2^53.
  local t = redis.call('TIME')
  return t[1] * 1000 + math.floor(t[2] / 1000)
end
