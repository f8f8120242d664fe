-- The fleet catalogue: one group of shards of the index of sensors (ev-storage; docs/storage.md).
--
-- KEYS[1] is the group, "<prefix>catalogue:{c:<g>}": its hash tag puts the group in one slot, so
-- a call touches one slot of Redis Cluster. A group holds shards (a sensor's shard is
-- crc32(id) % shards, its group shard % 64); shard n's keys, derived here from KEYS[1]:
--   <group>:<n>:ids           sorted set, score 0, member <sensor_id>: ids in byte order
--   <group>:<n>:seen          sorted set, score 0, member <15 digits of ms + OFFSET>:<sensor_id>: the
--                             sensor's newest reading over its types, in (time, id) byte order
--   <group>:<n>:type:<type>   sorted set, score = newest reading ms of that type, member <sensor_id>
--   <group>:<n>:expires:<type>  sorted set, score = expiry (server ms) of the type's history key,
--                             member <sensor_id>
--   <group>:<n>:types         set of the type names the shard has indexed
--   <group>:purge             sorted set, member <n>, score <= the earliest expiry in shard n
--                             (a lower bound: a read finds "nothing expired" with one ZSCORE)
-- Shards stay small (about 100 sensors at 100,000 with the default 1024 shards), so their sorted
-- sets keep Redis's compact listpack encoding (up to 128 members by default): ~20 B a member.
--
-- Invariant after every call: a (sensor, type) is in its shard iff its history key exists (its
-- expiry is not past), with the newest reading time that history ever held; a sensor is in :ids
-- and :seen iff it has at least one such type. Every update is a maximum (ZADD GT), so the state
-- depends on the set of updates only, not on their order or repetition.
--
-- ARGV[1] is the operation:
--   update, then per entry 5 arguments: shard, sensor_id, type, reading ms, expiry ms of the
--     type's history (PEXPIRETIME, returned by the write script). Returns the entries purged.
--   count, prefix, type, seen_min, seen_max ('' where absent), then the group's shards. Returns
--     the number of sensors that match.
--   page, order ('id' ascending or 'seen' descending), prefix, type, seen_min, seen_max, lex bound
--     to end at, want, scan budget per shard, then pairs: shard, lex bound to start from
--     (exclusive in the order's direction). Returns per shard {0 if it has no more matches, else
--     the last member looked at, member, ...}: its first `want` matches in order (the caller
--     merges the shards).
--   stamps, then pairs: shard, sensor_id. Returns per pair {type, newest ms, type, ms, ...}.
-- Reads first purge what has expired, so they never count a sensor whose data is gone. Strings
-- are never compared with < here (Lua's follows the server's locale): merging is the caller's.

local OFFSET = 62135596800000 -- ms from 0001-01-01 to 1970-01-01: every reading time is >= 0 then

local group = KEYS[1]
local purge_key = group .. ':purge'
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)

local function shard(n)
    local base = group .. ':' .. n
    return {n = n, base = base, ids = base .. ':ids', seen = base .. ':seen', types = base .. ':types'}
end

local function type_key(s, sensor_type)
    return s.base .. ':type:' .. sensor_type
end

local function expires_key(s, sensor_type)
    return s.base .. ':expires:' .. sensor_type
end

local function seen_member(ms, id)
    return string.format('%015d', ms + OFFSET) .. ':' .. id
end

-- The sensor's newest reading time over the shard's types, nil when it has none.
local function seen_of(s, id, types)
    local best
    for _, sensor_type in ipairs(types) do
        local score = redis.call('ZSCORE', type_key(s, sensor_type), id)
        if score then
            score = tonumber(score)
            if not best or score > best then
                best = score
            end
        end
    end
    return best
end

local function set_seen(s, id, old, new)
    if old == new then
        return
    end
    if old then
        redis.call('ZREM', s.seen, seen_member(old, id))
    end
    if new then
        redis.call('ZADD', s.seen, 0, seen_member(new, id))
    else
        redis.call('ZREM', s.ids, id)
    end
end

