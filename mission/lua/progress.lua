-- Record an agent's progress (0..1) and message. `seq` as in spend.lua: a retried call is applied once.
-- ARGV: mission id, role, attempt, fraction, message, seq
local role, attempt, seq = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[6])
local jk = jkey(role)
local j = redis.call('HMGET', jk, 'status', 'attempt', 'sdk_seq')
if j[1] ~= 'RUNNING' or tonumber(j[2]) ~= attempt then return {'stale'} end
if seq <= tonumber(j[3] or 0) then return {'ok'} end  -- already applied
redis.call('HSET', jk, 'progress', ARGV[4], 'message', ARGV[5], 'sdk_seq', seq)
emit('job.progress', 'RUNNING', job_id(role), ARGV[5], {progress = tonumber(ARGV[4])}, now_ms())
return {'ok'}
