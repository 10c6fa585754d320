-- Read whole missions (record, jobs, optionally outputs) in one round trip, as JSON.
-- (No shared prelude.) ARGV: with outputs (1|0), then (mission key, job key prefix, outputs key) triples
local function map(flat)
  local out = {}
  for i = 1, #flat, 2 do out[flat[i]] = flat[i + 1] end
  return out
end
local result = {}
for i = 2, #ARGV, 3 do
  local flat = redis.call('HGETALL', ARGV[i])
  if #flat == 0 then
    result[#result + 1] = cjson.null
  else
    local m = map(flat)
    local jobs = {}
    for _, role in ipairs(cjson.decode(m.roles)) do jobs[#jobs + 1] = map(redis.call('HGETALL', ARGV[i + 1] .. role)) end
    m.jobs = jobs
    if ARGV[1] == '1' then m.outputs = map(redis.call('HGETALL', ARGV[i + 2])) end
    result[#result + 1] = m
  end
end
return cjson.encode(result)
