import { LUA_PRELUDE } from './shared.lua.js';

/**
 * Decides one request with exact sliding windows (a log of admitted requests per unit), every
 * unit and the block in one atomic step.
 *
 * KEYS[1] = the counter's sequence key, KEYS[2] = the user's block key, KEYS[2+i] = the log
 * (sorted set, score = request time in µs) of unit i. ARGV[1] = the test clock (µs) or `''` for
 * Redis's `TIME`, ARGV[2] = block length (whole ms, 0 for none), then for each unit i:
 * ARGV[1+2i] = its limit, ARGV[2+2i] = its window (ms).
 *
 * Decisions use whole milliseconds, like `MemoryBackend`: an entry logged during millisecond `s`
 * counts for a request at `now` while `s > now - window`, and leaves the window at `s + window`.
 * The µs scores only order the log. A unit admits a request when fewer than `limit` entries are in
 * its window. When it is full, the wait is the time until enough old entries leave for one more
 * request: the entry at index `count - limit` (oldest first) leaves at its millisecond + the
 * window. Rejected requests add nothing to any log. Members are `<µs>-<sequence>`, unique even
 * within one microsecond.
 *
 * Reply: `{allowed, retryAfterMs, blocked, unit index (1-based, 0 for none)}`, followed by
 * `remaining, resetMs` for each unit unless an earlier block decided. `resetMs` is the time until
 * the unit admits a request again when it is full, else until its oldest entry leaves (the full
 * window for an empty log).
 */
export const SLIDING_WINDOW_CONSUME_LUA = `${LUA_PRELUDE}
-- 1. The user's block, from any counter.
local left = block_left(KEYS[2])
if left > 0 then return {0, left, 1, 0} end

-- Milliseconds until the entry at index leaves a window of window_ms.
local function leaves_in(key, index, window_ms)
  local entry = redis.call('ZRANGE', key, index, index, 'WITHSCORES')
  return math.ceil(math.floor(tonumber(entry[2]) / 1000) + window_ms - now)
end

local function reset_ms(key, count, limit, window_ms)
  if limit == 0 or count == 0 then return math.ceil(window_ms) end
  if count >= limit then return leaves_in(key, count - limit, window_ms) end
  return leaves_in(key, 0, window_ms)
end

-- 2. Drop entries that left their window, then look at every unit before changing any.
local n = (#ARGV - 2) / 2
local limits, windows, counts = {}, {}, {}
for i = 1, n do
  local key = KEYS[2 + i]
  local limit = tonumber(ARGV[1 + 2 * i])
  local window_ms = tonumber(ARGV[2 + 2 * i])
  limits[i], windows[i] = limit, window_ms
  -- Out: entries whose millisecond is at most now - window, i.e. scores below this bound (µs).
  local first_in_us = (math.floor(now - window_ms) + 1) * 1000
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. num(first_in_us))
  local count = redis.call('ZCARD', key)
  counts[i] = count
  local unit_wait = 0
  if limit == 0 then
    unit_wait = math.ceil(window_ms)
  elseif count >= limit then
    unit_wait = leaves_in(key, count - limit, window_ms)
  end
  exhausted(i, unit_wait)
end

-- 3. Rejected: log nothing, maybe block the user, report the longest wait.
if worst > 0 then
  local reply = rejection()
  for i = 1, n do
    reply[#reply + 1] = math.max(0, limits[i] - counts[i])
    reply[#reply + 1] = reset_ms(KEYS[2 + i], counts[i], limits[i], windows[i])
  end
  return reply
end

-- 4. Admitted: log it in every unit under one unique member.
local sequence = redis.call('INCR', KEYS[1])
local member = num(now_us) .. '-' .. num(sequence)
local score = num(now_us)
local reply = {1, 0, 0, 0}
local longest = 0
for i = 1, n do
  local key = KEYS[2 + i]
  local window_ms = windows[i]
  redis.call('ZADD', key, score, member)
  -- Every entry leaves within a window of this newest one.
  if expires then redis.call('PEXPIRE', key, math.ceil(window_ms)) end
  local count = counts[i] + 1
  reply[#reply + 1] = limits[i] - count
  reply[#reply + 1] = reset_ms(key, count, limits[i], window_ms)
  if window_ms > longest then longest = window_ms end
end
keep_at_least(KEYS[1], math.ceil(longest))
return reply
`;

/**
 * Forgets one counter's logs. KEYS[1] = the counter's sequence key, KEYS[1+i] = a log;
 * ARGV[1] = the test clock (µs) or `''`, ARGV[1+i] = the window (ms) of log i. Returns 1 when a
 * log held an entry still inside its window, else 0; every key is deleted either way.
 */
export const SLIDING_WINDOW_RESET_LUA = `${LUA_PRELUDE}
local live = 0
for i = 2, #KEYS do
  if live == 0 then
    local first_in_us = (math.floor(now - tonumber(ARGV[i])) + 1) * 1000
    if redis.call('ZCOUNT', KEYS[i], num(first_in_us), '+inf') > 0 then live = 1 end
  end
end
redis.call('DEL', unpack(KEYS))
return live
`;
