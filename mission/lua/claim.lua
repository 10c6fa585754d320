-- A worker claims due ARQ jobs in one round trip (ARQ itself spends four per job). It walks the
-- queue's due jobs in order, skipping those in progress (ARQ keeps running jobs in its queue, so a
-- head of long-running jobs must not hide the rest) and those this worker already runs; each job
-- claimed gets its in-progress key.
-- (No shared prelude.) ARGV: queue key, in-progress key prefix, now (ms), in-progress ms, most to
-- claim, most to look at, then the job ids this worker is running
local most, scan = tonumber(ARGV[5]), tonumber(ARGV[6])
local mine = {}
for i = 7, #ARGV do mine[ARGV[i]] = true end
local claimed = {}
local due = redis.call('ZRANGEBYSCORE', ARGV[1], '-inf', ARGV[3], 'WITHSCORES', 'LIMIT', 0, scan)
for i = 1, #due, 2 do
  if #claimed >= most * 2 then break end
  local id = due[i]
  local key = ARGV[2] .. id
  if not mine[id] and redis.call('EXISTS', key) == 0 then
    redis.call('PSETEX', key, ARGV[4], '1')
    claimed[#claimed + 1] = id
    claimed[#claimed + 1] = due[i + 1]
  end
end
return claimed
