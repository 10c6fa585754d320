-- A worker claims due ARQ jobs in one round trip (ARQ itself spends four per job). It walks the
-- queue's due jobs in order, skipping those in progress (ARQ keeps running jobs in its queue; a
-- running attempt's job is parked until its lease's end, but others, and attempts a worker has
-- claimed and not yet started, are not); each job claimed gets its in-progress key.
-- (No shared prelude.) ARGV: queue key, in-progress key prefix, now (ms), in-progress ms, most to
-- claim, most to look at
local most, scan = tonumber(ARGV[5]), tonumber(ARGV[6])
-- the due jobs at the head are mostly claimable (running attempts are parked behind them): read a
-- few more than wanted at a time
local chunk = math.min(scan, most + 16)
local claimed = {}
local offset = 0
while offset < scan and #claimed < most * 2 do
  local due = redis.call('ZRANGEBYSCORE', ARGV[1], '-inf', ARGV[3], 'WITHSCORES', 'LIMIT', offset, chunk)
  for i = 1, #due, 2 do
    if #claimed >= most * 2 then break end
    local key = ARGV[2] .. due[i]
    if redis.call('EXISTS', key) == 0 then
      redis.call('PSETEX', key, ARGV[4], '1')
      claimed[#claimed + 1] = due[i]
      claimed[#claimed + 1] = due[i + 1]
    end
  end
  if #due < chunk * 2 then break end
  offset = offset + chunk
end
return claimed
