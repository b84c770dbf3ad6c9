import { LUA_PRELUDE } from './shared.lua.js';

/**
 * Decides one request with exact sliding windows (a log of admitted requests per unit), every
 * unit and the block in one atomic step.
 *
 * KEYS[1] = the counter's sequence key, KEYS[2] = the user's block key, KEYS[2+i] = the log
 * (sorted set, score = request time in µs) of unit i. ARGV[1] = time offset (µs), ARGV[2] = block
 * length (ms, 0 for none), then for each unit i: ARGV[1+2i] = its limit, ARGV[2+2i] = its window
 * (ms).
 *
 * A unit admits a request when fewer than `limit` logged requests are younger than its window.
 * When it is full, the wait is the time until enough old entries leave for one more request: the
 * entry at index `count - limit` (oldest first) leaves at its time + the window. Rejected requests
 * add nothing to any log. Members are `<µs>-<sequence>`, unique even within one microsecond.
 *
 * Reply: `{allowed, retryAfterMs, blocked, unit index (1-based, 0 for none), Redis time (µs)}`,
 * followed by
 * `remaining, resetMs` for each unit unless an earlier block decided. `resetMs` is the time until
 * the unit admits a request again when it is full, else until its oldest entry leaves (the full
 * window for an empty log).
 */
export const SLIDING_WINDOW_CONSUME_LUA = `${LUA_PRELUDE}
local now = now_us(tonumber(ARGV[1]))
local now_ms = math.floor(now / 1000)

-- 1. The user's block, from any counter.
local left = block_left(KEYS[2], now_ms)
if left > 0 then return {0, left, 1, 0, now} end

-- Milliseconds (rounded up) until the entry at index leaves a window of window_us.
local function leaves_in(key, index, window_us)
  local entry = redis.call('ZRANGE', key, index, index, 'WITHSCORES')
  return math.ceil((tonumber(entry[2]) + window_us - now) / 1000)
end

local function reset_ms(key, count, limit, window_ms)
  if limit == 0 or count == 0 then return math.ceil(window_ms) end
  if count >= limit then return leaves_in(key, count - limit, window_ms * 1000) end
  return leaves_in(key, 0, window_ms * 1000)
end

-- 2. Drop entries that left their window, then look at every unit before changing any.
local n = (#ARGV - 2) / 2
local limits, windows, counts = {}, {}, {}
local worst, wait = 0, 0
for i = 1, n do
  local key = KEYS[2 + i]
  local limit = tonumber(ARGV[1 + 2 * i])
  local window_ms = tonumber(ARGV[2 + 2 * i])
  limits[i], windows[i] = limit, window_ms
  redis.call('ZREMRANGEBYSCORE', key, '-inf', num(now - window_ms * 1000))
  local count = redis.call('ZCARD', key)
  counts[i] = count
  local unit_wait = 0
  if limit == 0 then
    unit_wait = math.ceil(window_ms)
  elseif count >= limit then
    unit_wait = leaves_in(key, count - limit, window_ms * 1000)
  end
  if unit_wait > 0 and (worst == 0 or unit_wait > wait) then
    worst, wait = i, unit_wait
  end
end

-- 3. Rejected: log nothing, maybe block the user, report the longest wait.
if worst > 0 then
  local blocked = 0
  local block_ms = tonumber(ARGV[2])
  if block_ms > 0 then
    start_block(KEYS[2], now_ms, block_ms)
    blocked = 1
    if block_ms > wait then wait = block_ms end
  end
  local reply = {0, math.ceil(wait), blocked, worst, now}
  for i = 1, n do
    reply[#reply + 1] = math.max(0, limits[i] - counts[i])
    reply[#reply + 1] = reset_ms(KEYS[2 + i], counts[i], limits[i], windows[i])
  end
  return reply
end

-- 4. Admitted: log it in every unit under one unique member.
local sequence = redis.call('INCR', KEYS[1])
local member = num(now) .. '-' .. num(sequence)
local score = num(now)
local reply = {1, 0, 0, 0, now}
local longest = 0
for i = 1, n do
  local key = KEYS[2 + i]
  local window_ms = windows[i]
  redis.call('ZADD', key, score, member)
  redis.call('PEXPIRE', key, math.ceil(window_ms))
  local count = counts[i] + 1
  reply[#reply + 1] = limits[i] - count
  reply[#reply + 1] = reset_ms(key, count, limits[i], window_ms)
  if window_ms > longest then longest = window_ms end
end
if redis.call('PTTL', KEYS[1]) < longest then
  redis.call('PEXPIRE', KEYS[1], math.ceil(longest))
end
return reply
`;

/**
 * Forgets one counter's logs. KEYS[1] = the counter's sequence key, KEYS[1+i] = a log;
 * ARGV[1] = time offset (µs), ARGV[1+i] = the window (ms) of log i. Returns `{1 when a log held an
 * entry still inside its window else 0, Redis time (µs)}`; every key is deleted either way.
 */
export const SLIDING_WINDOW_RESET_LUA = `${LUA_PRELUDE}
local now = now_us(tonumber(ARGV[1]))
local live = 0
for i = 2, #KEYS do
  local since = '(' .. num(now - tonumber(ARGV[i]) * 1000)
  if live == 0 and redis.call('ZCOUNT', KEYS[i], since, '+inf') > 0 then live = 1 end
end
redis.call('DEL', unpack(KEYS))
return {live, now}
`;