-- Drop the shard's (sensor, type) entries whose history key has expired (Redis: once now > at),
-- when its hint says there may be some; then the hint becomes the earliest expiry left.
local function purge(s)
    local hint = redis.call('ZSCORE', purge_key, s.n)
    if not hint or tonumber(hint) >= now then
        return 0
    end
    local types = redis.call('SMEMBERS', s.types)
    local purged, lowest = 0, nil
    for _, sensor_type in ipairs(types) do
        local key = expires_key(s, sensor_type)
        for _, id in ipairs(redis.call('ZRANGEBYSCORE', key, '-inf', '(' .. now)) do
            local old = seen_of(s, id, types)
            redis.call('ZREM', type_key(s, sensor_type), id)
            redis.call('ZREM', key, id)
            set_seen(s, id, old, seen_of(s, id, types))
            purged = purged + 1
        end
        local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
        if first[2] and (not lowest or tonumber(first[2]) < lowest) then
            lowest = tonumber(first[2])
        end
    end
    if lowest then
        redis.call('ZADD', purge_key, lowest, s.n)
    else
        redis.call('ZREM', purge_key, s.n)
    end
    return purged
end

local op = ARGV[1]

if op == 'update' then
    -- Per shard touched: purge it once; per sensor: its newest time before and after the call,
    -- so that :seen and :ids change once per sensor, however many of its readings come.
    local purged, shards, sensors, order = 0, {}, {}, {}
    for i = 2, #ARGV, 5 do
        local n, id, sensor_type = ARGV[i], ARGV[i + 1], ARGV[i + 2]
        local ms, expires = tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4])
        local c = shards[n]
        if not c then
            local s = shard(n)
            purged = purged + purge(s)
            local types, known = redis.call('SMEMBERS', s.types), {}
            for _, name in ipairs(types) do
                known[name] = true
            end
            c = {s = s, types = types, known = known, lowest = nil}
            shards[n] = c
        end
        -- A history that has expired already (the update came late) is not indexed.
        if expires >= now then
            local s = c.s
            if not c.known[sensor_type] then
                redis.call('SADD', s.types, sensor_type)
                c.known[sensor_type] = true
                c.types[#c.types + 1] = sensor_type
            end
            local sensor = sensors[id]
            if not sensor then
                local old = seen_of(s, id, c.types)
                sensor = {s = s, old = old, new = old}
                sensors[id] = sensor
                order[#order + 1] = id
            end
            redis.call('ZADD', type_key(s, sensor_type), 'GT', ms, id)
            redis.call('ZADD', expires_key(s, sensor_type), 'GT', expires, id)
            if not sensor.new or ms > sensor.new then
                sensor.new = ms
            end
            if not c.lowest or expires < c.lowest then
                c.lowest = expires
            end
        end
    end
    for _, id in ipairs(order) do
        local sensor = sensors[id]
        if not sensor.old then
            redis.call('ZADD', sensor.s.ids, 'NX', 0, id)
        end
        set_seen(sensor.s, id, sensor.old, sensor.new)
    end
    for n, c in pairs(shards) do
        if c.lowest then
            redis.call('ZADD', purge_key, 'LT', c.lowest, n)
        end
    end
    return purged
end

-- Reads purge first every shard of the group whose hint says something may have expired.
for _, n in ipairs(redis.call('ZRANGEBYSCORE', purge_key, '-inf', '(' .. now)) do
    purge(shard(n))
end

if op == 'stamps' then
    local reply = {}
    for i = 2, #ARGV, 2 do
        local s, id = shard(ARGV[i]), ARGV[i + 1]
        local stamps = {}
        for _, sensor_type in ipairs(redis.call('SMEMBERS', s.types)) do
            local score = redis.call('ZSCORE', type_key(s, sensor_type), id)
            if score then
                stamps[#stamps + 1] = sensor_type
                stamps[#stamps + 1] = score
            end
        end
        reply[#reply + 1] = stamps
    end
    return reply
end

-- The filters of count and page.
local first_shard = op == 'page' and 10 or 6
local at = op == 'page' and 3 or 2
local prefix, wanted_type = ARGV[at], ARGV[at + 1]
local seen_min, seen_max = tonumber(ARGV[at + 2]), tonumber(ARGV[at + 3])

local function matches(s, types, id, seen)
    if prefix ~= '' and string.sub(id, 1, #prefix) ~= prefix then
        return false
    end
    if wanted_type ~= '' and not redis.call('ZSCORE', type_key(s, wanted_type), id) then
        return false
    end
    if seen_min or seen_max then
        seen = seen or seen_of(s, id, types)
        if (seen_min and seen < seen_min) or (seen_max and seen > seen_max) then
            return false
        end
    end
    return true
end

local function seen_range()
    local low = seen_min and ('[' .. string.format('%015d', seen_min + OFFSET)) or '-'
    local high = seen_max and ('(' .. string.format('%015d', seen_max + 1 + OFFSET)) or '+'
    return low, high
end

local function prefix_range()
    if prefix == '' then
        return '-', '+'
    end
    return '[' .. prefix, '(' .. prefix .. '\255' -- ids are ASCII: all with the prefix sort before
end

local function seen_in(member)
    return tonumber(string.sub(member, 1, 15)) - OFFSET
end

local function count_shard(s)
    local types = redis.call('SMEMBERS', s.types)
    -- The smallest candidate set that one command can size, then the other filters on each.
    local options = {}
    if prefix ~= '' then
        local low, high = prefix_range()
        options[#options + 1] = {redis.call('ZLEXCOUNT', s.ids, low, high), 'ids', low, high}
    end
    if seen_min or seen_max then
        local low, high = seen_range()
        options[#options + 1] = {redis.call('ZLEXCOUNT', s.seen, low, high), 'seen', low, high}
    end
    if wanted_type ~= '' then
        options[#options + 1] = {redis.call('ZCARD', type_key(s, wanted_type)), 'type'}
    end
    if #options == 0 then
        return redis.call('ZCARD', s.ids)
    end
    local best = options[1]
    for _, option in ipairs(options) do
        if option[1] < best[1] then
            best = option
        end
    end
    if #options == 1 or best[1] == 0 then
        return best[1] -- one filter: the command's own count is exact
    end
    local count, offset, chunk = 0, 0, 1000
    local by_seen = best[2] == 'seen'
    while true do
        local members
        if best[2] == 'type' then
            members = redis.call('ZRANGE', type_key(s, wanted_type), offset, offset + chunk - 1)
        else
            members = redis.call('ZRANGEBYLEX', by_seen and s.seen or s.ids, best[3], best[4],
                'LIMIT', offset, chunk)
        end
        for _, member in ipairs(members) do
            local id = by_seen and string.sub(member, 17) or member
            if matches(s, types, id, by_seen and seen_in(member) or nil) then
                count = count + 1
            end
        end
        if #members < chunk then
            return count
        end
        offset = offset + chunk
    end
end

if op == 'count' then
    local total = 0
    for i = first_shard, #ARGV do
        total = total + count_shard(shard(ARGV[i]))
    end
    return total
end

if op ~= 'page' then
    return redis.error_reply('ERR unknown catalogue operation')
end

local by_seen = ARGV[2] == 'seen'
local to, want, budget = ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9])

-- Up to `want` matching members of one shard after `from`, in the order: {0 when the shard has
-- no more, else the last member looked at, match, ...}. The caller merges the shards (in byte order, which Lua's <
-- would not guarantee).
-- Whether a member may fail a filter (otherwise each member scanned is a match).
local filtered = wanted_type ~= '' or ((seen_min or seen_max) and not by_seen)
    or (prefix ~= '' and by_seen)

local suffix = by_seen and ':seen' or ':ids'

local function scan(n, from)
    -- The common case (no filter) makes one key name and one call per shard.
    local s = filtered and shard(n) or nil
    local types = (seen_min or seen_max) and not by_seen and redis.call('SMEMBERS', s.types) or {}
    local reply, scanned, last = {0}, 0, ''
    local key = group .. ':' .. n .. suffix
    while true do
        -- Without filters exactly what is missing (+1 tells "no more" from "more"), else more.
        local missing = want - #reply + 1
        local chunk = math.min(budget - scanned, filtered and math.max(2 * missing, 16) or missing + 1)
        local members
        if by_seen then
            members = redis.call('ZREVRANGEBYLEX', key, from, to, 'LIMIT', 0, chunk)
        else
            members = redis.call('ZRANGEBYLEX', key, from, to, 'LIMIT', 0, chunk)
        end
        for _, member in ipairs(members) do
            scanned = scanned + 1
            last = member
            if not filtered
                or matches(s, types, by_seen and string.sub(member, 17) or member,
                    by_seen and seen_in(member) or nil) then
                reply[#reply + 1] = member
                if #reply - 1 == want then
                    reply[1] = last
                    return reply
                end
            end
        end
        if #members < chunk then
            return reply -- exhausted: 0
        end
        if scanned >= budget then
            reply[1] = last
            return reply
        end
        from = '(' .. last
    end
end

local replies = {}
for i = first_shard, #ARGV, 2 do
    replies[#replies + 1] = scan(ARGV[i], ARGV[i + 1])
end
return replies
