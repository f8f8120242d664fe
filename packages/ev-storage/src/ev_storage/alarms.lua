-- Alarm rules, evaluated in the write script on the readings it stored, in measurement time
-- (ev-storage; docs/alarms.md, "Semantics"; ev_schemas.alarm_episodes is the reference).
--
-- Rules that apply to this sensor come in ARGV after the fixed arguments, 9 per rule: id,
-- sensor type, above, below, clear below, clear above (the effective thresholds), for (ms),
-- readings, severity; '' where a rule has none. With rules, the last key is the sensor's alarm
-- hash (same hash tag as its other keys):
--   "s|<type>|<rule>"           the rule's state after the newest reading it evaluated:
--                               "<ms>:<run start>:<run count>:<began>:<raised>" ('' for none;
--                               began and raised: the active episode's)
--   "e|<type>|<rule>|<began>"   an episode: "<raised ms>:<cleared ms>:<raised at>:<cleared at>:
--                               <severity>" (cleared '' while active; "at": processing time,
--                               server ms, when this store first raised or cleared it)
-- A reading newer than the rule's newest evaluated one is walked from the saved state. An older
-- one (late, out of order) re-walks the stored history from a restart point before it: the
-- first reading of the episode it falls in, or else the reading after the last one before it
-- that neither triggers nor lies in an episode (after which the rule is inactive with no run),
-- and the episodes from there on are replaced by the re-walk's. So the episodes depend on the
-- set of stored readings only, never on their order.
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
local alarm_key = alarm_keys == 1 and KEYS[#KEYS] or nil

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
    local ms, run_start, run_count, began, raised =
        string.match(text, '^(%-?%d+):(%-?%d*):(%d+):(%-?%d*):(%-?%d*)$')
    if not ms then
        error('damaged alarm state ' .. text)
    end
    return tonumber(ms), {run_start = opt(run_start), run_count = tonumber(run_count),
        began = opt(began), raised = opt(raised)}
end

local function fmt(n)
    return n and string.format('%d', n) or ''
end

local function state_text(ms, st)
    return fmt(ms) .. ':' .. fmt(st.run_start) .. ':' .. string.format('%d', st.run_count) .. ':'
        .. fmt(st.began) .. ':' .. fmt(st.raised)
end

-- Every stored reading (ms, value) of a history with from_ms <= ms, in time order.
local function history_from(history_key, from_ms)
    local times, values = {}, {}
    local meta = redis.call('HGET', history_key, META)
    if not meta then
        return times, values
    end
    local bucket_ms, newest, lowest = string.match(meta, '^(%d+):(%-?%d+):(%-?%d+)$')
    bucket_ms, newest = tonumber(bucket_ms), tonumber(newest)
    -- From the history's first bucket at the earliest: from_ms may be "the beginning".
    local first = math.max(math.floor(from_ms / bucket_ms), tonumber(lowest))
    local last = math.floor(newest / bucket_ms)
    for lo = first, last, 256 do
        local fields = {}
        for n = lo, math.min(lo + 255, last) do
            fields[#fields + 1] = string.format('%d', n)
        end
        local got = redis.call('HMGET', history_key, unpack(fields))
        for j = 1, #fields do
            local data = got[j]
            if data then
                local base = tonumber(fields[j]) * bucket_ms
                for at = 1, #data, RECORD do
                    local offset, value = struct.unpack('>I4d', data, at)
                    local ms = base + offset
                    if ms >= from_ms then
                        times[#times + 1], values[#values + 1] = ms, value
                    end
                end
            end
        end
    end
    return times, values
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

-- The stored episodes of one (type, rule) (fields: HGETALL's list): began -> episode.
local function stored_episodes(fields, prefix)
    local found = {}
    for i = 1, #fields, 2 do
        local name = fields[i]
        if string.sub(name, 1, #prefix) == prefix then
            found[tonumber(string.sub(name, #prefix + 1))] = parse_episode(fields[i + 1])
        end
    end
    return found
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

-- Evaluate the rules of every type this call stored readings of: `stored[type]` = {key =
-- history key, ms = {...}, values = {...}}. Returns the transitions.
local function evaluate_alarms(stored)
    local out = {}
    if not alarm_key then
        return 0, out
    end
    local now = redis.call('TIME')
    local at = string.format('%d', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
    local all_fields -- HGETALL of the alarm hash, read once if a late reading needs it
    local updates, deletes = {}, {}
    local latest -- the newest reading evaluated
    for sensor_type, got in pairs(stored) do
        local rules = rules_by_type[sensor_type]
        if rules then
            -- This call's readings of the type, in time order.
            local order = {}
            for i = 1, #got.ms do
                order[i] = i
            end
            table.sort(order, function(x, y) return got.ms[x] < got.ms[y] end)
            local state_fields = {}
            for i, rule in ipairs(rules) do
                state_fields[i] = 's|' .. sensor_type .. '|' .. rule.id
            end
            local states = redis.call('HMGET', alarm_key, unpack(state_fields))
            for i, rule in ipairs(rules) do
                local prefix = 'e|' .. sensor_type .. '|' .. rule.id .. '|'
                local eval_ms, st
                if states[i] then
                    eval_ms, st = parse_state(states[i])
                end
                local from = got.ms[order[1]]
                local walked = {}
                local newest
                if not st or from > eval_ms then
                    -- In order (or the rule's first readings): walk this call's readings.
                    st = st or {run_count = 0}
                    for _, j in ipairs(order) do
                        step(rule, st, got.ms[j], got.values[j], walked)
                        newest = got.ms[j]
                    end
                    for _, w in ipairs(walked) do
                        local field = prefix .. fmt(w[1])
                        if w[3] == nil then
                            local e = {raised = w[2], raised_at = at, cleared_at = '',
                                severity = rule.severity}
                            updates[#updates + 1], updates[#updates + 2] = field, episode_text(e)
                            transition(out, 'raised', sensor_type, rule, w[1], e, at)
                        else
                            -- Raised by an earlier call (stored) or by this one (not yet).
                            local before = redis.call('HGET', alarm_key, field)
                            local e = before and parse_episode(before) or {raised = w[2],
                                raised_at = at, severity = rule.severity}
                            e.cleared, e.cleared_at = w[3], at
                            updates[#updates + 1], updates[#updates + 2] = field, episode_text(e)
                            transition(out, 'cleared', sensor_type, rule, w[1], e, at)
                        end
                    end
                else
                    -- A late reading: re-walk the stored history from a restart point.
                    all_fields = all_fields or redis.call('HGETALL', alarm_key)
                    local old = stored_episodes(all_fields, prefix)
                    local lo, reset -- first ms re-walked; the calm reading before it
                    for began, e in pairs(old) do
                        if began <= from and (e.cleared == nil or e.cleared >= from) then
                            lo = began
                        end
                    end
                    if not lo then
                        local floor
                        for _, e in pairs(old) do
                            if e.cleared and e.cleared < from
                                and (not floor or e.cleared > floor) then
                                floor = e.cleared
                            end
                        end
                        reset = last_calm_before(got.key, rule, from, floor)
                        lo = reset and reset + 1 or -9007199254740992
                    end
                    local times, values = history_from(got.key, lo)
                    st = {run_count = 0}
                    local fresh = {}
                    for j = 1, #times do
                        step(rule, st, times[j], values[j], walked)
                        newest = times[j]
                    end
                    for _, w in ipairs(walked) do
                        fresh[w[1]] = {raised = w[2], cleared = w[3]}
                    end
                    for began, e in pairs(fresh) do
                        local was = old[began]
                        e.severity = was and was.severity or rule.severity
                        e.raised_at = was and was.raised_at or at
                        e.cleared_at = (was and was.cleared == e.cleared and was.cleared_at)
                            or (e.cleared and at or '')
                        local kind
                        if not was then
                            kind = 'raised'
                        elseif was.raised ~= e.raised
                                or (was.cleared and was.cleared ~= e.cleared) then
                            kind = 'revised'
                        elseif was.cleared == nil and e.cleared then
                            kind = 'cleared'
                        end
                        if kind then
                            updates[#updates + 1], updates[#updates + 2] =
                                prefix .. fmt(began), episode_text(e)
                            transition(out, kind, sensor_type, rule, began, e, at)
                            if kind == 'raised' and e.cleared then
                                transition(out, 'cleared', sensor_type, rule, began, e, at)
                            end
                        end
                    end
                    for began, e in pairs(old) do
                        if began >= lo and not fresh[began] then
                            deletes[#deletes + 1] = prefix .. fmt(began)
                            transition(out, 'retracted', sensor_type, rule, began, e, at)
                        end
                    end
                end
                updates[#updates + 1], updates[#updates + 2] =
                    state_fields[i], state_text(newest or eval_ms or from, st)
                if newest and (not latest or newest > latest) then
                    latest = newest
                end
            end
        end
    end
    if #deletes > 0 then
        redis.call('HDEL', alarm_key, unpack(deletes))
    end
    if #updates > 0 then
        redis.call('HSET', alarm_key, unpack(updates))
    end
    if #out > 0 and latest then
        -- Transitions are rare: then, episodes cleared before the retention window go.
        local fields = redis.call('HGETALL', alarm_key)
        local old = {}
        for i = 1, #fields, 2 do
            if string.sub(fields[i], 1, 2) == 'e|' then
                local e = parse_episode(fields[i + 1])
                if e.cleared and e.cleared < latest - retention then
                    old[#old + 1] = fields[i]
                end
            end
        end
        if #old > 0 then
            redis.call('HDEL', alarm_key, unpack(old))
        end
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
