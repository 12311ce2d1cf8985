-- Append one event and apply its projection, if the reads behind it still hold.
--
-- ARGV[1] is the key prefix; ARGV[2] is a JSON object:
--   id      a unique id of this commit attempt, so that resending it after a
--           lost reply returns the first result instead of appending twice
--   fields  the stream entry as a flat list: name, value, name, value, ...
--   checks  [kind, key, expected]: "doc" (GET equals expected, or the key is
--           absent when expected is null), "members" (SMEMBERS, sorted, equals
--           expected), "card_lt" (SCARD is below expected)
--   ops     [kind, key, value]: "set", "del", "sadd", "srem"
-- Keys in the payload are relative to the prefix.
--
-- Returns {"ok", stream id}, {"applied", stream id} for a resent commit, or
-- {"conflict", key} when a check failed and nothing was written.

local prefix = ARGV[1]
local payload = cjson.decode(ARGV[2])

local function full(key)
  return prefix .. ':' .. key
end

local receipt = full('commit:' .. payload.id)
local prior = redis.call('GET', receipt)
if prior then
  return {'applied', prior}
end

for _, check in ipairs(payload.checks) do
  local kind, key, expected = check[1], full(check[2]), check[3]
  if kind == 'doc' then
    local stored = redis.call('GET', key)
    if expected == cjson.null then
      if stored then return {'conflict', check[2]} end
    elseif stored ~= expected then
      return {'conflict', check[2]}
    end
  elseif kind == 'members' then
    local stored = redis.call('SMEMBERS', key)
    table.sort(stored)
    if #stored ~= #expected then return {'conflict', check[2]} end
    for i = 1, #stored do
      if stored[i] ~= expected[i] then return {'conflict', check[2]} end
    end
  elseif kind == 'card_lt' then
    if redis.call('SCARD', key) >= expected then return {'conflict', check[2]} end
  else
    return redis.error_reply('unknown check kind ' .. tostring(kind))
  end
end

local id = redis.call('XADD', full('events'), '*', unpack(payload.fields))

for _, op in ipairs(payload.ops) do
  local kind, key = op[1], full(op[2])
  if kind == 'set' then
    redis.call('SET', key, op[3])
  elseif kind == 'del' then
    redis.call('DEL', key)
  elseif kind == 'sadd' then
    redis.call('SADD', key, op[3])
  elseif kind == 'srem' then
    redis.call('SREM', key, op[3])
  end
end

-- Receipts expire after 5 minutes: a client resends within seconds, and a
-- load run writing thousands of events a second must not keep them longer.
redis.call('SET', receipt, id, 'EX', 300)
return {'ok', id}
