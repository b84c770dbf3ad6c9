-- Forgets one counter in every algorithm and unit. KEYS[1..m] = keys that live as long as what
-- they count (fixed windows, weighted counters, token buckets), m = ARGV[1]; KEYS[m + j] = a
-- sliding log, ARGV[1 + j] = its window (ms). Returns 1 when one of them still counted something
-- (a key with time left, a log whose newest entry is inside its window), else 0; every key is
-- deleted either way.
local live = 0
local m = tonumber(ARGV[1])
for i = 1, m do
  if redis.call(TTL, KEYS[i]) - TTL_BASE > 0 then
    live = 1
    break
  end
end
if live == 0 and #KEYS > m then
  local now = now_ms()
  for j = 1, #KEYS - m do
    local newest = redis.call('LINDEX', KEYS[m + j], '-1')
    if newest and (tonumber(newest) or 0) > now - tonumber(ARGV[1 + j]) then
      live = 1
      break
    end
  end
end
redis.call('DEL', unpack(KEYS))
return live
