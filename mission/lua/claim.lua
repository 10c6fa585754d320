-- A worker claims due ARQ jobs in one round trip (ARQ itself spends four per job): a job is
-- claimed when it is still queued, due, and not in progress; its in-progress key is then set.
-- (No shared prelude.) ARGV: queue key, in-progress key prefix, now (ms), in-progress ms, most to
-- claim, then candidate job ids in queue order
local claimed = {}
local most = tonumber(ARGV[5])
for i = 6, #ARGV do
  if #claimed >= most * 2 then break end
  local id = ARGV[i]
  local key = ARGV[2] .. id
  if redis.call('EXISTS', key) == 0 then
    local score = redis.call('ZSCORE', ARGV[1], id)
    if score and tonumber(score) <= tonumber(ARGV[3]) then
      redis.call('PSETEX', key, ARGV[4], '1')
      claimed[#claimed + 1] = id
      claimed[#claimed + 1] = score
    end
  end
end
return claimed
