-- Shared by every mission script (prepended, after the definitions mission/scripts.py generates from
-- mission/models.py: TERMINAL_JOB, TERMINAL_MISSION, RUN_BUCKETS_MS, APPROVAL_BUCKETS_MS; and after
-- `N`, the key names, which mission/keys.py generates (`Keys.lua_names`) from the mission id in
-- ARGV[1]); scripts never spell a key themselves.
local WAKE = false
local TENANT = nil
local TENANT_JSON = nil
local CHANGE = nil  -- this run's change number (see `emit`)

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function jkey(role) return N.jp .. role end
local function job_id(role) return N.mid .. ':' .. role end
local function lease_member(role, attempt) return N.mid .. '|' .. role .. '|' .. attempt end

-- cents -> "12.50"
local function money(c)
  c = tonumber(c)
  return string.format('%d.%02d', math.floor(c / 100), c % 100)
end

-- Append an event to the mission's log and publish it: seq is the log's length, so no gaps. The
-- tracker's feed (N.cha) also carries the run's change number, `chg`.
local function emit(etype, status, jid, message, data, t)
  if TENANT == nil then
    TENANT = redis.call('HGET', N.m, 'tenant') or ''
    TENANT_JSON = cjson.encode(TENANT)
  end
  local seq = redis.call('HINCRBY', N.m, 'seq', 1)
  local ev = '{"seq":' .. seq .. ',"missionId":"' .. N.mid .. '","tenant":' .. TENANT_JSON ..
    ',"type":"' .. etype .. '","status":"' .. status .. '","jobId":' ..
    (jid and ('"' .. jid .. '"') or 'null') .. ',"at":' .. t .. ',"message":' .. cjson.encode(message or '') ..
    ',"data":' .. (data and cjson.encode(data) or 'null') .. '}'
  redis.call('RPUSH', N.ev, ev)
  redis.call('PUBLISH', N.chm, ev)
  if CHANGE == nil then
    -- One change number per script run (a run changes one mission), recorded in the tenant's and
    -- the all-tenants' change sets, so a tracker that missed live events can ask what changed.
    CHANGE = redis.call('INCR', N.chg)
    redis.call('ZADD', N.chs .. TENANT, CHANGE, N.mid)
    redis.call('ZADD', N.chs .. '*', CHANGE, N.mid)
  end
  redis.call('PUBLISH', N.cha, string.sub(ev, 1, -2) .. ',"chg":' .. CHANGE .. '}')
  return seq
end

