-- Alarm rules, evaluated in the write script on the readings it stored, in measurement time
-- (ev-storage; docs/alarms.md, "Semantics"; ev_schemas.alarm_episodes is the reference).
--
-- Rules that apply to this sensor come in ARGV after the fixed arguments, 9 per rule: id,
-- sensor type, above, below, clear below, clear above (the effective thresholds), for (ms),
-- readings, severity; '' where a rule has none. With rules, the last two keys are the sensor's
-- alarm hash and its episode index (same hash tag as its other keys). The hash:
--   "s|<type>|<rule>"           the rule's state after the newest reading it evaluated:
--                               "<ms>:<run start>:<run count>:<began>:<raised>:<since>" ('' for
--                               none; began and raised: the active episode's; since: a retention
--                               before the rule's first reading: it judges nothing older)
--   "e|<type>|<rule>|<began>"   an episode: "<raised ms>:<cleared ms>:<raised at>:<cleared at>:
--                               <severity>" (cleared '' while active; "at": processing time,
--                               server ms, when this store first raised or cleared it)
--   "a|<type>|<rule>|<began>"   the episode's acknowledgement (alarm_reader.py)
-- The episode index, a sorted set: member "<type>|<rule>|<began>", score began: finds the
-- episode a late reading falls in, and those to clean up, without listing the hash.
-- A reading newer than the rule's newest evaluated one is walked from the saved state. An older
-- one (late, out of order) re-walks the stored history from a restart point before it: inside
-- an active episode, the late reading itself (the state is that episode); in an episode's run
-- before it was raised, the episode's first reading; else the reading after the last one
-- before it that neither triggers nor lies in an episode (inactive, no run; at most one hold
-- back). The re-walk stops at the first reading after this call's readings where it and the
-- old evaluation are both inactive with no run (from there on they agree), and the episodes it
-- covers are replaced by its own. So the episodes depend on the set of stored readings only,
-- never on their order (within the retention window: see docs/alarms.md).
-- Each transition, as "<kind>|<type>|<rule>|<began>|<raised>|<cleared>|<severity>|<at>|<raised
-- at>|<cleared at>" (kind: raised, cleared, revised: a past episode's times changed, retracted: a
-- late reading showed it never happened; <at>: now, the other two: the episode's processing
-- times), is published on the alarm channel and kept pending in the hash (field "pending", one
-- per line) until the writer has indexed it. After the outcomes the script returns the number
-- of new transitions, then every pending one (the new ones last).

