-- Store readings of one sensor atomically and idempotently (ev-storage; see docs/storage.md).
--
-- One call stores up to a few hundred readings of ONE sensor (every key shares the hash tag
-- {<sensor_id>}, so on Redis Cluster the call touches one slot); each reading is handled in turn
-- exactly as if it had a call of its own.
-- KEYS:
--   1 summary  hash, fields "<type>:count|min|max|sum|first|last|latest" (latest: the ms of the
--              stored latest reading of the type)
--   then per reading, 2 keys:
--   latest     string, canonical reading JSON
--   history    hash of time buckets: field "<n>" holds the readings of
--              [n * bucket_ms, (n + 1) * bucket_ms) as 12-byte records sorted by time (big-endian
--              uint32 ms offset in the bucket, big-endian IEEE 754 double value); field "meta" is
--              "<bucket_ms>:<newest ms>:<first>", first = the lowest bucket (readers start there);
--              the same hash keeps the rollups (below)
-- ARGV:
--   1 retention ms                     2 latest TTL ms, "0" for none
--   3 summary TTL ms, "0" for none     4 live channel
--   5 bucket ms of a new history (an existing one keeps the size in its meta)
--   6 "1" to keep rollups, "0" not to (then the history drops its "rollups" field: none are used)
--   7 r, the number of alarm rules that apply to this sensor, then 9 arguments per rule (see
--     alarms.lua); with rules, the last two keys are the sensor's alarm hash and episode index
--   then per reading, 5 arguments:
--   timestamp ms (decimal integer), value (Python repr of the float), canonical reading JSON,
--   sensor type, value as 8 bytes (big-endian IEEE 754 double, packed by the caller: exact)
-- Returns two integers per reading, in order: its outcome, 1 STORED, 0 DUPLICATE (the same value
-- stored already: nothing changed), 2 CONFLICT (another value stored already: nothing changed),
-- -1 EXPIRED (nothing changed); then the history key's expiry in server ms (PEXPIRETIME).
--
-- Invariant after every reading: the history holds exactly the distinct readings of
-- [newest - retention, newest], each bucket sorted and non-empty, so its bytes depend only on the
-- set of readings delivered, never on their order (first write wins between two values of one ms).
--
-- Rollups (docs/storage.md): field "m<n>" aggregates the history's readings of minute n
-- ([n * 60 s, (n + 1) * 60 s)), "q<n>" those of quarter hour n, as a packed record: count (uint32),
-- min, max (doubles), first and last (uint32 ms offset in the rollup bucket, double value), then
-- the sum as its exact partials (doubles, non-overlapping, ascending magnitude: Shewchuk's
-- expansion, as Python's math.fsum keeps it). Field "rollups" holds S, a multiple of 15 minutes:
-- for every rollup bucket starting at or after S the record (absent: no readings) aggregates
-- exactly the readings the history holds in it. Only a STORED reading at or after S changes a
-- record; moving the window past S moves S up to the next quarter hour and deletes the records
-- below it, whose readings are being trimmed. Without the field no rollup is used.
--
-- Numbers that go back to Redis are formatted with %.17g (%d for integers): Lua's tostring keeps
-- only 14 digits. Redis's Lua hashes every byte of every string it makes (a reply, a concat, a
-- sub), about 2 ns per byte, so the script makes as few and as small strings as it can.

local STORED, DUPLICATE, CONFLICT, EXPIRED = 1, 0, 2, -1
local RECORD = 12 -- bytes per reading in a bucket
local META = 'meta'
local HDEL_CHUNK = 1000 -- fields per HDEL: unpack() is bounded by the Lua stack
local NEXT_PROBES = 8 -- bucket numbers tried one by one before listing the hash (HKEYS)
local ROLLUPS = 'rollups'
local MINUTE, QUARTER = 60000, 900000 -- rollup bucket sizes, ms
local ROLLUP_HEAD = '>I4ddI4dI4d' -- count, min, max, first (offset, value), last (offset, value)
local ROLLUP_HEAD_SIZE = 44

