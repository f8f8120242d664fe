-- Acknowledge alarm transitions a writer has put in the fleet's alarm index (ev-storage;
-- alarms.lua keeps them pending in the sensor's alarm hash until then).
-- KEYS: 1 the sensor's alarm hash. ARGV: the transitions drained, as the write script gave them.
-- Removes those lines from the hash's "pending" field (others, added meanwhile by another
-- writer, stay); returns how many are still pending.
local pending = redis.call('HGET', KEYS[1], 'pending')
if not pending then
    return 0
end
local done = {}
for _, line in ipairs(ARGV) do
    done[line] = true
end
local kept = {}
for line in string.gmatch(pending, '[^\n]+') do
    if not done[line] then
        kept[#kept + 1] = line
    end
end
if #kept == 0 then
    redis.call('HDEL', KEYS[1], 'pending')
else
    redis.call('HSET', KEYS[1], 'pending', table.concat(kept, '\n'))
end
return #kept
