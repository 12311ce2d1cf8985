-- Read documents, set members and set sizes in one consistent round trip.
--
-- ARGV[1] is the key prefix; ARGV[2] is a JSON object with lists of relative
-- keys "docs", "members", "cards", a list "follow" of
-- [doc key, field, item, target prefix], and a flag "stream_length".
-- A follow reads doc[field][item] from a JSON document and loads the
-- document named target prefix .. value, so that a participant and the
-- session they run on a route arrive together.
--
-- Returns {docs, members, cards, follows, stream length}, where docs contains
-- false for absent keys and follows contains {key, document} pairs.

local prefix = ARGV[1]
local request = cjson.decode(ARGV[2])

local function full(key)
  return prefix .. ':' .. key
end

local docs = {}
for i, key in ipairs(request.docs) do
  docs[i] = redis.call('GET', full(key))
end

local members = {}
for i, key in ipairs(request.members) do
  members[i] = redis.call('SMEMBERS', full(key))
end

local cards = {}
for i, key in ipairs(request.cards) do
  cards[i] = redis.call('SCARD', full(key))
end

local follows = {}
for _, follow in ipairs(request.follow) do
  local raw = redis.call('GET', full(follow[1]))
  if raw then
    local section = cjson.decode(raw)[follow[2]]
    local value = type(section) == 'table' and section[follow[3]] or nil
    if type(value) == 'string' then
      local target = follow[4] .. value
      follows[#follows + 1] = {target, redis.call('GET', full(target))}
    end
  end
end

local length = 0
if request.stream_length then
  length = redis.call('XLEN', full('events'))
end

return {docs, members, cards, follows, length}