local summary_key = KEYS[1]
local retention_text, latest_ttl, summary_ttl, channel = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local new_bucket_text, keep_rollups = ARGV[5], ARGV[6] == '1'
local retention = tonumber(retention_text)
local rule_count = tonumber(ARGV[7])
local RULE_ARGS, ARGS_PER_READING, KEYS_PER_READING = 9, 5, 2
local FIXED_ARGS = 7 + RULE_ARGS * (rule_count or 0)
local readings = (#ARGV - FIXED_ARGS) / ARGS_PER_READING
local alarm_keys = rule_count and rule_count > 0 and 2 or 0
if not rule_count or readings ~= math.floor(readings)
        or #KEYS ~= 1 + KEYS_PER_READING * readings + alarm_keys then
    return redis.error_reply('ERR expected 1 + 2n (+ 2 with rules) keys and 7 + 9r + 5n arguments')
end

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

-- The records of a bucket ('' when absent), checked whole.
local function records(history_key, data, field)
    if not data then
        return ''
    end
    if #data % RECORD ~= 0 then
        error('damaged history bucket ' .. field .. ' in ' .. history_key)
    end
    return data
end

local function offset_at(data, index) -- index 0-based
    return (struct.unpack('>I4', data, index * RECORD + 1))
end

-- Index (0-based) of the first record of data at or after offset, and whether it is at offset.
local function find(data, target)
    local count = #data / RECORD
    local lo, hi = 0, count
    while lo < hi do
        local mid = math.floor((lo + hi) / 2)
        if offset_at(data, mid) < target then
            lo = mid + 1
        else
            hi = mid
        end
    end
    return lo, lo < count and offset_at(data, lo) == target
end

-- data without its records before target. The window moves a little at a time, so look at the
-- first records one by one before searching.
local function trim_before(data, target)
    local count = #data / RECORD
    for index = 0, math.min(count, 4) - 1 do
        if offset_at(data, index) >= target then
            return index == 0 and data or string.sub(data, index * RECORD + 1)
        end
    end
    if count <= 4 then
        return ''
    end
    return string.sub(data, (find(data, target)) * RECORD + 1)
end

-- The lowest bucket above n, b at most (b is about to get this reading).
local function next_bucket(history_key, n, b)
    for m = n + 1, math.min(b - 1, n + NEXT_PROBES) do
        if redis.call('HEXISTS', history_key, string.format('%d', m)) == 1 then
            return m
        end
    end
    if b <= n + NEXT_PROBES + 1 then
        return b
    end
    -- A long gap (the sensor was silent): list the buckets rather than probe every number.
    local lowest = b
    for _, field in ipairs(redis.call('HKEYS', history_key)) do
        local m = tonumber(field)
        if m and m > n and m < lowest then
            lowest = m
        end
    end
    return lowest
end

-- Record formats by number of partials (made once, not per reading).
local ROLLUP_FORMAT = {}
for n = 0, 64 do
    ROLLUP_FORMAT[n] = ROLLUP_HEAD .. string.rep('d', n)
end

-- Rollup records this call updates, decoded: OPEN[history key][field] = {count, min, max,
-- first offset, first, last offset, last, then the partials; n = their number}. A record is
-- decoded once per call, updated in place for each reading, and packed back into the HSET of
-- the call's last reading of its history (flush_rollups writes what is left when that one was
-- not stored, or the call fails). Deleting rollups (drop_rollups) closes the deleted ones.
local OPEN = {}

