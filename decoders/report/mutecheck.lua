-- mutecheck.lua: mutecheck's judgement as Wireshark fields (a Lua postdissector).
--
-- Written by `mutecheck report --wireshark DIR` (or `analyze --wireshark DIR`) for one analysed
-- capture: the settings block below holds the RFC 6464 audio-level header-extension id
-- negotiated in that session's SDP, the ports of its RTP streams and its mute windows.
--
-- Fields, usable in display filters and as columns:
--   mutecheck.audio_level       uint8   RFC 6464 audio level: 0 (loudest, 0 dBov) .. 127 (-127 dBov, silence)
--   mutecheck.audio_level_dbov  int16   the same in dBov (0 .. -127)
--   mutecheck.voice             bool    the level's V (voice activity) bit
--   mutecheck.muted             bool    the frame lies inside a mute window (as the timeline says)
--   mutecheck.window            uint16  which mute window (1-based), inside one
--   mutecheck.phase             string  how mutecheck judged the frame's time: "muted", "transition"
--                                       (the grace period around each mute/unmute) or "unmuted"
--
-- Use:
--   tshark -X lua_script:mutecheck.lua -r annotated.pcapng -Y 'mutecheck.phase == "muted" && mutecheck.audio_level < 100'
--   (frames judged muted that carried sound; a bare boolean such as `mutecheck.muted` only tests
--   that the field is present, and it is on every frame: write `mutecheck.muted == 1`)
--   wireshark -X lua_script:mutecheck.lua annotated.pcapng
-- (or copy this file into Wireshark's personal Lua plugins folder, see Help > About > Folders).
--
-- The audio level is read from the UDP payload itself (plain RTP, or RTP inside TURN ChannelData),
-- so it works without "Decode As"; header extensions travel in clear even with SRTP (unless
-- cryptex is negotiated). RTP over TCP (RFC 4571) is not read here.

--@SETTINGS@

local mutecheck = Proto("mutecheck", "mutecheck: mute audit")
local f_level = ProtoField.uint8("mutecheck.audio_level", "Audio level (-dBov)", base.DEC)
local f_dbov = ProtoField.int16("mutecheck.audio_level_dbov", "Audio level (dBov)", base.DEC)
local f_voice = ProtoField.bool("mutecheck.voice", "Voice activity (V bit)")
local f_muted = ProtoField.bool("mutecheck.muted", "Muted")
local f_window = ProtoField.uint16("mutecheck.window", "Mute window", base.DEC)
local f_phase = ProtoField.string("mutecheck.phase", "Phase")
mutecheck.fields = { f_level, f_dbov, f_voice, f_muted, f_window, f_phase }

local fe_time = Field.new("frame.time_epoch")
local fe_payload = Field.new("udp.payload")
local fe_srcport = Field.new("udp.srcport")
local fe_dstport = Field.new("udp.dstport")

-- (secs, nsecs) a is before b
local function before(a_secs, a_nsecs, b_secs, b_nsecs)
    return a_secs < b_secs or (a_secs == b_secs and a_nsecs < b_nsecs)
end

-- The label of the last edge at or before the time (the analysis' own rule), or "unmuted".
local function phase_at(secs, nsecs)
    local lo, hi, found = 1, #SETTINGS.phase_edges, nil
    while lo <= hi do
        local mid = math.floor((lo + hi) / 2)
        local edge = SETTINGS.phase_edges[mid]
        if before(secs, nsecs, edge[1], edge[2]) then
            hi = mid - 1
        else
            found = edge
            lo = mid + 1
        end
    end
    if found == nil then
        return "unmuted", nil
    end
    return found[3], found[4]
end

local function window_at(secs, nsecs)
    for _, w in ipairs(SETTINGS.windows) do
        if not before(secs, nsecs, w[1], w[2]) and before(secs, nsecs, w[3], w[4]) then
            return w[5]
        end
    end
    return nil
end

-- RFC 8285 one-byte (0xBEDE) and two-byte (0x100X) header extension elements; returns the
-- offset of the audio-level element's data byte, or nil. A malformed block gives nil, as the
-- analysis treats a malformed packet as carrying no level.
local function find_level(r, first, stop, profile)
    local p = first
    local found = nil
    if profile == 0xBEDE then
        while p < stop do
            local b = r(p, 1):uint()
            local id = bit32.rshift(b, 4)
            if id == 0 then
                p = p + 1
            elseif id == 15 then
                break
            else
                local len = bit32.band(b, 0x0f) + 1
                if p + 1 + len > stop then return nil end
                if id == SETTINGS.audio_level_id and found == nil then found = p + 1 end
                p = p + 1 + len
            end
        end
    elseif bit32.band(profile, 0xfff0) == 0x1000 then
        while p < stop do
            local id = r(p, 1):uint()
            if id == 0 then
                p = p + 1
            else
                if p + 2 > stop then return nil end
                local len = r(p + 1, 1):uint()
                if p + 2 + len > stop then return nil end
                if id == SETTINGS.audio_level_id and found == nil then
                    if len == 0 then return nil end
                    found = p + 2
                end
                p = p + 2 + len
            end
        end
    end
    return found
end

-- The audio level's byte in an RTP packet starting at `off` of range `r` (`n` bytes), or nil.
local function rtp_level_offset(r, off, n)
    if n - off < 12 then return nil end
    local b0 = r(off, 1):uint()
    if b0 < 128 or b0 > 191 then return nil end               -- RFC 7983: not RTP/RTCP
    local b1 = r(off + 1, 1):uint()
    if b1 >= 192 and b1 <= 223 then return nil end            -- RFC 5761: RTCP
    if bit32.band(b0, 0x10) == 0 then return nil end          -- no header extension
    local ext = off + 12 + 4 * bit32.band(b0, 0x0f)
    if n < ext + 4 then return nil end
    local profile = r(ext, 2):uint()
    local stop = ext + 4 + 4 * r(ext + 2, 2):uint()
    if stop > n then return nil end
    return find_level(r, ext + 4, stop, profile)
end

function mutecheck.dissector(tvb, pinfo, tree)
    local t = fe_time()
    if t == nil then return end
    local secs, nsecs = t.value.secs, t.value.nsecs
    local phase, phase_window = phase_at(secs, nsecs)
    local window = window_at(secs, nsecs)
    local subtree = tree:add(mutecheck, "mutecheck: " .. phase)
    subtree:add(f_muted, window ~= nil):set_generated()
    if window ~= nil then subtree:add(f_window, window):set_generated() end
    subtree:add(f_phase, phase):set_generated()

    if SETTINGS.audio_level_id == nil then return end
    local payload = fe_payload()
    local sport, dport = fe_srcport(), fe_dstport()
    if payload == nil or sport == nil or dport == nil then return end
    if not (SETTINGS.rtp_ports[sport.value] or SETTINGS.rtp_ports[dport.value]) then return end
    local r = payload.range
    local n = r:len()
    local off = 0
    if n >= 4 then
        local b0 = r(0, 1):uint()
        if b0 >= 64 and b0 <= 79 then                            -- TURN ChannelData (RFC 8656)
            local len = r(2, 2):uint()
            if 4 + len > n then return end
            off, n = 4, 4 + len
        end
    end
    local at = rtp_level_offset(r, off, n)
    if at == nil then return end
    local byte = r(at, 1):uint()
    local level = bit32.band(byte, 0x7f)
    subtree:add(f_level, r(at, 1), level):append_text(" (-" .. level .. " dBov)")
    subtree:add(f_dbov, r(at, 1), -level):set_generated()
    subtree:add(f_voice, r(at, 1), bit32.band(byte, 0x80) ~= 0)
    subtree:append_text(", audio level -" .. level .. " dBov")
end

register_postdissector(mutecheck)
