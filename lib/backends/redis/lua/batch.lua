-- Driver of a batch: the decisions of one event-loop iteration for one script and one hash slot,
-- sent as one call so that Redis and the client pay the per-call costs (argument tables, command
-- dispatch, socket reads and writes) once per batch instead of once per decision. Appended after
-- `local function decide(KEYS, ARGV) <prelude> <script body> end`, so each decision runs the very
-- script a lone call runs, on its own keys and arguments (its test-clock reading included).
--
-- KEYS = every decision's keys, one decision after the other.
-- ARGV[1] = the number of decisions; then, for each one, its number of keys, its number of
-- arguments and those arguments.
--
-- Reply: one reply per decision, in order, as the script alone would return it, or an error reply
-- for a decision whose script failed (a key of the wrong type, say), so that one bad key only fails
-- its own decision. Each decision is atomic, as the whole batch is: Redis runs one script at a time.

local replies = {}
local key_at, arg_at = 0, 2
for d = 1, tonumber(ARGV[1]) do
  local key_count, arg_count = tonumber(ARGV[arg_at]), tonumber(ARGV[arg_at + 1])
  local keys, args = {}, {}
  for i = 1, key_count do keys[i] = KEYS[key_at + i] end
  for i = 1, arg_count do args[i] = ARGV[arg_at + 1 + i] end
  key_at, arg_at = key_at + key_count, arg_at + 2 + arg_count
  local ok, reply = pcall(decide, keys, args)
  if ok then
    replies[d] = reply
  elseif type(reply) == 'table' and reply.err then
    replies[d] = reply
  else
    replies[d] = redis.error_reply(tostring(reply))
  end
end
return replies