-- The record `data` (nil: an empty one) decoded.
local function decode_rollup(data)
    if not data then
        return {0, 0, 0, 0, 0, 0, 0, n = 0}
    end
    local n = (#data - ROLLUP_HEAD_SIZE) / 8
    local format = ROLLUP_FORMAT[n]
    if not format then
        error('damaged rollup record')
    end
    local r = {struct.unpack(format, data)}
    r.n = n
    return r
end

-- The record `data` (nil: none yet) with one more reading, packed at once: the path of a
-- history's only reading in a call (a fleet's interleaved traffic), where opening the record
-- would cost more than it saves. Same arithmetic as rollup_update, on locals.
local PARTS = {} -- scratch for the partials (reused: no table per reading)
local function rollup_add(data, offset, value)
    if not data then
        return struct.pack(ROLLUP_FORMAT[value == 0 and 0 or 1],
            1, value, value, offset, value, offset, value, value)
    end
    local n = (#data - ROLLUP_HEAD_SIZE) / 8
    local format = ROLLUP_FORMAT[n]
    if not format then
        error('damaged rollup record')
    end
    -- Up to three partials (nearly always) as locals; more through a table.
    local count, low, high, first_at, first, last_at, last, p1, p2, p3 = struct.unpack(format, data)
    local more = n > 3 and {struct.unpack(format, data)}
    if value < low or (value == 0 and low == 0 and 1 / value < 0) then low = value end
    if value > high or (value == 0 and high == 0 and 1 / value > 0) then high = value end
    if offset < first_at then first_at, first = offset, value end
    if offset > last_at then last_at, last = offset, value end
    local kept, x = 0, value
    for i = 1, n do
        local y
        if i == 1 then
            y = p1
        elseif i == 2 then
            y = p2
        elseif i == 3 then
            y = p3
        else
            y = more[7 + i]
        end
        if math.abs(x) < math.abs(y) then
            x, y = y, x
        end
        local hi = x + y
        local lo = y - (hi - x)
        if lo ~= 0 then
            kept = kept + 1
            PARTS[kept] = lo
        end
        x = hi
    end
    if x ~= 0 then
        kept = kept + 1
        PARTS[kept] = x
    end
    return struct.pack(ROLLUP_FORMAT[kept], count + 1, low, high, first_at, first, last_at, last,
        unpack(PARTS, 1, kept))
end

-- Record r with one more reading, `offset` ms into its rollup bucket. The sum's partials grow
-- as in math.fsum: each two-sum (hi, lo) is exact, so the partials always add up to the exact
-- sum of the values (at most about 40: doubles span 2098 binary orders, each partial 53).
local function rollup_update(r, offset, value)
    if r[1] == 0 then
        r[1], r[2], r[3], r[4], r[5], r[6], r[7] = 1, value, value, offset, value, offset, value
        r[8], r.n = value, value == 0 and 0 or 1
        return
    end
    r[1] = r[1] + 1
    -- Of two zeros, min is -0 and max is 0 (IEEE 754 minimum, maximum): order does not matter.
    local low, high = r[2], r[3]
    if value < low or (value == 0 and low == 0 and 1 / value < 0) then r[2] = value end
    if value > high or (value == 0 and high == 0 and 1 / value > 0) then r[3] = value end
    if offset < r[4] then r[4], r[5] = offset, value end
    if offset > r[6] then r[6], r[7] = offset, value end
    local kept, x = 0, value
    for i = 8, 7 + r.n do -- partial i is read before slot 8 + kept <= i is written
        local y = r[i]
        if math.abs(x) < math.abs(y) then
            x, y = y, x
        end
        local hi = x + y
        local lo = y - (hi - x)
        if lo ~= 0 then
            r[8 + kept] = lo
            kept = kept + 1
        end
        x = hi
    end
    if x ~= 0 then
        r[8 + kept] = x
        kept = kept + 1
    end
    r.n = kept
end

-- `list` with the open records of one history, packed (field, value, ...); they are closed.
local function close_rollups(history_key, list)
    local records = OPEN[history_key]
    if records then
        for field, r in pairs(records) do
            list[#list + 1] = field
            list[#list + 1] = struct.pack(ROLLUP_FORMAT[r.n], unpack(r, 1, 7 + r.n))
        end
        OPEN[history_key] = nil
    end
    return list
end

-- Write every record still open back (the histories whose last reading of the call was not
-- stored, or a call that failed part way).
local function flush_rollups()
    for key in pairs(OPEN) do
        local fields = close_rollups(key, {})
        if #fields > 0 then
            redis.call('HSET', key, unpack(fields))
        end
    end
end

-- Delete the rollup records of [from, to) (multiples of QUARTER; from nil: all below to): by
-- number, or by listing the hash when the span has far more numbers than the hash has fields.
local function drop_rollups(history_key, from, to)
    local open = OPEN[history_key]
    if open then
        for field in pairs(open) do
            local kind, n = string.match(field, '^([mq])(%-?%d+)$')
            if tonumber(n) * (kind == 'm' and MINUTE or QUARTER) < to then
                open[field] = nil
            end
        end
    end
    local dead = {}
    local numbers = from and (to - from) / MINUTE
    if numbers and (numbers <= 64 or numbers <= redis.call('HLEN', history_key)) then
        for n = from / MINUTE, to / MINUTE - 1 do
            dead[#dead + 1] = string.format('m%d', n)
        end
        for n = from / QUARTER, to / QUARTER - 1 do
            dead[#dead + 1] = string.format('q%d', n)
        end
    else
        for _, field in ipairs(redis.call('HKEYS', history_key)) do
            local kind, n = string.match(field, '^([mq])(%-?%d+)$')
            if kind and tonumber(n) * (kind == 'm' and MINUTE or QUARTER) < to then
                dead[#dead + 1] = field
            end
        end
    end
    for i = 1, #dead, HDEL_CHUNK do
        redis.call('HDEL', history_key, unpack(dead, i, math.min(i + HDEL_CHUNK - 1, #dead)))
    end
end

-- `list` with the fields a STORED reading at `ts` adds to its HSET: S if it moved (since_text).
-- From S on, the reading goes into its minute and quarter-hour records (opened from `got` 5 and
-- 6, their stored values, the first time this call touches them); the call's `last` reading of
-- the history writes them back.
local function rollups_stored(list, history_key, since, since_text, ts, value_bytes, got,
                              m_field, q_field, last)
    if since_text then
        list[#list + 1], list[#list + 2] = ROLLUPS, since_text
    end
    if since and ts >= since then
        local exact = struct.unpack('>d', value_bytes) -- the stored double, not the text's
        local open = OPEN[history_key]
        local minute, quarter = open and open[m_field], open and open[q_field]
        if last and not minute and not quarter then
            -- Neither is open and no later reading of this call needs them: pack them now.
            list[#list + 1], list[#list + 2] = m_field, rollup_add(got[5], ts % MINUTE, exact)
            list[#list + 1], list[#list + 2] = q_field, rollup_add(got[6], ts % QUARTER, exact)
            return close_rollups(history_key, list)
        end
        if not open then
            open = {}
            OPEN[history_key] = open
        end
        if not minute then
            minute = decode_rollup(got[5])
            open[m_field] = minute
        end
        if not quarter then
            quarter = decode_rollup(got[6])
            open[q_field] = quarter
        end
        rollup_update(minute, ts % MINUTE, exact)
        rollup_update(quarter, ts % QUARTER, exact)
    end
    if last then -- the call's last reading of this history: its HSET writes the records back
        close_rollups(history_key, list)
    end
    return list
end

-- One reading: its outcome.
local function store(latest_key, history_key, ts_text, value_text, json, sensor_type, value_bytes,
                     last)
    if #value_bytes ~= 8 then
        error('the packed value must be 8 bytes')
    end
    local ts, value = tonumber(ts_text), tonumber(value_text)

    -- The history's bucket size: the caller's for a new history; an existing one keeps its own.
    -- Bucket numbers become field names with %d (integral, and faster than %.17g).
    local bucket_text = new_bucket_text
    local bucket_ms = tonumber(bucket_text)
    -- Exact: for integers below 2^53 the rounded quotient never crosses an integer.
    local b = math.floor(ts / bucket_ms)
    local cb = math.floor((ts - retention) / bucket_ms) -- the bucket of the window's start
    local b_field, cb_field = string.format('%d', b), string.format('%d', cb)
    -- This reading's rollup buckets.
    local m_field = string.format('m%d', math.floor(ts / MINUTE))
    local q_field = string.format('q%d', math.floor(ts / QUARTER))
    -- One round trip for the common case: meta, this reading's bucket, the window's first bucket,
    -- the rollups' start and this reading's rollup records.
    local got
    local open = OPEN[history_key]
    if keep_rollups and not (open and open[m_field] and open[q_field]) then
        got = redis.call('HMGET', history_key, META, b_field, cb_field, ROLLUPS, m_field, q_field)
    else
        got = redis.call('HMGET', history_key, META, b_field, cb_field, ROLLUPS)
    end
    local newest, newest_text, first, first_text
    if got[1] then
        local bucket_found
        bucket_found, newest_text, first_text = string.match(got[1], '^(%d+):(%-?%d+):(%-?%d+)$')
        if not bucket_found then
            error('damaged history meta in ' .. history_key)
        end
        newest, first = tonumber(newest_text), tonumber(first_text)
        if bucket_found ~= bucket_text then
            -- Created under another history_bucket setting: go on with its own.
            bucket_text, bucket_ms = bucket_found, tonumber(bucket_found)
            b = math.floor(ts / bucket_ms)
            cb = math.floor((ts - retention) / bucket_ms)
            b_field, cb_field = string.format('%d', b), string.format('%d', cb)
            got = redis.call('HMGET', history_key, META, b_field, cb_field, ROLLUPS, m_field,
                q_field)
        end
    end
    local offset = ts - b * bucket_ms

    -- The rollups' start S (nil: none kept). A history without one (older than rollups, or kept
    -- without them for a while) gets S after its newest reading, once its leftovers are gone.
    local since, since_text = tonumber(got[4]), nil
    if keep_rollups and not since then
        if newest then
            since = (math.floor(newest / QUARTER) + 1) * QUARTER
            drop_rollups(history_key, nil, math.huge)
        else
            since = math.ceil((ts - retention) / QUARTER) * QUARTER
        end
        since_text = string.format('%d', since)
    elseif not keep_rollups and since then
        redis.call('HDEL', history_key, ROLLUPS)
        since = nil
    end
    local data = records(history_key, got[2], b_field)
    if newest and ts > newest then
        -- The newest reading (the common case): neither a duplicate (1.) nor expired (2.). Append it
        -- (3.) and move the window to [ts - retention, ts]: edges inclusive, as in 2. Only when the
        -- window now starts at or after the first bucket is there anything to trim.
        local updates, dead = {}, {}
        if since then
            -- The window now starts at ts - retention: the rollup buckets before it lose readings.
            local start = math.ceil((ts - retention) / QUARTER) * QUARTER
            if start > since then
                drop_rollups(history_key, since, start)
                since, since_text = start, string.format('%d', start)
            end
        end
        if first <= cb then
            -- Whole buckets that fell out of the window, [first, cb): by number, or by HKEYS when the
            -- window jumped further than there are buckets (a sensor back after a long silence).
            if first < cb then
                if cb - first <= redis.call('HLEN', history_key) then
                    for n = first, cb - 1 do
                        dead[#dead + 1] = string.format('%d', n)
                    end
                else
                    for _, field in ipairs(redis.call('HKEYS', history_key)) do
                        local n = tonumber(field)
                        if n and n < cb then
                            dead[#dead + 1] = field
                        end
                    end
                end
            end
            -- The bucket the window starts in keeps its records from the cutoff on.
            local cut_at = ts - retention - cb * bucket_ms
            if cb == b then
                data = trim_before(data, cut_at)
                first = b
            else
                local old = records(history_key, got[3], cb_field)
                local kept = trim_before(old, cut_at)
                if kept == '' then
                    if old ~= '' then
                        dead[#dead + 1] = cb_field
                    end
                    first = next_bucket(history_key, cb, b)
                else
                    if #kept < #old then
                        updates[1], updates[2] = cb_field, kept
                    end
                    first = cb
                end
            end
            first_text = string.format('%d', first)
        end
        for i = 1, #dead, HDEL_CHUNK do
            redis.call('HDEL', history_key, unpack(dead, i, math.min(i + HDEL_CHUNK - 1, #dead)))
        end
        redis.call('HSET', history_key, b_field, data .. struct.pack('>I4', offset) .. value_bytes,
            META, bucket_text .. ':' .. ts_text .. ':' .. first_text,
            unpack(rollups_stored(updates, history_key, since, since_text, ts, value_bytes, got,
                m_field, q_field, last)))
    else
        -- An older reading, or the first one: find its place in its bucket.
        local at, found = find(data, offset)
        -- 1. First write wins: the same (sensor, type, ms) is stored once. A copy with the same
        -- value is a redelivery; one with another value conflicts (compared as doubles, so 0 and
        -- -0 agree). Both change nothing; only this rare path pays for the comparison.
        if found then
            local stored_value = struct.unpack('>d', data, at * RECORD + 5)
            if stored_value == struct.unpack('>d', value_bytes) then
                return DUPLICATE
            end
            return CONFLICT
        end
        -- 2. Older than the window behind the newest reading of this history: dropped.
        if newest and ts < newest - retention then
            return EXPIRED
        end
        -- 3. Insert in order. The window does not move: nothing to trim.
        data = string.sub(data, 1, at * RECORD) .. struct.pack('>I4', offset) .. value_bytes
            .. string.sub(data, at * RECORD + 1)
        if not newest or b < first then
            -- A new history, or a new first bucket.
            redis.call('HSET', history_key, b_field, data,
                META, bucket_text .. ':' .. (newest_text or ts_text) .. ':' .. b_field,
                unpack(rollups_stored({}, history_key, since, since_text, ts, value_bytes, got,
                    m_field, q_field, last)))
        else
            redis.call('HSET', history_key, b_field, data,
                unpack(rollups_stored({}, history_key, since, since_text, ts, value_bytes, got,
                    m_field, q_field, last)))
        end
    end
    -- A sensor that stops reporting ages out.
    redis.call('PEXPIRE', history_key, retention_text)

    -- 4. Aggregates of the type, over every distinct reading stored; the hash also keeps the
    -- timestamp of the type's stored latest ("<type>:latest"), so that 5. needs no GET in the common
    -- case.
    local fields = {
        sensor_type .. ':count', sensor_type .. ':min', sensor_type .. ':max',
        sensor_type .. ':sum', sensor_type .. ':first', sensor_type .. ':last',
        sensor_type .. ':latest',
    }
    local old = redis.call('HMGET', summary_key, unpack(fields))

    -- 5. "Latest" is the newest by reading time, not by arrival. A reading at or after the noted
    -- latest, and at or after the newest reading the aggregates counted, replaces it without
    -- looking; otherwise (out of order, latest expired, nothing noted, or a newer reading stored
    -- by a writer that keeps no note, e.g. an older version during an upgrade) compare with the
    -- stored latest's own timestamp.
    local latest_ms, last_ms = tonumber(old[7]), tonumber(old[6])
    local replace = latest_ms and last_ms and ts >= latest_ms and ts >= last_ms
    if not replace then
        local current = redis.call('GET', latest_key)
        local current_ts = current and json_timestamp_ms(current)
        replace = not current_ts or ts >= current_ts
        latest_ms = current_ts
    end
    local latest_text = replace and ts_text or string.format('%d', latest_ms)

    local count = tonumber(old[1])
    if count and old[2] and old[3] and old[4] and old[5] and old[6] then
        local min_text, max_text, first_text, last_text = old[2], old[3], old[5], old[6]
        if value < tonumber(min_text) then min_text = value_text end
        if value > tonumber(max_text) then max_text = value_text end
        if ts < tonumber(first_text) then first_text = ts_text end
        if ts > tonumber(last_text) then last_text = ts_text end
        redis.call('HSET', summary_key,
            fields[1], num(count + 1), fields[2], min_text, fields[3], max_text,
            fields[4], num(tonumber(old[4]) + value), fields[5], first_text, fields[6], last_text,
            fields[7], latest_text)
    else
        -- New, expired or damaged aggregates of this type start over from this reading.
        redis.call('HSET', summary_key,
            fields[1], '1', fields[2], value_text, fields[3], value_text,
            fields[4], value_text, fields[5], ts_text, fields[6], ts_text, fields[7], latest_text)
    end
    if summary_ttl ~= '0' then
        redis.call('PEXPIRE', summary_key, summary_ttl)
    end
    if replace then
        if latest_ttl ~= '0' then
            redis.call('SET', latest_key, json, 'PX', latest_ttl)
        else
            redis.call('SET', latest_key, json)
        end
    end

    -- 6. Tell live subscribers, once per stored reading (a redelivery returned above).
    redis.call('PUBLISH', channel, json)
    return STORED
end
