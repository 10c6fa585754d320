-- Count ARQ jobs due now that no worker has started (ARQ keeps a running job in its queue).
-- (No shared prelude.) ARGV: queue key, ARQ in-progress key prefix, now (ms), most to look at
local ids = redis.call('ZRANGEBYSCORE', ARGV[1], '-inf', ARGV[3], 'LIMIT', 0, tonumber(ARGV[4]))
local ready = 0
for _, id in ipairs(ids) do
  if redis.call('EXISTS', ARGV[2] .. id) == 0 then ready = ready + 1 end
end
return ready
