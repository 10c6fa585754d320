-- Count one use in a fixed window: the count so far and the milliseconds left in the window.
-- (No shared prelude.) KEYS: the counter; ARGV: the window in ms
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
