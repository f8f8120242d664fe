-- The fleet catalogue: one shard of the index of sensors (ev-storage; see docs/storage.md).
--
-- A shard's keys share the hash tag of KEYS[1] ("<prefix>catalogue:{c:<n>}"), so on Redis Cluster
-- a call touches one slot; the script derives them from KEYS[1]:
--   <base>:ids            sorted set, score 0, member <sensor_id>: ids in byte order (prefix, sort)
--   <base>:seen           sorted set, score 0, member <15 digits of ms + OFFSET>:<sensor_id>: the
--                         sensor's newest reading over its types, in (time, id) byte order
--   <base>:type:<type>    sorted set, score = newest reading ms of that type, member <sensor_id>
--   <base>:expires        sorted set, score = expiry (server ms) of the type's history key,
--                         member <type>:<sensor_id>
--   <base>:types          set of the type names this shard has indexed
-- Invariant after every call: a (sensor, type) is in the shard iff its history key exists (its
-- expiry is in the future), with the newest reading time that history ever held; a sensor is in
-- :ids and :seen iff it has at least one such type. Every update is a maximum (ZADD GT), so the
-- state depends on the set of updates only, not on their order or repetition.
--
-- ARGV[1] is the operation:
--   update, then per entry 4 arguments: sensor_id, type, reading ms, expiry ms of the type's
--     history (PEXPIRETIME, returned by the write script). Returns the number of entries purged.
--   count, prefix, type, seen_min, seen_max ('' where absent). Returns the number of sensors.
--   page, order ('id' ascending or 'seen' descending), prefix, type, seen_min, seen_max,
--     lex bound to start from (exclusive bound in the order's direction), lex bound to end at,
--     want, scan budget. Returns {exhausted 0/1, last member scanned or '', item, item, ...},
--     item = {member, {type, ms, type, ms, ...}}.
-- Reads first purge every expired entry of the shard, so they never count a sensor whose data is
-- gone. Strings are compared as bytes (string.sub / ==), never with < (locale-dependent in Lua).

local OFFSET = 62135596800000 -- ms from 0001-01-01 to 1970-01-01: every reading time is >= 0 then
local PURGE_CHUNK = 500

local base = KEYS[1]
local ids_key, seen_key = base .. ':ids', base .. ':seen'
local expires_key, types_key = base .. ':expires', base .. ':types'
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)

local function type_key(sensor_type)
    return base .. ':type:' .. sensor_type
end

local function seen_member(ms, id)
    return string.format('%015d', ms + OFFSET) .. ':' .. id
end

-- The sensor's newest reading time over the shard's types, nil when it has none.
local function seen_of(id, types)
    local best
    for _, sensor_type in ipairs(types) do
        local score = redis.call('ZSCORE', type_key(sensor_type), id)
        if score then
            score = tonumber(score)
            if not best or score > best then
                best = score
            end
        end
    end
    return best
end

local function set_seen(id, old, new)
    if old == new then
        return
    end
    if old then
        redis.call('ZREM', seen_key, seen_member(old, id))
    end
    if new then
        redis.call('ZADD', seen_key, 0, seen_member(new, id))
    else
        redis.call('ZREM', ids_key, id)
    end
end

-- Drop the (sensor, type) entries whose history key has expired (Redis: expired once now > at).
local function purge(limit)
    local dead = redis.call('ZRANGEBYSCORE', expires_key, '-inf', '(' .. now, 'LIMIT', 0, limit)
    if #dead == 0 then
        return 0
    end
    local types = redis.call('SMEMBERS', types_key)
    for _, member in ipairs(dead) do
        local sensor_type, id = string.match(member, '^([^:]+):(.+)$')
        local old = seen_of(id, types)
        redis.call('ZREM', type_key(sensor_type), id)
        redis.call('ZREM', expires_key, member)
        set_seen(id, old, seen_of(id, types))
    end
    return #dead
end

local function purge_all()
    local total = 0
    repeat
        local n = purge(PURGE_CHUNK)
        total = total + n
    until n < PURGE_CHUNK
    return total
end

local op = ARGV[1]

