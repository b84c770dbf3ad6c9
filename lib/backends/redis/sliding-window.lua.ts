import {
  LUA_EXHAUSTED,
  LUA_REJECT,
  LUA_TEST_CLOCK,
  luaAdmittedReturn,
  luaBlockCheck,
  luaPackedReturn,
} from './shared.lua.js';

/**
 * What the sliding scripts start with: `now`, the time in whole ms (Redis's `TIME`, truncated to
 * the millisecond as `MemoryBackend` truncates its clock, or the test clock). The log entries and
 * the window comparisons use it.
 */
const LUA_SLIDING_CLOCK = `${LUA_TEST_CLOCK}
local now = test_now
if not now then
  -- Seconds and microseconds, as strings that the arithmetic converts: exact, since seconds * 1000
  -- stays far below 2^53.
  local t = redis.call('TIME')
  now = t[1] * 1000 + math.floor(t[2] / 1000)
end
`;

/** Entries the first `LRANGE` reads when the head of a log has left the window. */
const SLIDING_TRIM_FIRST_CHUNK = 32;

/** Most entries one `LRANGE` reads; the chunks double from {@link SLIDING_TRIM_FIRST_CHUNK}. */
const SLIDING_TRIM_MAX_CHUNK = 1024;

/**
 * Decides one request with exact sliding windows (a log of admitted requests per unit), every
 * unit and the block in one atomic step.
 *
 * KEYS[1] = the user's block key, KEYS[1+i] = the log (a list, see redis-keys.ts) of unit i.
 * ARGV[1] = the test clock (µs) or `''` for Redis's `TIME`, ARGV[2] = block length (whole ms, 0
 * for none), then for each unit i: ARGV[1+2i] = its limit, ARGV[2+2i] = its window (ms).
 *
 * A log holds one entry per admitted request: the millisecond (`now`, as `%d`) it was admitted in,
 * appended with `RPUSH`, so the list is oldest first while the clock moves forward (Redis's
 * `TIME`, or a test clock that never goes back). An entry of millisecond `s` counts for a request
 * at `now` while `s > now - window`, and leaves the window at `s + window` (whole milliseconds,
 * like `MemoryBackend`). A unit admits a request when fewer than `limit` entries are in its window.
 * When it is full, the wait is the time until enough old entries leave for one more request: the
 * entry at index `count - limit` (oldest first) leaves at its millisecond + the window. Rejected
 * requests add nothing to any log. Requests of one millisecond are equal entries, each counted.
 *
 * Reply: `{allowed, retryAfterMs, blocked, unit index (1-based, 0 for none)}`, followed by
 * `remaining, resetMs` for each unit (admitted under one unit, the packed integer of
 * {@link luaAdmittedReturn}). `resetMs` is the time until the unit admits a request again when it
 * is full, else until its oldest entry leaves (the full window for an empty log). While the user
 * is blocked, the request is rejected (`blocked` 1) after every unit is read as for any
 * rejection (entries that left the window are dropped, nothing is appended), the wait being the
 * longer of the block's remainder and the exhausted units' (the unit index names the exhausted
 * unit with the longest wait, 0 for none).
 *
 * Expiry: a log expires two windows after its oldest entry (its head), so between one and two
 * windows after its newest. The script sets that expiry only when the head changes: when the log
 * starts (`PEXPIRE` of two windows) and when a trim drops the head (`PEXPIRE` to two windows after
 * the new head), on a rejected request too. Between two such changes every append needs nothing:
 * a request is appended without a trim only while the head is inside its window, so at most one
 * window after the head, and its entry leaves the window by two windows after the head, when the
 * log expires. (A log that expired one window after its newest entry would need a `PEXPIRE` on
 * every admitted request; this one costs an idle log up to one more window of memory.)
 *
 * Commands, per unit with a limit above 0 (a limit of 0 rejects without reading its log):
 * `LINDEX 0` (the head). While the head is inside the window, nothing left it: `LLEN` gives the
 * count. Otherwise entries left: `LRANGE` reads the entries after the head in chunks (32, then
 * doubling up to 1024) until one is inside the window, `LTRIM` drops everything before it and
 * `PEXPIRE` moves the expiry (`DEL` when no entry is left); the count is then known from the chunk
 * when the chunk reached the end of the list (always for a log of up to 32 entries), else read
 * with `LLEN`. Only when the log holds more than `limit` entries (a limit lowered, or the clock
 * set back), one more `LINDEX` for the entry at `count - limit`; the oldest entry, which the reply
 * needs otherwise, is known already. When admitted, `RPUSH` (and `PEXPIRE` for a log that
 * starts). Once per call: `TIME` and `PTTL` (the block: a key that lives as long as the block, see
 * shared.lua.ts). So a request under one unit while nothing leaves its window costs 5 commands
 * when admitted (`TIME`, `PTTL`, `LINDEX`, `LLEN`, `RPUSH`) and 4 when rejected, which writes
 * nothing: a flood of rejected requests adds nothing to replicas or the AOF. A request made while
 * the user is blocked costs what a rejection does. (Appending first and
 * counting with `RPUSH`'s reply would save the `LLEN`, about 0.3 µs of Redis's CPU, but cost every
 * rejected request an `RPUSH` and an `RPOP`, more than a microsecond and two replicated writes.)
 * When some entries left, an admitted request costs 7 or 8 commands.
 *
 * When the clock steps back (Redis's `TIME` set back, or a test clock that goes back), entries are
 * appended behind later ones and the list is no longer sorted. Nothing fails, and the limiter
 * only gets stricter, never looser: the trim stops at the first entry still inside the window, so
 * entries behind it that left the window stay, and are counted, until it leaves. The trim only
 * ever drops entries that left the window, so the count is never below that of an exact log fed
 * the same requests (which, like the sorted log before, forgets for good what left the window at
 * some request, however far the clock steps back later). A full unit's wait is then at least the
 * time until the head of the list leaves (the earliest the count can fall), so it is never 0 or
 * negative; entries of instants after `now` count, and wait until they leave, as before. Key
 * expiry, which runs on Redis's clock, is the exception, as it was for the sorted log: a log
 * expires two windows after its head (set when the head changed), which after Redis's clock is
 * set back can come before its entries of later instants leave the window.
 */
