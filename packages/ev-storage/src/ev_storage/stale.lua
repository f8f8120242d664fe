-- Staleness of one sensor type for one staleness rule (ev-storage; docs/alarms.md, "Stale sensors").
--
-- KEYS: 1 the sensor's alarm hash, 2 the type's history, 3 the sensor's episode index (same
-- hash tag: one slot).
-- ARGV: 1 sensor type, 2 rule id, 3 stale_after ms, 4 severity, 5 the sensor's alarm channel.
-- A sensor type is stale when its newest stored reading (the history's meta) is older than the
-- server's now minus stale_after. The check is atomic, so any number of sweepers (one per
-- consumer) raise one episode per silence:
--   not stale episode, stale now  -> raise: began = newest + stale_after (the measurement-time
--                                    instant it became stale), raised = began, raised at = now;
--                                    field "z|<type>|<rule>" = "<began>:<newest>"
--   stale episode, fresh again    -> clear: cleared = the first stored reading after <newest>
--                                    (the reading that ended the silence), cleared at = now
-- Episodes and pending transitions are kept as alarms.lua keeps them (same fields), so the
-- fleet's index, the API and the live channel show them like any alarm.
-- Returns the transitions made (0 or 1), as alarms.lua formats them (ten fields).

local alarm_key, history_key = KEYS[1], KEYS[2]
local sensor_type, rule, severity = ARGV[1], ARGV[2], ARGV[4]
local stale_after = tonumber(ARGV[3])
local RECORD = 12

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local at = string.format('%d', now)
local meta = redis.call('HGET', history_key, 'meta')
if not meta then
    return {} -- no history (expired): the catalogue drops the sensor's type
end
local bucket_ms, newest = string.match(meta, '^(%d+):(%-?%d+):')
bucket_ms, newest = tonumber(bucket_ms), tonumber(newest)

local state_field = 'z|' .. sensor_type .. '|' .. rule
local state = redis.call('HGET', alarm_key, state_field)
local text
if state then
    local began, last = string.match(state, '^(%-?%d+):(%-?%d+)$')
    began, last = tonumber(began), tonumber(last)
    if newest < now - stale_after or newest <= last then
        return {}
    end
    -- The first stored reading after `last` ended the silence.
    local cleared = newest
    local n = math.floor((last + 1) / bucket_ms)
    local stop = math.floor(newest / bucket_ms)
    while n <= stop and cleared == newest do
        local data = redis.call('HGET', history_key, string.format('%d', n))
        if data then
            for i = 1, #data, RECORD do
                local ms = n * bucket_ms + struct.unpack('>I4', data, i)
                if ms > last then
                    cleared = math.min(cleared, ms)
                    break
                end
            end
        end
        n = n + 1
    end
    local field = 'e|' .. sensor_type .. '|' .. rule .. '|' .. string.format('%d', began)
    local episode = redis.call('HGET', alarm_key, field)
    local raised_at = episode and string.match(episode, '^%-?%d+:%-?%d*:(%d*):') or at
    local stored_severity = episode and string.match(episode, ':(%a*)$') or severity
    redis.call('HSET', alarm_key, field, string.format('%d:%d:%s:%s:%s', began, cleared,
        raised_at, at, stored_severity))
    redis.call('HDEL', alarm_key, state_field)
    text = string.format('cleared|%s|%s|%d|%d|%d|%s|%s|%s|%s', sensor_type, rule, began, began,
        cleared, stored_severity, at, raised_at, at)
else
    if newest >= now - stale_after then
        return {}
    end
    local began = newest + stale_after
    local field = 'e|' .. sensor_type .. '|' .. rule .. '|' .. string.format('%d', began)
    redis.call('HSET', alarm_key, field, string.format('%d::%s::%s', began, at, severity),
        state_field, string.format('%d:%d', began, newest))
    redis.call('ZADD', KEYS[3], began, sensor_type .. '|' .. rule .. '|' .. string.format('%d', began))
    text = string.format('raised|%s|%s|%d|%d||%s|%s|%s|', sensor_type, rule, began, began,
        severity, at, at)
end
-- Pending until the writer's side has indexed it, and published, as alarms.lua does.
local pending = redis.call('HGET', alarm_key, 'pending')
redis.call('HSET', alarm_key, 'pending', pending and (pending .. '\n' .. text) or text)
redis.call('PEXPIRE', alarm_key, redis.call('PTTL', history_key))
redis.call('PUBLISH', ARGV[5], text)
return {text}
