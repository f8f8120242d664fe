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
--     to end at, want, scan budget per shard, lex bound to start from (exclusive in the order's
--     direction), collation ('auto' or 'bytes'), the group's number, the number of shards.
--     Merges the group's shards here and returns {0 if the group has no more matches, else its
--     frontier, member, ...}: its first `want` matches in order, complete up to the frontier
--     (the caller merges the 64 groups).
--   stamps, then pairs: shard, sensor_id. Returns per pair {type, newest ms, type, ms, ...}.
-- Reads first purge what has expired, so they never count a sensor whose data is gone. Strings
-- are compared in byte order (Lua's < follows the server's locale: used only where it is
-- byte order, see `lt` below).

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
local first_shard = 6 -- count's shards
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

-- Of `ids` (members of the walked set, `walked`), how many pass the other filters in `need`: the
-- prefix (a string test), the type and the last-seen range (one ZMSCORE per chunk and set, not
-- a call per id).
local function count_matches(s, ids, need, walked, seens)
    local ok = {}
    local by_prefix = need.ids and walked ~= 'ids'
    for k, id in ipairs(ids) do
        ok[k] = not by_prefix or string.sub(id, 1, #prefix) == prefix
    end
    if need.type and walked ~= 'type' then
        local scores = redis.call('ZMSCORE', type_key(s, wanted_type), unpack(ids))
        for k = 1, #ids do
            ok[k] = ok[k] and scores[k] ~= false
        end
    end
    local by_seen = need.seen
    if by_seen and walked ~= 'seen' then
        local newest = {}
        for _, sensor_type in ipairs(redis.call('SMEMBERS', s.types)) do
            local scores = redis.call('ZMSCORE', type_key(s, sensor_type), unpack(ids))
            for k = 1, #ids do
                local score = scores[k] and tonumber(scores[k])
                if score and (not newest[k] or score > newest[k]) then
                    newest[k] = score
                end
            end
        end
        seens = newest
    end
    local count = 0
    for k = 1, #ids do
        local seen = seens and seens[k]
        if ok[k] and (not by_seen or (seen and not (seen_min and seen < seen_min)
                and not (seen_max and seen > seen_max))) then
            count = count + 1
        end
    end
    return count
end

local function count_shard(s)
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
    if #options > 1 then
        -- A filter that every sensor of the shard passes is implied: left out (a prefix that all
        -- ids share, a type that every sensor has), so that broad combined filters cost one
        -- command each rather than a walk.
        local total, needed = redis.call('ZCARD', s.ids), {}
        for _, option in ipairs(options) do
            if option[1] < total then
                needed[#needed + 1] = option
            end
        end
        if #needed == 0 then
            return total
        end
        options = needed
    end
    local best, need = options[1], {}
    for _, option in ipairs(options) do
        need[option[2]] = true
        if option[1] < best[1] then
            best = option
        end
    end
    if #options == 1 or best[1] == 0 then
        return best[1] -- one filter: the command's own count is exact
    end
    local count, offset, chunk = 0, 0, 500
    local by_seen = best[2] == 'seen'
    while true do
        local members
        if best[2] == 'type' then
            members = redis.call('ZRANGE', type_key(s, wanted_type), offset, offset + chunk - 1)
        else
            members = redis.call('ZRANGEBYLEX', by_seen and s.seen or s.ids, best[3], best[4],
                'LIMIT', offset, chunk)
        end
        if #members > 0 then
            local ids, seens = members, nil
            if by_seen then
                ids, seens = {}, {}
                for k, member in ipairs(members) do
                    ids[k], seens[k] = string.sub(member, 17), seen_in(member)
                end
            end
            count = count + count_matches(s, ids, need, best[2], seens)
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
local to, want, budget, start = ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9]), ARGV[10]
local force_bytes = ARGV[11] == 'bytes'

-- Byte order, whatever the server's locale: Lua's < on strings is strcoll, which is byte order
-- only in the C and POSIX locales (C.UTF-8 too); probed here on what ids and members hold, and
-- otherwise strings are compared byte by byte (about 20 times slower, still exact).
local byte = string.byte
local function bytewise_lt(a, b)
    local n = #a < #b and #a or #b
    for i = 1, n do
        local x, y = byte(a, i), byte(b, i)
        if x ~= y then
            return x < y
        end
    end
    return #a < #b