export const SLIDING_WINDOW_CONSUME_LUA = `${LUA_SLIDING_CLOCK}
-- 1. The user's block, from any counter: it rejects the request, once the units are read below.
${luaBlockCheck('KEYS[1]', 'true')}
local n = (#ARGV - 2) / 2
if n == 0 and block_left == 0 then return {1, 0, 0, 0} end

-- 2. Unit 1's head (none read for a limit of 0). Under one unit and no block, a head inside the
-- window means nothing left it, so the length is the count, and a log with room takes the request
-- at once: the decision a limiter makes most, answered without the reply table and the loop
-- below. A full log goes on to the loop with its head and count known.
local head1, count1 = false, false
if tonumber(ARGV[3]) > 0 then head1 = redis.call('LINDEX', KEYS[2], '0') end
if n == 1 and head1 and block_left == 0 then
  local limit, window_ms = tonumber(ARGV[3]), tonumber(ARGV[4])
  local oldest = tonumber(head1) or 0
  if oldest > now - window_ms then
    count1 = redis.call('LLEN', KEYS[2])
    if count1 < limit then
      redis.call('RPUSH', KEYS[2], string.format('%d', now))
      if oldest > now then oldest = now end -- a clock set back: this entry is the oldest
      local remaining, reset = limit - count1 - 1, math.ceil(oldest + window_ms - now)
      ${luaPackedReturn('limit', 'remaining', 'reset')}
      return {1, 0, 0, 0, remaining, reset}
    end
  end
end

-- 3. Drop entries that left their window, then look at every unit before changing any.
-- The reply, sized for one unit (more grow it). Until the decision is known, unit i's slots hold
-- its count and the millisecond of the one entry its reply needs (false: an empty log or a limit
-- of 0), which saves two tables.
local reply = {1, 0, 0, 0, 0, 0}
for i = 1, n do
  local limit = tonumber(ARGV[1 + 2 * i])
  local window_ms = tonumber(ARGV[2 + 2 * i])
  local count, mark = 0, false
  if limit > 0 then
    local key = KEYS[1 + i]
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
        local first, size, length = 1, ${SLIDING_TRIM_FIRST_CHUNK}, false
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
          if size < ${SLIDING_TRIM_MAX_CHUNK} then size = size * 2 end
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
          if not test_now then
            redis.call('PEXPIRE', key, string.format('%d', math.ceil(mark + 2 * window_ms - now)))
          end
        end
      end
      -- mark is now the first entry (the oldest while the clock moved forward; false for an empty
      -- log). Full beyond the limit: the entry at count - limit, whose leaving makes room for one
      -- more request (never earlier than the first, which only a clock set back could make it).
      if count > limit then
        local at = tonumber(redis.call('LINDEX', key, string.format('%d', count - limit))) or 0
        if at > mark then mark = at end
      end
    end
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

-- 4. Rejected (by a unit, or by a running block): log nothing, maybe block the user, report the
-- longest wait.
if worst > 0 or block_left > 0 then
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

-- 5. Admitted: log it in every unit (every limit is above 0 here, and every count below it).
local entry = string.format('%d', now)
for i = 1, n do
  local key = KEYS[1 + i]
  local window_ms = tonumber(ARGV[2 + 2 * i])
  local count, oldest = reply[3 + 2 * i], reply[4 + 2 * i]
  redis.call('RPUSH', key, entry)
  -- A new log (count 0: none, or every entry left): this entry is its oldest, so it expires two
  -- windows from now.
  if count == 0 and not test_now then
    redis.call('PEXPIRE', key, string.format('%d', math.ceil(2 * window_ms)))
  end
  -- The oldest entry now: the first before, or this one (for an empty log, or a clock set back).
  if not oldest or oldest > now then oldest = now end
  reply[3 + 2 * i] = tonumber(ARGV[1 + 2 * i]) - (count + 1)
  reply[4 + 2 * i] = math.ceil(oldest + window_ms - now)
end
${luaAdmittedReturn('3')}
`;

/**
 * Forgets one counter's logs. KEYS[i] = a log; ARGV[1] = the test clock (µs) or `''`,
 * ARGV[1+i] = the window (ms) of log i. Returns 1 when a log held an entry still inside its window,
 * else 0; every log is deleted either way. A log's newest entry is its last (`LINDEX -1`) while the
 * clock moves forward; after a clock set back, an entry in the window that is not the last can go
 * unreported (the log is deleted all the same).
 */
export const SLIDING_WINDOW_RESET_LUA = `${LUA_SLIDING_CLOCK}
local live = 0
for i = 1, #KEYS do
  local newest = redis.call('LINDEX', KEYS[i], '-1')
  if newest and (tonumber(newest) or 0) > now - tonumber(ARGV[1 + i]) then
    live = 1
    break
  end
end
redis.call('DEL', unpack(KEYS))
return live
`;
