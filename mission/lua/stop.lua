-- Cancel a mission on request, or expire it at its deadline; idempotent.
-- ARGV: mission id, CANCELLED|EXPIRED, reason ('' for the default)
local status = redis.call('HGET', N.m, 'status')
if not status then return {'gone', ''} end
if TERMINAL_MISSION[status] then return {'noop', status} end
local t = now_ms()
local target = ARGV[2]
local reason = ARGV[3]
if target == 'EXPIRED' then
  if t < tonumber(redis.call('HGET', N.m, 'deadline')) then return {'early', status} end
  if reason == '' then reason = expire_reason() end
elseif reason == '' then
  reason = 'cancelled on request'
end
finish_mission(target, target, reason, t)
return {'ok', target, unpack(ending())}
