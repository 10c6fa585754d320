-- A worker takes a queued attempt: RUNNING with a lease; returns what the agent needs.
-- ARGV: mission id, role, attempt, lease ms, worker name
local role, attempt, lease_ms = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local m = redis.call('HMGET', N.m, 'status', 'deadline', 'config', 'started_at')
if not m[1] then return {'gone', ''} end
if TERMINAL_MISSION[m[1]] then return {'over', m[1]} end
local jk = jkey(role)
local j = redis.call('HMGET', jk, 'status', 'attempt', 'tries', 'depends_on')
if (j[1] ~= 'QUEUED' and j[1] ~= 'RETRYING') or tonumber(j[2]) ~= attempt then return {'stale', j[1] or ''} end
local t = now_ms()
if t >= tonumber(m[2]) then
  finish_mission('EXPIRED', 'EXPIRED', expire_reason(), t)
  return {'over', 'EXPIRED', unpack(ending())}
end
redis.call('HSET', jk, 'status', 'RUNNING', 'started_at', t, 'worker', ARGV[5], 'progress', 0, 'message', '',
  'sdk_seq', 0, 'tries', (tonumber(j[3]) or 0) + 1)
redis.call('ZADD', N.leases, t + lease_ms, lease_member(role, attempt))
-- ARQ keeps a running job in its queue: parked until the lease's end (the heartbeat moves it on), it
-- sits behind the due jobs, so a claim never walks the running ones; should this worker die, it
-- is due again as its in-progress key lapses.
redis.call('ZADD', N.q, 'XX', t + lease_ms, job_id(role) .. ':' .. attempt)
if m[1] == 'QUEUED' then
  redis.call('HSET', N.m, 'status', 'RUNNING', 'started_at', t)
  index_move('QUEUED', 'RUNNING')
  emit('mission.started', 'RUNNING', nil, 'first agent started', nil, t)
elseif not m[4] then  -- awaiting approval while another branch starts: it runs from now
  redis.call('HSET', N.m, 'started_at', t)
  emit('mission.started', m[1], nil, 'first agent started', nil, t)
end
emit('job.started', 'RUNNING', job_id(role), 'attempt ' .. attempt, {attempt = attempt}, t)
local ups = cjson.decode(j[4])
local outs = {}
if #ups > 0 then outs = redis.call('HMGET', N.out, unpack(ups)) end
-- the time left is measured on Redis's clock, the one the deadline is checked against
return {'ok', m[3], m[2], redis.call('HGETALL', jk), outs, tonumber(m[2]) - t}
