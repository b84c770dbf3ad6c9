import { LUA_BLOCK_CHECK, LUA_EXHAUSTED, LUA_PRELUDE, LUA_REJECT } from './shared.lua.js';

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
 *
 * Commands, per unit: `ZREMRANGEBYSCORE` (drop what left the window), `ZCARD`, and one `ZRANGE`
 * for the one entry the reply needs (the entry at `count - limit` when full, else the oldest; none
 * for an empty log), its time read from the member; when admitted, `ZADD` and `PEXPIRE` (the log
 * lives one window past its newest entry). Once per call: `TIME`, `GET` (the block) and, when
 * admitted, `INCR` of the sequence. The oldest entry after an admission is the older of the
 * oldest read before and the new one, so no second `ZRANGE` is needed.
 *
 * The sequence only has to keep members apart within one microsecond, so it gets its TTL (the
 * longest window of the call) when `INCR` creates it, and is not extended: when it expires, the
 * next admission starts a new sequence at 1, at a later microsecond than every member logged
 * under the old one (Redis's clock moved on), so no member repeats. This saves a `PTTL` and a
 * `PEXPIRE` per decision.
 */
export const SLIDING_WINDOW_CONSUME_LUA = `${LUA_PRELUDE}
-- 1. The user's block, from any counter.
${LUA_BLOCK_CHECK}
local n = (#ARGV - 2) / 2
if n == 0 then return {1, 0, 0, 0} end

-- 2. Drop entries that left their window, then look at every unit before changing any.
-- The reply, sized for one unit (more grow it). Until the decision is known, unit i's slots hold
-- its count and the millisecond of the one entry its reply needs (false: an empty log or a limit
-- of 0), which saves two tables.
local reply = {1, 0, 0, 0, 0, 0}
local longest = 0
for i = 1, n do
  local key = KEYS[2 + i]
  local limit = tonumber(ARGV[1 + 2 * i])
  local window_ms = tonumber(ARGV[2 + 2 * i])
  if window_ms > longest then longest = window_ms end
  -- Out: entries whose millisecond is at most now - window, i.e. scores below this bound (µs).
  local first_in_us = (math.floor(now - window_ms) + 1) * 1000
  redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('(%d', first_in_us))
  local count = redis.call('ZCARD', key)
  local mark = false
  if count > 0 and limit > 0 then
    -- Full: the entry at count - limit, whose leaving makes room for one more request. Else the
    -- oldest, for the reset time.
    local index = '0'
    if count > limit then index = string.format('%d', count - limit) end
    local member = redis.call('ZRANGE', key, index, index)[1]
    -- Its time, from the member (\`<µs>-<sequence>\`, logged under the same µs as its score)
    -- rather than WITHSCORES, whose reply Redis would format from a double.
    local dash = string.find(member, '-', 1, true)
    local us = dash and tonumber(string.sub(member, 1, dash - 1))
    if not us then us = tonumber(redis.call('ZSCORE', key, member)) end
    mark = math.floor(us / 1000)
  end
  reply[3 + 2 * i], reply[4 + 2 * i] = count, mark
  local unit_wait = 0
  if limit == 0 then
    unit_wait = math.ceil(window_ms)
  elseif count >= limit then
    unit_wait = math.ceil(mark + window_ms - now) -- when that entry leaves
  end
  ${LUA_EXHAUSTED}
end

-- 3. Rejected: log nothing, maybe block the user, report the longest wait.
if worst > 0 then
  ${LUA_REJECT}
  for i = 1, n do
    local count, mark = reply[3 + 2 * i], reply[4 + 2 * i]
    local window_ms = tonumber(ARGV[2 + 2 * i])
    reply[3 + 2 * i] = math.max(0, tonumber(ARGV[1 + 2 * i]) - count)
    if mark then
      reply[4 + 2 * i] = math.ceil(mark + window_ms - now)
    else
      reply[4 + 2 * i] = math.ceil(window_ms)
    end
  end
  return reply
end

-- 4. Admitted: log it in every unit under one unique member.
local sequence = redis.call('INCR', KEYS[1])
if sequence == 1 and expires then
  redis.call('PEXPIRE', KEYS[1], string.format('%d', math.ceil(longest)))
end
local score = string.format('%d', now_us)
local member = string.format('%d-%d', now_us, sequence)
for i = 1, n do
  local key = KEYS[2 + i]
  local window_ms = tonumber(ARGV[2 + 2 * i])
  redis.call('ZADD', key, score, member)
  -- Every entry leaves within a window of this newest one.
  if expires then redis.call('PEXPIRE', key, string.format('%d', math.ceil(window_ms))) end
  -- The oldest entry now: the oldest before, or this one (for an empty log, or a clock set back).
  local count, oldest = reply[3 + 2 * i], reply[4 + 2 * i]
  if not oldest or oldest > now then oldest = now end
  reply[3 + 2 * i] = tonumber(ARGV[1 + 2 * i]) - (count + 1)
  reply[4 + 2 * i] = math.ceil(oldest + window_ms - now)
end
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
    if redis.call('ZCOUNT', KEYS[i], string.format('%d', first_in_us), '+inf') > 0 then
      live = 1
    end
  end
end
redis.call('DEL', unpack(KEYS))
return live
`;
