-- An attempt ends: success advances the graph; failure retries, fails (skipping dependents) or,
-- for a lost or released worker, runs again as a new attempt. Stale attempts change nothing (but the
-- ARQ job of an attempt that ran is forgotten).
-- ARGV: mission id, role, attempt, outcome (ok|error|lost|release), output JSON, error text or release reason,
--       retryable (1|0), retry delay ms, lease losses allowed
local role, attempt, outcome, payload = ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local jk = jkey(role)
local j = redis.call('HMGET', jk, 'status', 'attempt', 'failures', 'max_tries', 'lost', 'dependents', 'started_at')
local member = lease_member(role, attempt)
local arq_id = job_id(role) .. ':' .. attempt
-- The worker that ran the attempt reports its end: its ARQ job is done with, whatever follows.
if outcome ~= 'lost' then forget(arq_id) end
if j[1] ~= 'RUNNING' or tonumber(j[2]) ~= attempt then
  if outcome == 'lost' then redis.call('ZREM', N.leases, member) end  -- a leftover lease: drop it
  return {'stale', j[1] or ''}
end
local t = now_ms()
if outcome == 'lost' then
  local lease = redis.call('ZSCORE', N.leases, member)
  if lease and tonumber(lease) > t then return {'renewed', 'RUNNING'} end
end
redis.call('ZREM', N.leases, member)
if outcome == 'ok' or outcome == 'error' then observe_run(j[7], t) end
if outcome == 'lost' then
  -- the dead worker's ARQ job would otherwise sit in the queue until ARQ's in-progress key expires
  forget(arq_id)
end

local function requeue(status, score, etype, reason)
  redis.call('HSET', jk, 'status', status, 'attempt', attempt + 1, 'error', reason)
  enqueue_attempt(role, attempt + 1, score, t)
  emit(etype, status, job_id(role), reason, {attempt = attempt + 1, at = score}, t)
end

if outcome == 'ok' then
  redis.call('HSET', jk, 'status', 'SUCCEEDED', 'finished_at', t, 'progress', 1, 'error', '')
  redis.call('HSET', N.out, role, payload)
  redis.call('HINCRBY', N.m, 'pending', -1)
  redis.call('HINCRBY', N.m, 'succeeded', 1)
  emit('job.succeeded', 'SUCCEEDED', job_id(role), 'succeeded', {attempt = attempt}, t)
  for _, dep in ipairs(cjson.decode(j[6])) do
    local dk = jkey(dep)
    if redis.call('HGET', dk, 'status') == 'WAITING' then
      local all_done = true
      for _, up in ipairs(cjson.decode(redis.call('HGET', dk, 'depends_on'))) do
        if redis.call('HGET', jkey(up), 'status') ~= 'SUCCEEDED' then all_done = false; break end
      end
      if all_done then ready(dep, t, 'upstream succeeded') end
    end
  end
elseif outcome == 'release' then
  requeue('QUEUED', t, 'job.requeued', payload ~= '' and payload or 'worker shut down; running again')
elseif outcome == 'lost' and tonumber(j[5]) < tonumber(ARGV[8]) then
  redis.call('HINCRBY', jk, 'lost', 1)
  count('lease_reaps')
  requeue('QUEUED', t, 'job.requeued', 'worker lost (lease lapsed); running again')
else
  local failures = tonumber(j[3]) + 1
  if outcome == 'lost' then payload = 'worker lost too often (lease lapsed)' end
  redis.call('HSET', jk, 'failures', failures)
  if ARGV[6] == '1' and failures < tonumber(j[4]) then
    count('retries')
    requeue('RETRYING', t + tonumber(ARGV[7]), 'job.retrying', payload)
  else
    redis.call('HSET', jk, 'status', 'FAILED', 'finished_at', t, 'error', payload)
    redis.call('HINCRBY', N.m, 'pending', -1)
    redis.call('HSETNX', N.m, 'first_failure', role .. ': ' .. payload)
    emit('job.failed', 'FAILED', job_id(role), payload, {attempt = attempt}, t)
    -- every transitive dependent is still WAITING: skip it
    skip_jobs(cjson.decode(j[6]), 'upstream ' .. role .. ' failed', t)
  end
end
local status = settle(t)
wake()
-- the attempt was running, so the mission was not over before: if it is now, this script ended it
if TERMINAL_MISSION[status] then return {'ok', status, unpack(ending())} end
return {'ok', status}
