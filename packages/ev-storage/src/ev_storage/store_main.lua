-- The main loop of the write script (ev-storage: store_reading.lua, alarms.lua, then this).
--
-- Each outcome comes with the history key's expiry (PEXPIRETIME: absolute server ms), which the
-- fleet catalogue keeps so that it drops the sensor's type exactly when this key expires; a
-- duplicate returns it too, so a catalogue update lost after the write is repaired on redelivery.
local last_of = {} -- history key: the index of the call's last reading of it
for i = 1, readings do
    last_of[KEYS[i * 2 + 1]] = i
end
local outcomes = {}
local stored = {} -- sensor type -> {key = history key, ms = {...}, values = {...}}: for the alarms
for i = 1, readings do
    local a = FIXED_ARGS + (i - 1) * ARGS_PER_READING
    local history_key = KEYS[i * 2 + 1]
    local ok, outcome = pcall(store, KEYS[i * 2], history_key,
        ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], last_of[history_key] == i)
    if not ok then
        -- The readings before this one are stored: so are their rollups.
        flush_rollups()
        error(outcome, 0)
    end
    outcomes[2 * i - 1] = outcome
    outcomes[2 * i] = redis.call('PEXPIRETIME', history_key)
    if outcome == STORED and alarm_key then
        local sensor_type = ARGV[a + 4]
        local got = stored[sensor_type]
        if not got then
            got = {key = history_key, ms = {}, values = {}}
            stored[sensor_type] = got
        end
        got.ms[#got.ms + 1] = tonumber(ARGV[a + 1])
        got.values[#got.values + 1] = struct.unpack('>d', ARGV[a + 5])
    end
end
flush_rollups()
-- Then the alarm rules over what was stored (alarms.lua): after the outcomes, the number of new
-- transitions and every pending one (with rules only).
if alarm_key then
    local new, pending = evaluate_alarms(stored)
    outcomes[#outcomes + 1] = new
    for _, text in ipairs(pending) do
        outcomes[#outcomes + 1] = text
    end
end
return outcomes