end
local function locale_is_bytewise()
    local alphabet = '-.0123456789:ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz'
    for i = 1, #alphabet - 1 do
        if not (string.sub(alphabet, i, i) < string.sub(alphabet, i + 1, i + 1)) then
            return false
        end
    end
    -- Locales that skip punctuation or fold case at their first level fail one of these.
    return ('a-b' < 'a0') and ('a_b' < 'ab') and ('a.c' < 'ab') and ('B' < 'a') and ('Ab' < 'a')
        and ('a' < 'a-') and ('00:a' < '0:z') and not ('a' < 'a')
end
local lt = (not force_bytes and locale_is_bytewise()) and function(a, b) return a < b end
    or bytewise_lt
-- before(a, b): a comes first in the page's order (ids ascending, seen members descending).
local before = by_seen and function(a, b) return lt(b, a) end or lt

-- Whether a member may fail a filter (otherwise each member scanned is a match).
local filtered = wanted_type ~= '' or ((seen_min or seen_max) and not by_seen)
    or (prefix ~= '' and by_seen)
local suffix = by_seen and ':seen' or ':ids'

-- Up to `count` more matches of one shard after its position, into its buffer; `done` once the
-- shard has no more, else `blocked` when it stopped at its scan budget without a match (its
-- position is then the last member it looked at).
local function fill(st, count)
    local range = by_seen and 'ZREVRANGEBYLEX' or 'ZRANGEBYLEX'
    if not filtered then
        -- Every member is a match: the buffer is the reply itself.
        local members = redis.call(range, st.key, st.from, to, 'LIMIT', 0, count)
        st.buf, st.i, st.done = members, 1, #members < count
        if #members > 0 then
            st.from = '(' .. members[#members]
        end
        return
    end
    local s = shard(st.n)
    local types = st.types
    if not types then
        types = (seen_min or seen_max) and not by_seen and redis.call('SMEMBERS', s.types) or {}
        st.types = types
    end
    local buf, found = {}, 0
    st.buf, st.i = buf, 1
    while true do
        local chunk = math.min(budget - st.scanned, math.max(2 * (count - found), 16))
        if chunk <= 0 then
            st.blocked = true
            return
        end
        local members = redis.call(range, st.key, st.from, to, 'LIMIT', 0, chunk)
        for _, member in ipairs(members) do
            st.scanned = st.scanned + 1
            st.last = member
            if matches(s, types, by_seen and string.sub(member, 17) or member,
                    by_seen and seen_in(member) or nil) then
                found = found + 1
                buf[found] = member
                if found == count then
                    st.from = '(' .. member
                    return
                end
            end
        end
        if #members < chunk then
            st.done = true
            return
        end
        st.from = '(' .. st.last
    end
end

-- The head a shard offers to the merge: its next buffered match, else (refilled) its next, else
-- its scan position when blocked; nil when it has no more.
local function head(st)
    if st.i > #st.buf then
        if st.done or st.blocked then
            return st.blocked and st.last or nil, st.blocked
        end
        st.fetch = 2 * st.fetch
        fill(st, st.fetch)
        if st.i > #st.buf then
            return head(st)
        end
    end
    return st.buf[st.i], false
end

-- The group's first `want` matches after `start` in the order, merged over its shards: an
-- ordered list of the shards' heads (binary insertion), the first taken each time.
local heads = {}
local function insert(st)
    local member, blocked = head(st)
    if not member then
        return
    end
    st.head, st.at = member, blocked
    local low, high = 1, #heads
    while low <= high do
        local mid = math.floor((low + high) / 2)
        if before(member, heads[mid].head) then
            high = mid - 1
        else
            low = mid + 1
        end
    end
    table.insert(heads, low, st)
end

-- The group's shards: n = g, g + 64, ... below the number of shards.
local g, total = tonumber(ARGV[12]), tonumber(ARGV[13])
local first_fetch = math.ceil(2 * want / math.ceil(total / 64)) + 1
for n = g, total - 1, 64 do
    local st = {n = n, key = group .. ':' .. n .. suffix, from = start, scanned = 0,
        fetch = first_fetch}
    fill(st, first_fetch)
    insert(st)
end

-- {0 when the group has no more matches, else its frontier: every match of the group up to it
-- (in the order) is in the reply; then the matches}
local reply = {0}
while #heads > 0 do
    local st = table.remove(heads, 1)
    if st.at then
        reply[1] = st.head -- a shard stopped here: nothing after it is known to be complete
        return reply
    end
    reply[#reply + 1] = st.head
    if #reply - 1 == want then
        reply[1] = st.head
        return reply
    end
    st.i = st.i + 1
    insert(st)
end
return reply
