-- Create a mission, its jobs and indexes; queue its root jobs (or hold gated ones at the approval
-- gate) and its deadline job; one event each.
-- Returns the mission as stored, in the shape read.lua gives, so the caller never re-derives it.
-- ARGV: mission id, mission fields (JSON object), jobs (JSON array of objects), idempotency key or '',
--       idempotency key TTL (s), deployed event data (JSON)
local idem = ARGV[4]
if idem ~= '' then
  local existing = redis.call('GET', idem)
  if existing then return {'existing', existing} end
end
local fields = cjson.decode(ARGV[2])
local jobs = cjson.decode(ARGV[3])
local t = now_ms()
local n = redis.call('INCR', N.counter)
local nt = redis.call('INCR', N.counter .. ':' .. fields.tenant)
local deadline = t + tonumber(fields.ttl) * 1000
local hs = {'id', N.mid, 'status', 'QUEUED', 'created_at', t, 'deadline', deadline, 'n', n, 'nt', nt, 'seq', 0,
  'spent', 0, 'succeeded', 0, 'pending', #jobs, 'total', #jobs}
for k, v in pairs(fields) do hs[#hs + 1] = k; hs[#hs + 1] = v end
redis.call('HSET', N.m, unpack(hs))

local roots = {}
for _, job in ipairs(jobs) do
  if #cjson.decode(job.depends_on) == 0 then roots[#roots + 1] = job.role end
  local js = {'status', 'WAITING', 'attempt', 0, 'tries', 0, 'failures', 0, 'lost', 0, 'spent', 0, 'progress', 0}
  for k, v in pairs(job) do js[#js + 1] = k; js[#js + 1] = v end
  redis.call('HSET', jkey(job.role), unpack(js))
end

for scope, score in pairs({[fields.tenant] = nt, ['*'] = n}) do
  local base = N.idx .. scope .. ':'
  redis.call('ZADD', base .. 'all', score, N.mid)
  redis.call('ZADD', base .. 't:' .. fields.template_id, score, N.mid)
end
index_move(nil, 'QUEUED')
if idem ~= '' then redis.call('SET', idem, N.mid, 'EX', tonumber(ARGV[5])) end

count('deployed:' .. fields.template_id)
emit('mission.deployed', 'QUEUED', nil, 'mission deployed', cjson.decode(ARGV[6]), t)
for _, role in ipairs(roots) do ready(role, t, 'queued') end
enqueue('expire_mission', N.mid .. ':deadline', '["' .. N.mid .. '"]', deadline, t)
redis.call('ZADD', N.deadlines, deadline, N.mid)
wake()

local function map(flat)
  local out = {}
  for i = 1, #flat, 2 do out[flat[i]] = flat[i + 1] end
  return out
end
local mission = map(redis.call('HGETALL', N.m))
mission.jobs = {}
for i, job in ipairs(jobs) do mission.jobs[i] = map(redis.call('HGETALL', jkey(job.role))) end
return {'created', cjson.encode(mission)}
