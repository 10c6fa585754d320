-- Reserve a model call's worst case before it is sent: prompt bound × input price + max_tokens ×
-- output price, charged to `spent` at once (job and mission), so concurrent calls can never pass
-- the allocation. When the worst case does not fit, max_tokens shrinks to what does; below
-- `min_tokens` the call is refused. `seq` numbers the attempt's SDK calls (a retried reserve returns
-- the reservation it made). The reservation is kept as job field `llm:<attempt>:<seq>` until settled.
-- ARGV: mission id, role, attempt, seq, worst cents, prompt bound, max_tokens, min_tokens, input units, output units,
--       model
local role, attempt, seq = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local worst, prompt, max_tokens = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local min_tokens, pin, pout = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local UNITS_PER_CENT = 100000000
local jk = jkey(role)
local field = 'llm:' .. attempt .. ':' .. seq
local j = redis.call('HMGET', jk, 'status', 'attempt', 'spent', 'allocated', 'sdk_seq', field)
if j[1] ~= 'RUNNING' or tonumber(j[2]) ~= attempt then return {'stale', 0, 0} end
local spent, allocated = tonumber(j[3] or 0), tonumber(j[4])
if seq <= tonumber(j[5] or 0) then  -- already applied: the reservation it made, if any
  if j[6] then
    local cents, granted = string.match(j[6], '^(%d+) (%d+)$')
    return {'ok', tonumber(cents), tonumber(granted)}
  end
  return {'exceeded', spent, allocated}
end
redis.call('HSET', jk, 'sdk_seq', seq)
local m = redis.call('HMGET', N.m, 'spent', 'budget')
local room = math.min(allocated - spent, tonumber(m[2]) - tonumber(m[1]))
local cents, granted = worst, max_tokens
if worst > room then
  if pout <= 0 then
    count('llm|calls|budget_refused|' .. ARGV[11])
    return {'exceeded', spent, allocated}
  end
  granted = math.min(max_tokens, math.floor((room * UNITS_PER_CENT - prompt * pin) / pout))
  cents = math.ceil((prompt * pin + granted * pout) / UNITS_PER_CENT)
  while granted > 0 and cents > room do
    granted = granted - 1
    cents = math.ceil((prompt * pin + granted * pout) / UNITS_PER_CENT)
  end
  if granted < math.min(min_tokens, max_tokens) or cents > room then
    count('llm|calls|budget_refused|' .. ARGV[11])
    return {'exceeded', spent, allocated}
  end
end
redis.call('HINCRBY', jk, 'spent', cents)
redis.call('HINCRBY', N.m, 'spent', cents)
redis.call('HSET', jk, field, cents .. ' ' .. granted)
return {'ok', cents, granted}
