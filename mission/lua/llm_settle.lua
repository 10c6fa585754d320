-- Settle a model call's reservation (job field `llm:<attempt>:<seq>`, see llm_reserve.lua), once:
--   ok       charge the reported usage's cost and release the rest of the reservation;
--   refused  the provider refused before generating: release all of it;
--   unknown  cut after sending (timeout, dropped connection, cancel): keep all of it charged.
-- A cost above the reservation (the prompt's tokens passed their bound) is charged as far as the
-- allocation and the budget still hold it; the rest is counted as unmetered, never charged: `spent`
-- stays within the allocation. Settles even when the attempt has ended (the money was reserved);
-- the event is written only while the mission runs.
-- ARGV: mission id, role, attempt, reservation seq, outcome, prompt tokens, completion tokens, cost cents,
--       model, latency ms
local role, attempt, rseq, outcome = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local prompt, completion, cost, model = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9]
local latency = tonumber(ARGV[10])
local jk = jkey(role)
local field = 'llm:' .. attempt .. ':' .. rseq
local j = redis.call('HMGET', jk, field, 'spent', 'allocated', 'status')
if not j[1] then return {'settled', 0, -1} end  -- already settled
local reserved = tonumber(string.match(j[1], '^(%d+) '))
local spent, allocated = tonumber(j[2]), tonumber(j[3])
if outcome == 'refused' then cost = 0 elseif outcome == 'unknown' then cost = reserved end
local charge, unmetered = cost, 0
if cost > reserved then
  local m = redis.call('HMGET', N.m, 'spent', 'budget', 'status')
  local room = math.max(0, math.min(allocated - spent, tonumber(m[2]) - tonumber(m[1])))
  charge = reserved + math.min(cost - reserved, room)
  unmetered = cost - charge
end
local delta = charge - reserved
redis.call('HDEL', jk, field)
if delta ~= 0 then
  redis.call('HINCRBY', jk, 'spent', delta)
  redis.call('HINCRBY', N.m, 'spent', delta)
end
local sent = outcome ~= 'refused'
if sent then
  for _, key in ipairs({jk, N.m}) do
    redis.call('HINCRBY', key, 'prompt_tokens', prompt)
    redis.call('HINCRBY', key, 'completion_tokens', completion)
    redis.call('HINCRBY', key, 'llm_calls', 1)
  end
end
-- /metrics: calls by model and outcome, tokens and cost by model, call latency
count('llm|calls|' .. outcome .. '|' .. model)
count('llm|prompt_tokens|' .. model, prompt)
count('llm|completion_tokens|' .. model, completion)
count('spent_cents', charge)
if unmetered > 0 then count('llm|unmetered_cents|' .. model, unmetered) end
if sent then
  local bucket = 'inf'
  for _, le in ipairs(LLM_BUCKETS_MS) do
    if latency <= le then bucket = tostring(le); break end
  end
  count('llm_ms_bucket:' .. bucket)
  count('llm_ms_count')
  count('llm_ms_sum', latency)
end
local status = redis.call('HGET', N.m, 'status')
if not TERMINAL_MISSION[status] then
  emit('job.llm_call', j[4], job_id(role), model .. ': ' .. outcome,
    {model = model, outcome = outcome, promptTokens = prompt, completionTokens = completion,
     cost = money(charge), reserved = money(reserved), unmetered = money(unmetered), latencyMs = latency,
     spent = money(spent + delta), allocated = money(allocated)}, now_ms())
end
return {'ok', spent + delta, charge}
