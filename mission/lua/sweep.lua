-- Remove finished missions whose summary retention has passed: their keys, their idempotency
-- key (if it still names them) and their id from every set. Idempotent: a mission no longer in
-- the finished set, or finished after the cutoff, is left alone.
-- (No shared prelude.) ARGV: finished set, cutoff (ms), then per mission: id, idempotency key or '',
--   the number of keys to delete, those keys, the number of sets to leave, those sets
local finished, cutoff = ARGV[1], tonumber(ARGV[2])
local removed = 0
local i = 3
while i <= #ARGV do
  local mid, idem = ARGV[i], ARGV[i + 1]
  local first_key, keys = i + 3, tonumber(ARGV[i + 2])
  local first_set, sets = first_key + keys + 1, tonumber(ARGV[first_key + keys])
  i = first_set + sets
  local at = redis.call('ZSCORE', finished, mid)
  if at and tonumber(at) <= cutoff then
    for k = first_key, first_key + keys - 1 do redis.call('UNLINK', ARGV[k]) end
    for k = first_set, first_set + sets - 1 do redis.call('ZREM', ARGV[k], mid) end
    if idem ~= '' and redis.call('GET', idem) == mid then redis.call('DEL', idem) end
    redis.call('ZREM', finished, mid)
    removed = removed + 1
  end
end
return removed
