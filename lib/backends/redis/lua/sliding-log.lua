-- Exact sliding windows (a log of admitted requests per unit): decides one request, the user's
-- block and every unit in one atomic step.
--
-- KEYS[1] = the user's block key, KEYS[1 + i] = the log (a list) of unit i. ARGV[1] = the block's
-- length (whole ms, 0 for none), ARGV[2] = the request's cost c (at least 1), then for each unit
-- i: ARGV[1 + 2i] = its limit, ARGV[2 + 2i] = its window (ms).
--
-- A log holds c entries per admitted request: the millisecond it was admitted in, appended with
-- RPUSH, so the list is oldest first while the clock moves forward. An entry of millisecond s
-- counts for a request at now while s > now - window. A unit admits a request when the entries
-- that count, count, plus c are at most its limit. Its wait is until the (count + c - limit)-th
-- oldest entry stops counting; its reset, when no request of cost 1 fits, until one does, else
-- until the oldest entry stops counting (the window for an empty log). Rejected requests add
-- nothing to any log.
--
-- Expiry: a log expires two windows after its oldest entry (its head), set only when the head
-- changes: when the log starts and when a trim drops the head. Between two such changes an append
-- needs nothing: it happens only while the head is inside its window.
--
-- Commands, per unit with a limit above 0: LINDEX 0 (the head). While the head is inside the
-- window, LLEN gives the count. Otherwise LRANGE reads the entries after the head in chunks (32,
-- then doubling up to 1024) until one is inside, LTRIM drops the rest before it and PEXPIRE moves
-- the expiry (DEL when no entry is left). Only for a log above its limit, or a rejected cost above
-- 1, one more LINDEX. When admitted, RPUSH (and PEXPIRE for a log that starts). Once per call:
-- TIME and the block's TTL. So an admitted one-unit request while nothing leaves the window costs
-- TIME, PTTL, LINDEX, LLEN, RPUSH, and a rejected one writes nothing.
--
-- When the clock steps back, entries are appended behind later ones; nothing fails and the
-- limiter only gets stricter: the trim stops at the first entry still inside the window.

