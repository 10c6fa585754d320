-- A decision at a mission's approval gate, taken once: approve or reject (by a person), or timeout
-- (the gate's deadline passed: its `on_timeout` decides). A person deciding at or after the deadline
-- gets the timeout's decision taken instead, so the gate never outlives its moment.
-- Approval queues the gated jobs that wait at the gate; rejection skips every gated job not yet
-- started, and their dependents, and the outcome policy decides the mission's end.
-- ARGV: mission id, approve|reject|timeout, decided by (a key id; '' for the timeout), comment or reason,
--       the key that deployed the mission may decide (1|0)
local verb, by, note = ARGV[2], ARGV[3], ARGV[4]
local m = redis.call('HMGET', N.m, 'status', 'approval_state', 'approval_deadline', 'deployed_by', 'gate_on_timeout',
  'approval_requested_at', 'started_at', 'gate_roles', 'gate_timeout')
if not m[1] then return {'gone', '', ''} end
if m[2] ~= 'PENDING' then return {'not_pending', m[2] or '', m[1]} end
local t = now_ms()
local timed_out = t >= tonumber(m[3])
if verb == 'timeout' and not timed_out then return {'early', m[2], m[1]} end
if not timed_out and by == m[4] and ARGV[5] ~= '1' then return {'denied', m[2], m[1]} end

local state, approve
if timed_out then
  state, approve, by = 'TIMED_OUT', m[5] == 'approve', ''
  note = 'no decision within ' .. m[9] .. ' s: ' .. (approve and 'approved' or 'rejected') .. ' by the timeout'
else
  state, approve = (verb == 'approve') and 'APPROVED' or 'REJECTED', verb == 'approve'
end
redis.call('HSET', N.m, 'approval_state', state, 'approval_decided_at', t, 'approval_decided_by', by,
  'approval_comment', note, 'approval_approved', approve and '1' or '0')
redis.call('ZREM', N.approvals, N.mid)
dequeue(N.mid .. ':approval')
count('approval_decisions:' .. state .. ':' .. (approve and 'approved' or 'rejected'))
observe('approval_ms', APPROVAL_BUCKETS_MS, t - tonumber(m[6]))

local status = m[7] and 'RUNNING' or 'QUEUED'
redis.call('HSET', N.m, 'status', status)
index_move(m[1], status)
local etype = 'approval.rejected'
if timed_out then etype = 'approval.timed_out' elseif approve then etype = 'approval.granted' end
local data = {decidedBy = by ~= '' and by or cjson.null, comment = note, approved = approve, waitedMs = t - tonumber(m[6])}
emit(etype, status, nil, note ~= '' and note or (approve and 'approved' or 'rejected'), data, t)

local gated = cjson.decode(m[8])
if approve then
  for _, role in ipairs(gated) do
    if redis.call('HGET', jkey(role), 'status') == 'AWAITING_APPROVAL' then ready(role, t, 'approved') end
  end
else
  skip_jobs(gated, (timed_out and '' or 'approval rejected: ') .. note, t)
end
local final = settle(t)
wake()
-- a person too late gets `late`: the timeout decided, not them
local result = (timed_out and verb ~= 'timeout') and 'late' or 'ok'
if TERMINAL_MISSION[final] then return {result, state, final, unpack(ending())} end
return {result, state, final}