-- Write an ARQ job (ARQ's format, JSON serializer) and queue it at `score` (ms).
local function enqueue(fn, arq_id, args_json, score, t)
  redis.call('PSETEX', N.aj .. arq_id, math.max(score - t, 0) + 86400000,
    '{"t":null,"f":"' .. fn .. '","a":' .. args_json .. ',"k":{},"et":' .. t .. '}')
  redis.call('ZADD', N.q, score, arq_id)
  if score <= t then WAKE = true end
end

local function enqueue_attempt(role, attempt, score, t)
  enqueue('run_agent_logic', job_id(role) .. ':' .. attempt,
    '["' .. N.mid .. '","' .. job_id(role) .. '",' .. attempt .. ']', score, t)
end

local function dequeue(arq_id)
  redis.call('ZREM', N.q, arq_id)
  redis.call('DEL', N.aj .. arq_id)
end

-- An ARQ job that ran is done with: out of the queue, its payload and in-progress key deleted (what
-- ARQ's own clean-up of a finished job does).
local function forget(arq_id)
  redis.call('ZREM', N.q, arq_id)
  redis.call('DEL', N.aj .. arq_id, N.ip .. arq_id)
end

-- Cluster-wide counters for /metrics.
local function count(field, by)
  redis.call('HINCRBY', N.stats, field, by or 1)
end

-- A histogram in the stats hash: `<name>_bucket:<le>`, `<name>_count`, `<name>_sum` (ms; upper
-- bounds in `buckets`; /metrics makes them cumulative).
local function observe(name, buckets, ms)
  local bucket = 'inf'
  for _, le in ipairs(buckets) do
    if ms <= le then bucket = tostring(le); break end
  end
  count(name .. '_bucket:' .. bucket)
  count(name .. '_count')
  count(name .. '_sum', ms)
end

-- Job run times: one observation per attempt.
local function observe_run(started_at, t)
  if not started_at then return end
  observe('job_ms', RUN_BUCKETS_MS, t - tonumber(started_at))
end

local function wake()
  if WAKE then redis.call('PUBLISH', N.wake, '1') end
end

-- Move the mission between the status indexes of its tenant and of all tenants. Scores are
-- deploy positions: `nt` counts the tenant's own deploys (what its cursors show), `n` everyone's.
local function index_move(old, new)
  local m = redis.call('HMGET', N.m, 'tenant', 'template_id', 'nt', 'n')
  for i, scope in ipairs({m[1], '*'}) do
    local base, score = N.idx .. scope .. ':', m[2 + i]
    if old then
      redis.call('ZREM', base .. 's:' .. old, N.mid)
      redis.call('ZREM', base .. 'st:' .. old .. ':' .. m[2], N.mid)
    end
    redis.call('ZADD', base .. 's:' .. new, score, N.mid)
    redis.call('ZADD', base .. 'st:' .. new .. ':' .. m[2], score, N.mid)
  end
end

-- Put a non-terminal job into a terminal status, withdrawing its queued run or lease.
local function close_job(role, status, reason, t)
  local jk = jkey(role)
  local j = redis.call('HMGET', jk, 'status', 'attempt')
  if TERMINAL_JOB[j[1]] then return false end
  if j[1] == 'QUEUED' or j[1] == 'RETRYING' then dequeue(job_id(role) .. ':' .. j[2]) end
  if j[1] == 'RUNNING' then redis.call('ZREM', N.leases, lease_member(role, j[2])) end
  redis.call('HSET', jk, 'status', status, 'finished_at', t, 'error', reason)
  emit('job.' .. string.lower(status), status, job_id(role), reason, nil, t)
  return true
end

-- End the mission once: close its open jobs (with `job_status`), index, event, expiry of the log.
local function finish_mission(status, job_status, reason, t)
  local m = redis.call('HMGET', N.m, 'status', 'roles', 'retention')
  if TERMINAL_MISSION[m[1]] then return false end
  local stopped = false
  if job_status then
    for _, role in ipairs(cjson.decode(m[2])) do
      if close_job(role, job_status, reason, t) then stopped = true end
    end
  end
  redis.call('HSET', N.m, 'status', status, 'finished_at', t, 'pending', 0)
  if redis.call('HGET', N.m, 'approval_state') == 'PENDING' then  -- no decision is awaited any more
    redis.call('HSET', N.m, 'approval_state', 'WITHDRAWN', 'approval_decided_at', t)
    dequeue(N.mid .. ':approval')
    redis.call('ZREM', N.approvals, N.mid)
  end
  if reason then redis.call('HSET', N.m, 'failure_reason', reason) end
  dequeue(N.mid .. ':deadline')
  redis.call('ZREM', N.deadlines, N.mid)
  redis.call('ZADD', N.finished, t, N.mid)
  index_move(m[1], status)
  count('finished:' .. redis.call('HGET', N.m, 'template_id') .. ':' .. status)
  emit('mission.' .. string.lower(status), status, nil, reason or 'mission succeeded', nil, t)
  if stopped then
    redis.call('PUBLISH', N.ctl, '{"missionId":"' .. N.mid .. '","status":"' .. status .. '"}')
  end
  redis.call('EXPIRE', N.ev, m[3])
  redis.call('EXPIRE', N.out, m[3])
  return true
end

-- What the caller logs of a mission this script ended: created and finished (ms), spent and
-- budget (cents), template, tenant.
local function ending()
  return redis.call('HMGET', N.m, 'created_at', 'finished_at', 'spent', 'budget', 'template_id', 'tenant')
end

-- When no job is left open, the outcome policy decides the mission's status; returns the status.
local function settle(t)
  local m = redis.call('HMGET', N.m, 'status', 'pending', 'succeeded', 'total', 'policy', 'quorum', 'first_failure')
  if TERMINAL_MISSION[m[1]] or tonumber(m[2]) > 0 then return m[1] end
  local ok, total = tonumber(m[3]), tonumber(m[4])
  local need = total
  if m[5] == 'any' then need = 1 elseif m[5] == 'quorum' then need = tonumber(m[6]) end
  if ok >= need then
    finish_mission('SUCCEEDED', nil, nil, t)
    return 'SUCCEEDED'
  end
  local reason = ok .. ' of ' .. total .. ' jobs succeeded; the ' .. m[5] .. ' outcome needs ' .. need
  if m[7] and m[7] ~= '' then reason = reason .. '; first failure: ' .. m[7] end
  finish_mission('FAILED', nil, reason, t)
  return 'FAILED'
end

local function expire_reason()
  return 'deadline passed: the time limit of ' .. redis.call('HGET', N.m, 'ttl') .. ' s ran out'
end

-- The mission's approval gate is reached: it waits for a decision until the gate's deadline, when
-- its timeout job (and the reaper's backstop, `approvals`) applies `on_timeout`.
local function request_approval(t)
  local m = redis.call('HMGET', N.m, 'status', 'gate_timeout', 'gate_departments')
  local deadline = t + tonumber(m[2]) * 1000
  redis.call('HSET', N.m, 'status', 'AWAITING_APPROVAL', 'approval_state', 'PENDING', 'approval_requested_at', t,
    'approval_deadline', deadline)
  index_move(m[1], 'AWAITING_APPROVAL')
  count('approval_requests')
  enqueue('approval_timeout', N.mid .. ':approval', '["' .. N.mid .. '"]', deadline, t)
  redis.call('ZADD', N.approvals, deadline, N.mid)
  local departments = cjson.decode(m[3])
  emit('approval.requested', 'AWAITING_APPROVAL', nil, 'approval needed before ' .. table.concat(departments, ', '),
    {deadline = deadline, departments = departments}, t)
end

-- A job whose upstream all succeeded: queued, or held at the approval gate (which it reaches
-- first if no job has) until a decision; gated jobs queue at once once the gate is approved.
local function ready(role, t, why)
  local jk = jkey(role)
  if redis.call('HGET', jk, 'gated') == '1' then
    local state = redis.call('HGET', N.m, 'approval_state')
    if state == 'NOT_REACHED' then request_approval(t) end
    if state == 'NOT_REACHED' or state == 'PENDING' then
      redis.call('HSET', jk, 'status', 'AWAITING_APPROVAL')
      emit('job.awaiting_approval', 'AWAITING_APPROVAL', job_id(role), 'waiting for approval', nil, t)
      return
    end
  end
  redis.call('HSET', jk, 'status', 'QUEUED', 'attempt', 1)
  enqueue_attempt(role, 1, t, t)
  emit('job.queued', 'QUEUED', job_id(role), why, {attempt = 1}, t)
end

-- Skip the jobs of `roles` that have not started (WAITING, AWAITING_APPROVAL) and, transitively,
-- their waiting dependents.
local function skip_jobs(roles, why, t)
  local queue, i = roles, 1
  while i <= #queue do
    local role = queue[i]
    i = i + 1
    local jk = jkey(role)
    local status = redis.call('HGET', jk, 'status')
    if status == 'WAITING' or status == 'AWAITING_APPROVAL' then
      redis.call('HSET', jk, 'status', 'SKIPPED', 'finished_at', t, 'error', why)
      redis.call('HINCRBY', N.m, 'pending', -1)
      emit('job.skipped', 'SKIPPED', job_id(role), why, nil, t)
      for _, next in ipairs(cjson.decode(redis.call('HGET', jk, 'dependents'))) do queue[#queue + 1] = next end
    end
  end
end
