-- Store one reading atomically and idempotently (ev-storage; see docs/storage.md).
--
-- KEYS (all of one sensor, sharing the hash tag {<sensor_id>}):
--   1 latest   string, canonical reading JSON
--   2 history  zset, score = timestamp ms, member = "<ms>:<value>"
--   3 summary  hash, fields "<type>:count|min|max|sum|first|last"
-- ARGV:
--   1 timestamp ms (decimal integer)   2 value (Python repr of the float)
--   3 canonical reading JSON           4 sensor type
--   5 retention ms                     6 latest TTL ms, "0" for none
--   7 summary TTL ms, "0" for none     8 live channel
-- Returns 1 STORED, 0 DUPLICATE (nothing changed), -1 EXPIRED (nothing changed).
--
-- Numbers that go back to Redis are formatted with %.17g: Lua's tostring keeps only 14 digits.

local STORED, DUPLICATE, EXPIRED = 1, 0, -1

local latest_key, history_key, summary_key = KEYS[1], KEYS[2], KEYS[3]
local ts_text, value_text, json, sensor_type = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local retention_text, latest_ttl, summary_ttl, channel = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local ts, value, retention = tonumber(ts_text), tonumber(value_text), tonumber(retention_text)

local function num(x)
    return string.format('%.17g', x)
end

-- Milliseconds since the epoch of the "timestamp" in a canonical reading JSON, nil if absent.
-- (Days from civil date: H. Hinnant's algorithm, exact for the proleptic Gregorian calendar.)
local function json_timestamp_ms(text)
    local y, mo, d, h, mi, s, frac = string.match(
        text, '"timestamp":"(%d+)%-(%d+)%-(%d+)T(%d+):(%d+):(%d+)%.?(%d*)Z"')
    if not y then
        return nil
    end
    y, mo = tonumber(y), tonumber(mo)
    if mo <= 2 then
        y = y - 1
    end
    local era = math.floor(y / 400)
    local yoe = y - era * 400
    local doy = math.floor((153 * ((mo + 9) % 12) + 2) / 5) + tonumber(d) - 1
    local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
    local days = era * 146097 + doe - 719468
    local ms = tonumber(string.sub(frac .. '000', 1, 3))
    return ((days * 24 + tonumber(h)) * 60 + tonumber(mi)) * 60000 + tonumber(s) * 1000 + ms
end

-- 1. First write wins: the same (sensor, type, ms) is stored once, whatever its value.
if #redis.call('ZRANGEBYSCORE', history_key, ts_text, ts_text, 'LIMIT', 0, 1) > 0 then
    return DUPLICATE
end

-- 2. Older than the window behind the newest reading of this history: dropped.
local newest = ts
local top = redis.call('ZRANGE', history_key, -1, -1, 'WITHSCORES')
if #top > 0 then
    local top_ts = tonumber(top[2])
    if ts < top_ts - retention then
        return EXPIRED
    end
    newest = math.max(newest, top_ts)
end

-- 3. Insert, trim what fell out of the window, and let a silent sensor's history age out.
redis.call('ZADD', history_key, ts_text, ts_text .. ':' .. value_text)
redis.call('ZREMRANGEBYSCORE', history_key, '-inf', '(' .. num(newest - retention))
redis.call('PEXPIRE', history_key, retention_text)

-- 4. Aggregates of the type, over every distinct reading stored.
local fields = {
    sensor_type .. ':count', sensor_type .. ':min', sensor_type .. ':max',
    sensor_type .. ':sum', sensor_type .. ':first', sensor_type .. ':last',
}
local old = redis.call('HMGET', summary_key, unpack(fields))
local count = tonumber(old[1])
if count and old[2] and old[3] and old[4] and old[5] and old[6] then
    local min_text, max_text, first_text, last_text = old[2], old[3], old[5], old[6]
    if value < tonumber(min_text) then min_text = value_text end
    if value > tonumber(max_text) then max_text = value_text end
    if ts < tonumber(first_text) then first_text = ts_text end
    if ts > tonumber(last_text) then last_text = ts_text end
    redis.call('HSET', summary_key,
        fields[1], num(count + 1), fields[2], min_text, fields[3], max_text,
        fields[4], num(tonumber(old[4]) + value), fields[5], first_text, fields[6], last_text)
else
    -- New, expired or damaged aggregates of this type start over from this reading.
    redis.call('HSET', summary_key,
        fields[1], '1', fields[2], value_text, fields[3], value_text,
        fields[4], value_text, fields[5], ts_text, fields[6], ts_text)
end
if summary_ttl ~= '0' then
    redis.call('PEXPIRE', summary_key, summary_ttl)
end

-- 5. "Latest" is the newest by reading time, not by arrival.
local current = redis.call('GET', latest_key)
local current_ts = current and json_timestamp_ms(current)
if not current_ts or ts >= current_ts then
    if latest_ttl ~= '0' then
        redis.call('SET', latest_key, json, 'PX', latest_ttl)
    else
        redis.call('SET', latest_key, json)
    end
end

-- 6. Tell live subscribers, once per stored reading (a redelivery returned above).
redis.call('PUBLISH', channel, json)
return STORED