local now = now_ms()
local block_left = redis.call(TTL, KEYS[1]) - TTL_BASE
if block_left < 0 then block_left = 0 end
local n = (#ARGV - 2) / 2
if n == 0 and block_left == 0 then return {1, 0, 0, 0} end
local cost = tonumber(ARGV[2])

-- Unit 1's head (none read for a limit of 0). Under one unit and no block, a head inside the
-- window means nothing left it, so the length is the count, and a log with room takes the request
-- at once, answered without the reply table and the loop below.
local head1, count1 = false, false
if tonumber(ARGV[3]) > 0 then head1 = redis.call('LINDEX', KEYS[2], '0') end
if n == 1 and head1 and block_left == 0 then
  local limit, window_ms = tonumber(ARGV[3]), tonumber(ARGV[4])
  local oldest = tonumber(head1) or 0
  if oldest > now - window_ms then
    count1 = redis.call('LLEN', KEYS[2])
    if count1 + cost <= limit then
      local entry = string.format('%d', now)
      if cost == 1 then
        redis.call('RPUSH', KEYS[2], entry)
      else
        local entries = {}
        for j = 1, cost do entries[j] = entry end
        redis.call('RPUSH', KEYS[2], unpack(entries))
      end
      if oldest > now then oldest = now end -- a clock set back: this entry is the oldest
      local remaining, reset = limit - count1 - cost, math.ceil(oldest + window_ms - now)
      local base = limit + 1
      local packed = reset * base + remaining
      if packed < 9007199254740992 and base == math.floor(base) then return packed end
      return {1, 0, 0, 0, remaining, reset}
    end
  end
end

-- Drop entries that left their window, then look at every unit before changing any. Until the
-- decision is known, unit i's reply slots hold its count and the millisecond of the entry its
-- reset needs (false: an empty log or a limit of 0).
local reply = {1, 0, 0, 0, 0, 0}
local worst, wait = 0, 0
for i = 1, n do
  local limit = tonumber(ARGV[1 + 2 * i])
  local window_ms = tonumber(ARGV[2 + 2 * i])
  local key = KEYS[1 + i]
  local count, mark, mark_at = 0, false, 0
  if limit > 0 then
    -- In the window: entries of a millisecond above this. (An entry that is not a number, which
    -- this script never writes, reads as 0: out, and dropped.)
    local out = now - window_ms
    local head = head1
    if i > 1 then head = redis.call('LINDEX', key, '0') end
    if head then
      mark = tonumber(head) or 0
      if mark > out then
        -- Nothing left the window.
        if i == 1 and count1 then count = count1 else count = redis.call('LLEN', key) end
      else
        -- The head left: find the first entry still in, reading the entries after the head in
        -- chunks that double (one small read when only a few left, few reads for a long backlog).
        mark = false
        local first, size, length = 1, 32, false
        repeat
          local chunk = redis.call('LRANGE', key, string.format('%d', first),
            string.format('%d', first + size - 1))
          for j = 1, #chunk do
            local s = tonumber(chunk[j]) or 0
            if s > out then
              mark = s
              count = first + j - 1 -- for now, the index of that entry
              break
            end
          end
          if #chunk < size then length = first + #chunk end -- the chunk reached the end
          first = first + size
          if size < 1024 then size = size * 2 end
        until mark or length
        if not mark then
          redis.call('DEL', key) -- every entry left
        else
          redis.call('LTRIM', key, string.format('%d', count), '-1')
          if length then
            count = length - count
          else
            count = redis.call('LLEN', key)
          end
          -- A new oldest entry: the log now expires two windows after it.
          redis.call(EXPIRE, key, math.ceil(mark + 2 * window_ms - now) + TTL_BASE)
        end
      end
      -- mark is now the first entry (false for an empty log). Full beyond the limit: the entry at
      -- count - limit, whose leaving makes room for one more request of cost 1.
      if count > limit then
        mark_at = count - limit
        local at = tonumber(redis.call('LINDEX', key, string.format('%d', mark_at))) or 0
        if at > mark then mark = at end
      end
    end
  end
  reply[3 + 2 * i], reply[4 + 2 * i] = count, mark
  local unit_wait = 0
  if limit == 0 or cost > limit then
    unit_wait = math.ceil(window_ms) -- never fits
  elseif count + cost > limit then
    -- Until the (count + cost - limit)-th oldest entry leaves: index count + cost - limit - 1.
    local at = mark
    local index = count + cost - limit - 1
    if index ~= mark_at then
      at = tonumber(redis.call('LINDEX', key, string.format('%d', index))) or 0
      if at < mark then at = mark end
    end
    unit_wait = math.ceil(at + window_ms - now)
  end
  if unit_wait > 0 and unit_wait > wait then worst, wait = i, unit_wait end
end

-- Rejected (by a unit, or by a running block): log nothing, maybe block the user.
if worst > 0 or block_left > 0 then
  local blocked = 0
  if block_left > 0 then
    -- A request made while blocked neither extends nor restarts the block.
    blocked = 1
    if block_left > wait then wait = block_left end
  else
    local block_ms = tonumber(ARGV[1])
    if block_ms > 0 then
      redis.call('SET', KEYS[1], '1', EXPIRE_PX, block_ms + TTL_BASE)
      blocked = 1
      if block_ms > wait then wait = block_ms end
    end
  end
  reply[1], reply[2], reply[3], reply[4] = 0, wait, blocked, worst
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

-- Admitted: log it in every unit (every limit is above 0 here, and every count + cost within it).
local entry = string.format('%d', now)
local entries = false
if cost > 1 then
  entries = {}
  for j = 1, cost do entries[j] = entry end
end
for i = 1, n do
  local key = KEYS[1 + i]
  local window_ms = tonumber(ARGV[2 + 2 * i])
  local count, oldest = reply[3 + 2 * i], reply[4 + 2 * i]
  if entries then redis.call('RPUSH', key, unpack(entries)) else redis.call('RPUSH', key, entry) end
  -- A new log (count 0: none, or every entry left): this entry is its oldest, so it expires two
  -- windows from now.
  if count == 0 then redis.call(EXPIRE, key, math.ceil(2 * window_ms) + TTL_BASE) end
  -- The oldest entry now: the first before, or this one (for an empty log, or a clock set back).
  if not oldest or oldest > now then oldest = now end
  reply[3 + 2 * i] = tonumber(ARGV[1 + 2 * i]) - (count + cost)
  reply[4 + 2 * i] = math.ceil(oldest + window_ms - now)
end
if n == 1 then
  local base = tonumber(ARGV[3]) + 1
  local packed = reply[6] * base + reply[5]
  if packed < 9007199254740992 and base == math.floor(base) then return packed end
end
return reply
