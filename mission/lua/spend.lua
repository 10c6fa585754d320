-- Meter a charge: refused past the agent's allocation (and, belt and braces, the mission's budget).
-- `seq` numbers the attempt's SDK calls: a call retried after its reply was lost is not charged twice.
-- ARGV: mission id, role, attempt, cents, note, seq
local role, attempt, cents, seq = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[6])
local jk = jkey(role)
local j = redis.call('HMGET', jk, 'status', 'attempt', 'spent', 'allocated', 'sdk_seq')
if j[1] ~= 'RUNNING' or tonumber(j[2]) ~= attempt then return {'stale', 0, 0} end
local spent, allocated = tonumber(j[3]), tonumber(j[4])
if seq <= tonumber(j[5] or 0) then return {'ok', spent, allocated} end  -- already applied
local m = redis.call('HMGET', N.m, 'spent', 'budget')
if spent + cents > allocated or tonumber(m[1]) + cents > tonumber(m[2]) then
  return {'exceeded', spent, allocated}
end
redis.call('HINCRBY', jk, 'spent', cents)
redis.call('HSET', jk, 'sdk_seq', seq)
redis.call('HINCRBY', N.m, 'spent', cents)
count('spent_cents', cents)
emit('job.spent', 'RUNNING', job_id(role), ARGV[5],
  {amount = money(cents), spent = money(spent + cents), allocated = money(allocated)}, now_ms())
return {'ok', spent + cents, allocated}