local rules_by_type = {}
for r = 0, (rule_count or 0) - 1 do
    local a = 7 + r * RULE_ARGS
    local rule = {
        id = ARGV[a + 1], sensor_type = ARGV[a + 2],
        above = tonumber(ARGV[a + 3]), below = tonumber(ARGV[a + 4]),
        clear_below = tonumber(ARGV[a + 5]), clear_above = tonumber(ARGV[a + 6]),
        for_ms = tonumber(ARGV[a + 7]), readings = tonumber(ARGV[a + 8]) or 1,
        severity = ARGV[a + 9],
    }
    local list = rules_by_type[rule.sensor_type]
    if not list then
        list = {}
        rules_by_type[rule.sensor_type] = list
    end
    list[#list + 1] = rule
end
local alarm_key = alarm_keys == 2 and KEYS[#KEYS - 1] or nil
local episodes_key = alarm_keys == 2 and KEYS[#KEYS] or nil
local CLEANUP_BATCH = 32 -- episodes looked at per call for retention (bounded work)

local function triggers(rule, value)
    return (rule.above ~= nil and value > rule.above) or (rule.below ~= nil and value < rule.below)
end

local function clears(rule, value)
    return (rule.above == nil or value <= rule.clear_below)
        and (rule.below == nil or value >= rule.clear_above)
end

-- One reading through the rule's state machine ({run_start, run_count, began, raised}); `out`
-- gets {began, raised, cleared or nil} for each episode raised or cleared.
local function step(rule, st, ms, value, out)
    if st.began then
        if clears(rule, value) then
            out[#out + 1] = {st.began, st.raised, ms}
            st.began, st.raised = nil, nil
        end
        return
    end
    if not triggers(rule, value) then
        st.run_start, st.run_count = nil, 0
        return
    end
    st.run_start = st.run_start or ms
    st.run_count = st.run_count + 1
    local done
    if rule.for_ms then
        done = ms - st.run_start >= rule.for_ms
    else
        done = st.run_count >= rule.readings
    end
    if done then
        st.began, st.raised = st.run_start, ms
        st.run_start, st.run_count = nil, 0
        out[#out + 1] = {st.began, st.raised, nil}
    end
end

local function opt(text)
    return text ~= '' and tonumber(text) or nil
end

local function parse_state(text)
    local ms, run_start, run_count, began, raised, since =
        string.match(text, '^(%-?%d+):(%-?%d*):(%d+):(%-?%d*):(%-?%d*):(%-?%d+)$')
    if not ms then
        error('damaged alarm state ' .. text)
    end
    return tonumber(ms), {run_start = opt(run_start), run_count = tonumber(run_count),
        began = opt(began), raised = opt(raised)}, tonumber(since)
end

local function fmt(n)
    return n and string.format('%d', n) or ''
end

local function state_text(ms, st, since)
    return fmt(ms) .. ':' .. fmt(st.run_start) .. ':' .. string.format('%d', st.run_count) .. ':'
        .. fmt(st.began) .. ':' .. fmt(st.raised) .. ':' .. fmt(since)
end

-- An iterator over the stored readings (ms, value) of a history with from_ms <= ms, in time
-- order, reading 16 buckets at a time (a caller that stops early reads no more).
local function history_from(history_key, from_ms)
    local meta = redis.call('HGET', history_key, META)
    if not meta then
        return function() return nil end
    end
    local bucket_ms, newest, lowest = string.match(meta, '^(%d+):(%-?%d+):(%-?%d+)$')
    bucket_ms, newest = tonumber(bucket_ms), tonumber(newest)
    -- From the history's first bucket at the earliest: from_ms may be "the beginning".
    local n = math.max(math.floor(from_ms / bucket_ms), tonumber(lowest))
    local last = math.floor(newest / bucket_ms)
    local times, values, i = {}, {}, 1
    return function()
        while i > #times do
            if n > last then
                return nil
            end
            times, values, i = {}, {}, 1
            local fields = {}
            for m = n, math.min(n + 15, last) do
                fields[#fields + 1] = string.format('%d', m)
            end
            local got = redis.call('HMGET', history_key, unpack(fields))
            for j = 1, #fields do
                local data = got[j]
                if data then
                    local base = tonumber(fields[j]) * bucket_ms
                    for at = 1, #data, RECORD do
                        local offset, value = struct.unpack('>I4d', data, at)
                        if base + offset >= from_ms then
                            times[#times + 1], values[#values + 1] = base + offset, value
                        end
                    end
                end
            end
            n = n + #fields
        end
        i = i + 1
        return times[i - 1], values[i - 1]
    end
end

-- The newest stored reading before `before` (exclusive) and after `floor` (exclusive; nil: no
-- floor) that does not trigger the rule: its ms, or floor when every reading in between
-- triggers (nil floor: nil, the history's start).
local function last_calm_before(history_key, rule, before, floor)
    local meta = redis.call('HGET', history_key, META)
    if not meta then
        return floor
    end
    local bucket_ms, _, first = string.match(meta, '^(%d+):(%-?%d+):(%-?%d+)$')
    bucket_ms, first = tonumber(bucket_ms), tonumber(first)
    local n = math.floor((before - 1) / bucket_ms)
    local stop = floor and math.max(first, math.floor(floor / bucket_ms)) or first
    while n >= stop do
        local data = redis.call('HGET', history_key, string.format('%d', n))
        if data then
            for at = #data - RECORD + 1, 1, -RECORD do
                local offset, value = struct.unpack('>I4d', data, at)
                local ms = n * bucket_ms + offset
                if ms < before then
                    if floor and ms <= floor then
                        return floor
                    end
                    if not triggers(rule, value) then
                        return ms
                    end
                end
            end
        end
        n = n - 1
    end
    return floor
end

-- A stored episode: {raised, cleared, raised_at, cleared_at, severity}.
local function parse_episode(text)
    local raised, cleared, raised_at, cleared_at, severity =
        string.match(text, '^(%-?%d+):(%-?%d*):(%d*):(%d*):(%a*)$')
    if not raised then
        error('damaged alarm episode ' .. text)
    end
    return {raised = tonumber(raised), cleared = opt(cleared), raised_at = raised_at,
        cleared_at = cleared_at, severity = severity}
end

-- The stored episodes of one (type, rule) that began in [lo, hi], from the episode index:
-- began -> episode (nil: none).
local function stored_episodes(prefix, lo, hi)
    local found = {}
    local members = redis.call('ZRANGEBYSCORE', episodes_key, fmt(lo), hi)
    local fields, begans = {}, {}
    for _, member in ipairs(members) do
        if string.sub(member, 1, #prefix) == prefix then
            fields[#fields + 1] = 'e|' .. member
            begans[#begans + 1] = tonumber(string.sub(member, #prefix + 1))
        end
    end
    if #fields > 0 then
        local got = redis.call('HMGET', alarm_key, unpack(fields))
        for j = 1, #fields do
            if got[j] then
                found[begans[j]] = parse_episode(got[j])
            end
        end
    end
    return found
end

-- The newest stored episode of one (type, rule) that began at or before `ms`: began, episode.
local function episode_before(prefix, ms)
    local offset = 0
    while true do
        local members = redis.call('ZREVRANGEBYSCORE', episodes_key, fmt(ms), '-inf',
            'LIMIT', offset, 64)
        for _, member in ipairs(members) do
            if string.sub(member, 1, #prefix) == prefix then
                local began = tonumber(string.sub(member, #prefix + 1))
                local text = redis.call('HGET', alarm_key, 'e|' .. member)
                if text then
                    return began, parse_episode(text)
                end
            end
        end
        if #members < 64 then
            return nil, nil
        end
        offset = offset + 64
    end
end

local function episode_text(e)
    return fmt(e.raised) .. ':' .. fmt(e.cleared) .. ':' .. e.raised_at .. ':' .. e.cleared_at
        .. ':' .. e.severity
end

local function transition(out, kind, sensor_type, rule, began, e, at)
    out[#out + 1] = kind .. '|' .. sensor_type .. '|' .. rule.id .. '|' .. fmt(began) .. '|'
        .. fmt(e.raised) .. '|' .. fmt(e.cleared) .. '|' .. e.severity .. '|' .. at
        .. '|' .. e.raised_at .. '|' .. (e.cleared_at or '')
end

-- Record a fresh or changed episode (the hash and the index).
local function put_episode(updates, prefix, began, e)
    updates[#updates + 1], updates[#updates + 2] = 'e|' .. prefix .. fmt(began), episode_text(e)
    redis.call('ZADD', episodes_key, began, prefix .. fmt(began))
end

-- Forget an episode: its fields (acknowledgement included) and its index entry.
local function drop_episode(deletes, prefix, began)
    deletes[#deletes + 1] = 'e|' .. prefix .. fmt(began)
    deletes[#deletes + 1] = 'a|' .. prefix .. fmt(began)
    redis.call('ZREM', episodes_key, prefix .. fmt(began))
end

-- Walk this call's readings (in order, all newer than the state): the in-order case.
local function walk_new(rule, st, got, order, sensor_type, prefix, updates, out, at)
    local walked, newest = {}, nil
    for _, j in ipairs(order) do
        step(rule, st, got.ms[j], got.values[j], walked)
        newest = got.ms[j]
    end
    for _, w in ipairs(walked) do
        local e
        if w[3] == nil then
            e = {raised = w[2], raised_at = at, cleared_at = '', severity = rule.severity}
            put_episode(updates, prefix, w[1], e)
            transition(out, 'raised', sensor_type, rule, w[1], e, at)
        else
            -- Raised by an earlier call (stored) or by this one (not yet).
            local before = redis.call('HGET', alarm_key, 'e|' .. prefix .. fmt(w[1]))
            e = before and parse_episode(before) or {raised = w[2], raised_at = at,
                severity = rule.severity}
            e.cleared, e.cleared_at = w[3], at
            put_episode(updates, prefix, w[1], e)
            transition(out, 'cleared', sensor_type, rule, w[1], e, at)
        end
    end
    return newest
end

-- A late reading at `from` (the call's oldest of the type; `last_new` its newest): re-walk the
-- stored history from a restart point until it agrees with the old evaluation again, and
-- replace the episodes it covers. Returns the newest reading walked if it reached the end
-- (then `st` is the new state), or nil if it stopped early (the saved state stands).
local function walk_late(rule, st, since, got, from, last_new, sensor_type, prefix, updates,
                         deletes, out, at)
    local cover_began, cover = episode_before(prefix, from)
    local lo, reconcile_from
    st.run_start, st.run_count, st.began, st.raised = nil, 0, nil, nil
    if cover and (cover.cleared == nil or cover.cleared > from) then
        if from > cover.raised then
            -- Inside the active part: the state just before `from` is that episode.
            st.began, st.raised = cover_began, cover.raised
            lo = from
        else
            lo = cover_began -- in its run before the raise: from the run's first reading
        end
        reconcile_from = cover_began
    else
        local floor = cover and cover.cleared or nil
        if since and (not floor or floor < since - 1) then
            floor = since - 1 -- the rule judges nothing before its first reading
        end
        local reset = last_calm_before(got.key, rule, from, floor)
        lo = reset and reset + 1 or (since or from)
        reconcile_from = lo
    end
    -- The old episodes from the restart on (disjoint, by began), to know where the old
    -- evaluation was active, and to replace.
    local old = stored_episodes(prefix, reconcile_from, '+inf')
    local old_list = {}
    for began in pairs(old) do
        old_list[#old_list + 1] = began
    end
    table.sort(old_list)
    local function old_active_after(ms) -- was the old evaluation in an episode after `ms`?
        for k = #old_list, 1, -1 do
            local began = old_list[k]
            if began <= ms then
                local e = old[began]
                return e.cleared == nil or e.cleared > ms
            end
        end
        return false
    end
    local walked, newest, stopped = {}, nil, nil
    local next_reading = history_from(got.key, lo)
    while true do
        local ms, value = next_reading()
        if not ms then
            break
        end
        step(rule, st, ms, value, walked)
        newest = ms
        if ms > last_new and not st.began and not st.run_start and not old_active_after(ms) then
            stopped = ms -- both inactive, no run: from here on they agree
            break
        end
    end
    local fresh = {}
    for _, w in ipairs(walked) do
        fresh[w[1]] = {raised = w[2], cleared = w[3]}
    end
    if st.began and not fresh[st.began] then -- still active at the end (a carried episode)
        fresh[st.began] = {raised = st.raised}
    end
    local upto = stopped or math.huge
    for began, e in pairs(fresh) do
        local was = old[began] or (began == cover_began and cover or nil)
        e.severity = was and was.severity or rule.severity
        e.raised_at = was and was.raised_at or at
        e.cleared_at = (was and was.cleared == e.cleared and was.cleared_at)
            or (e.cleared and at or '')
        local kinds = {}
        if not was then
            kinds = e.cleared and {'raised', 'cleared'} or {'raised'}
        else
            if was.raised ~= e.raised or (was.cleared and was.cleared ~= e.cleared) then
                kinds[#kinds + 1] = 'revised'
            end
            if was.cleared == nil and e.cleared then
                kinds[#kinds + 1] = 'cleared'
            end
        end
        if #kinds > 0 then
            put_episode(updates, prefix, began, e)
            for _, kind in ipairs(kinds) do
                transition(out, kind, sensor_type, rule, began, e, at)
            end
        end
    end
    for began, e in pairs(old) do
        if began <= upto and not fresh[began] then
            drop_episode(deletes, prefix, began)
            transition(out, 'retracted', sensor_type, rule, began, e, at)
        end
    end
    if stopped then
        return nil
    end
    return newest
end

-- Episodes of the types this call evaluated that cleared a retention before their type's
-- newest reading go, a few per call (bounded work), with their acknowledgements.
local function clean_up(newest_of, deletes)
    local lowest
    for _, newest in pairs(newest_of) do
        lowest = (not lowest or newest < lowest) and newest or lowest
    end
    if not lowest then
        return
    end
    local members = redis.call('ZRANGEBYSCORE', episodes_key, '-inf', fmt(lowest - retention),
        'LIMIT', 0, CLEANUP_BATCH)
    for _, member in ipairs(members) do
        local sensor_type = string.match(member, '^([^|]+)|')
        local newest = newest_of[sensor_type]
        local text = redis.call('HGET', alarm_key, 'e|' .. member)
        local e = text and parse_episode(text)
        if not e then
            redis.call('ZREM', episodes_key, member) -- its fields are gone already
        elseif newest and e.cleared and e.cleared < newest - retention then
            deletes[#deletes + 1], deletes[#deletes + 2] = 'e|' .. member, 'a|' .. member
            redis.call('ZREM', episodes_key, member)
        end
    end
end

-- Evaluate the rules of every type this call stored readings of: `stored[type]` = {key =
-- history key, ms = {...}, values = {...}}. Returns the number of new transitions and every
-- pending one.
local function evaluate_alarms(stored)
    local out = {}
    if not alarm_key then
        return 0, out
    end
    local now = redis.call('TIME')
    local at = string.format('%d', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
    local updates, deletes = {}, {}
    local newest_of = {} -- type -> the newest reading evaluated
    for sensor_type, got in pairs(stored) do
        local rules = rules_by_type[sensor_type]
        if rules then
            -- This call's readings of the type, in time order.
            local order = {}
            for i = 1, #got.ms do
                order[i] = i
            end
            table.sort(order, function(x, y) return got.ms[x] < got.ms[y] end)
            local first_new, last_new = got.ms[order[1]], got.ms[order[#order]]
            local state_fields = {}
            for i, rule in ipairs(rules) do
                state_fields[i] = 's|' .. sensor_type .. '|' .. rule.id
            end
            local states = redis.call('HMGET', alarm_key, unpack(state_fields))
            for i, rule in ipairs(rules) do
                local prefix = sensor_type .. '|' .. rule.id .. '|'
                local eval_ms, st, since
                if states[i] then
                    eval_ms, st, since = parse_state(states[i])
                end
                local newest
                if not st then
                    -- The rule's first readings. It judges what arrives from now on (its past is
                    -- not re-evaluated), and late readings back to a retention before them
                    -- (what a history can still hold), so delivery order never matters.
                    st, since, eval_ms = {run_count = 0}, first_new - retention, nil
                    newest = walk_new(rule, st, got, order, sensor_type, prefix, updates, out, at)
                elseif first_new > eval_ms then
                    newest = walk_new(rule, st, got, order, sensor_type, prefix, updates, out, at)
                elseif last_new >= since then
                    local from = math.max(first_new, since)
                    newest = walk_late(rule, st, since, got, from, last_new, sensor_type, prefix,
                        updates, deletes, out, at)
                end
                if newest then
                    updates[#updates + 1], updates[#updates + 2] =
                        state_fields[i], state_text(math.max(newest, eval_ms or newest), st, since)
                end
                local top = math.max(newest or last_new, eval_ms or last_new)
                newest_of[sensor_type] = math.max(newest_of[sensor_type] or top, top)
            end
        end
    end
    clean_up(newest_of, deletes)
    if #deletes > 0 then
        redis.call('HDEL', alarm_key, unpack(deletes))
    end
    if #updates > 0 then
        redis.call('HSET', alarm_key, unpack(updates))
    end
    redis.call('PEXPIRE', alarm_key, retention_text)
    local alarm_channel = channel .. ':alarms'
    for _, text in ipairs(out) do
        redis.call('PUBLISH', alarm_channel, text)
    end
    -- Transitions stay pending in the hash until the writer has put them in the fleet's alarm
    -- index (and acknowledged them, ack_pending.lua): any later call for this sensor returns
    -- the ones still pending, so a writer that died in between is made good by the next.
    local pending = redis.call('HGET', alarm_key, 'pending')
    local lines = {}
    if pending then
        for line in string.gmatch(pending, '[^\n]+') do
            lines[#lines + 1] = line
        end
    end
    if #out > 0 then
        for _, text in ipairs(out) do
            lines[#lines + 1] = text
        end
        redis.call('HSET', alarm_key, 'pending', table.concat(lines, '\n'))
    end
    return #out, lines
end
