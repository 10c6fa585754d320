-- Meter a charge: refused past the agent's allocation (and, belt and braces, the mission's budget).
-- ARGV: names, role, attempt, cents, note
local role, attempt, cents = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local jk = jkey(role)
local j = redis.call('HMGET', jk, 'status', 'attempt', 'spent', 'allocated')
if j[1] ~= 'RUNNING' or tonumber(j[2]) ~= attempt then return {'stale', 0, 0} end
local spent, allocated = tonumber(j[3]), tonumber(j[4])
local m = redis.call('HMGET', N.m, 'spent', 'budget')
if spent + cents > allocated or tonumber(m[1]) + cents > tonumber(m[2]) then
  return {'exceeded', spent, allocated}
end
redis.call('HINCRBY', jk, 'spent', cents)
redis.call('HINCRBY', N.m, 'spent', cents)
count('spent_cents', cents)
emit('job.spent', 'RUNNING', job_id(role), ARGV[5],
  {amount = money(cents), spent = money(spent + cents), allocated = money(allocated)}, now_ms())
return {'ok', spent + cents, allocated}
