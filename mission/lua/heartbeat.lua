-- Renew the leases of a worker's running attempts (and ARQ's in-progress keys of their jobs, which
-- stay parked in the queue until the lease's end: see start.lua); return the attempts no longer
-- current, for the worker to stop.
-- (No shared prelude.) ARGV: lease ms, leases key, queue key, ARQ in-progress key prefix, then
-- (member, job key, attempt, ARQ job id)
local t = redis.call('TIME')
local lease_ms = tonumber(ARGV[1])
local expiry = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + lease_ms
local stop = {}
for i = 5, #ARGV, 4 do
  local j = redis.call('HMGET', ARGV[i + 1], 'status', 'attempt')
  if j[1] == 'RUNNING' and j[2] == ARGV[i + 2] then
    redis.call('ZADD', ARGV[2], expiry, ARGV[i])
    redis.call('ZADD', ARGV[3], 'XX', expiry, ARGV[i + 3])
    -- SET, not PEXPIRE: the key may have expired while Redis was away, and without it ARQ would
    -- start this job a second time
    redis.call('SET', ARGV[4] .. ARGV[i + 3], '1', 'PX', lease_ms)
  else
    stop[#stop + 1] = ARGV[i]
  end
end
return stop
