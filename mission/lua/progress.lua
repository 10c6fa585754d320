-- Record an agent's progress (0..1) and message.
-- ARGV: names, role, attempt, fraction, message
local role, attempt = ARGV[2], tonumber(ARGV[3])
local jk = jkey(role)
local j = redis.call('HMGET', jk, 'status', 'attempt')
if j[1] ~= 'RUNNING' or tonumber(j[2]) ~= attempt then return {'stale'} end
redis.call('HSET', jk, 'progress', ARGV[4], 'message', ARGV[5])
emit('job.progress', 'RUNNING', job_id(role), ARGV[5], {progress = tonumber(ARGV[4])}, now_ms())
return {'ok'}