if op == 'update' then
    local purged = purge(PURGE_CHUNK)
    local types = redis.call('SMEMBERS', types_key)
    local known = {}
    for _, sensor_type in ipairs(types) do
        known[sensor_type] = true
    end
    for i = 2, #ARGV, 4 do
        local id, sensor_type = ARGV[i], ARGV[i + 1]
        local ms, expires = tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
        -- A history that has expired already (the update came late) is not indexed.
        if expires >= now then
            if not known[sensor_type] then
                redis.call('SADD', types_key, sensor_type)
                known[sensor_type] = true
                types[#types + 1] = sensor_type
            end
            local old = seen_of(id, types)
            redis.call('ZADD', type_key(sensor_type), 'GT', ms, id)
            redis.call('ZADD', expires_key, 'GT', expires, sensor_type .. ':' .. id)
            if not old then
                redis.call('ZADD', ids_key, 'NX', 0, id)
            end
            set_seen(id, old, (old and old > ms) and old or ms)
        end
    end
    return purged
end

-- Reads: filters of count and page.
local prefix, wanted_type = ARGV[2], ARGV[3]
local seen_min, seen_max = tonumber(ARGV[4]), tonumber(ARGV[5])
if op == 'page' then
    prefix, wanted_type = ARGV[3], ARGV[4]
    seen_min, seen_max = tonumber(ARGV[5]), tonumber(ARGV[6])
end
purge_all()
local types = redis.call('SMEMBERS', types_key)

local function matches(id, seen)
    if prefix ~= '' and string.sub(id, 1, #prefix) ~= prefix then
        return false
    end
    if wanted_type ~= '' and not redis.call('ZSCORE', type_key(wanted_type), id) then
        return false
    end
    if seen_min or seen_max then
        seen = seen or seen_of(id, types)
        if (seen_min and seen < seen_min) or (seen_max and seen > seen_max) then
            return false
        end
    end
    return true
end

-- Lex range of :seen for the time filters, and of :ids for the prefix.
local function seen_range()
    local low = seen_min and ('[' .. string.format('%015d', seen_min + OFFSET)) or '-'
    local high = seen_max and ('(' .. string.format('%015d', seen_max + 1 + OFFSET)) or '+'
    return low, high
end

local function prefix_range()
    if prefix == '' then
        return '-', '+'
    end
    -- Every id with the prefix sorts before prefix .. '\255' (ids are ASCII).
    return '[' .. prefix, '(' .. prefix .. '\255'
end

local function id_of(member, by_seen)
    return by_seen and string.sub(member, 17) or member
end

local function seen_in(member)
    return tonumber(string.sub(member, 1, 15)) - OFFSET
end

if op == 'count' then
    if wanted_type ~= '' and redis.call('SISMEMBER', types_key, wanted_type) == 0 then
        return 0
    end
    -- The smallest candidate set that one command can size, then the other filters on each.
    local candidates = {{redis.call('ZCARD', ids_key), 'ids', prefix_range()}}
    local filters = 0
    if prefix ~= '' then
        filters = filters + 1
        local low, high = prefix_range()
        candidates[1] = {redis.call('ZLEXCOUNT', ids_key, low, high), 'ids', low, high}
    end
    if seen_min or seen_max then
        filters = filters + 1
        local low, high = seen_range()
        candidates[#candidates + 1] = {redis.call('ZLEXCOUNT', seen_key, low, high), 'seen', low, high}
    end
    if wanted_type ~= '' then
        filters = filters + 1
        candidates[#candidates + 1] = {redis.call('ZCARD', type_key(wanted_type)), 'type'}
    end
    local best = candidates[1]
    for _, candidate in ipairs(candidates) do
        if candidate[1] < best[1] then
            best = candidate
        end
    end
    if filters <= 1 then
        return best[1] -- one filter (or none): the command's own count is exact
    end
    local count, offset, chunk = 0, 0, 1000
    while true do
        local members
        if best[2] == 'type' then
            members = redis.call('ZRANGE', type_key(wanted_type), offset, offset + chunk - 1)
        else
            local key = best[2] == 'ids' and ids_key or seen_key
            members = redis.call('ZRANGEBYLEX', key, best[3], best[4], 'LIMIT', offset, chunk)
        end
        for _, member in ipairs(members) do
            local by_seen = best[2] == 'seen'
            if matches(id_of(member, by_seen), by_seen and seen_in(member) or nil) then
                count = count + 1
            end
        end
        if #members < chunk then
            return count
        end
        offset = offset + chunk
    end
end

if op == 'page' then
    local by_seen = ARGV[2] == 'seen'
    local from, to = ARGV[7], ARGV[8]
    local want, budget = tonumber(ARGV[9]), tonumber(ARGV[10])
    local items, scanned, last = {}, 0, ''
    while true do
        local chunk = math.min(budget - scanned, math.max(2 * (want - #items), 16))
        local members
        if by_seen then
            members = redis.call('ZREVRANGEBYLEX', seen_key, from, to, 'LIMIT', 0, chunk)
        else
            members = redis.call('ZRANGEBYLEX', ids_key, from, to, 'LIMIT', 0, chunk)
        end
        for _, member in ipairs(members) do
            scanned = scanned + 1
            last = member
            local id = id_of(member, by_seen)
            if matches(id, by_seen and seen_in(member) or nil) then
                local stamps = {}
                for _, sensor_type in ipairs(types) do
                    local score = redis.call('ZSCORE', type_key(sensor_type), id)
                    if score then
                        stamps[#stamps + 1] = sensor_type
                        stamps[#stamps + 1] = score
                    end
                end
                items[#items + 1] = {member, stamps}
                if #items == want then
                    -- Not known to be exhausted: the caller continues after `last` if it must.
                    return {0, last, unpack(items)}
                end
            end
        end
        if #members < chunk then
            return {1, last, unpack(items)}
        end
        if scanned >= budget then
            return {0, last, unpack(items)}
        end
        from = '(' .. last
    end
end

return redis.error_reply('ERR unknown catalogue operation')
