-- SPDX-License-Identifier: MIT
-- A pure-Lua stand-in for the C module "rigor.core", so the framework tests run under a
-- plain lua5.4. `require "fake_core"` returns the real rigor.core when one can be loaded
-- and installs this fake (package.preload) only when none is available.
--
-- Differences from the real module, all for testing:
--  * time is os.clock() (CPU time) plus a virtual offset; sleep() advances the offset
--    instead of sleeping, clamped to the armed deadline like a real blocking call;
--  * the deadline/signal check is a debug.sethook count hook on the running coroutine
--    (every 1000 instructions, every instruction once an abort is due, as the real one);
--  * _raise_signal("SIGINT"|"SIGTERM") stands in for a real signal;
--  * json_encode/json_decode are minimal (enough for the runner's reports).

local ok, real = pcall(require, "rigor.core")
if ok then
	return real
end

local M = { fake = true }

local offset_ms = 0
local deadline = nil
local signal = nil

local abort_mt = {
	__tostring = function(e)
		return e.message
	end,
}

local function abort(kind)
	local msg = kind == "timeout" and "deadline passed" or ("interrupted by " .. kind)
	return setmetatable({ rigor_abort = kind, message = msg }, abort_mt)
end

function M.now_ms()
	return math.floor(os.clock() * 1000) + offset_ms
end

-- As the real hook (host/lua/lcore.c): once an abort is due, check at every instruction,
-- so a case's own pcall loop cannot catch it for good.
local function check()
	if signal and deadline then
		debug.sethook(check, "", 1)
		error(abort(signal), 0)
	end
	if deadline and M.now_ms() >= deadline then
		debug.sethook(check, "", 1)
		error(abort("timeout"), 0)
	end
end

function M.sleep(ms)
	if deadline then
		local left = deadline - M.now_ms()
		if ms > left then
			offset_ms = offset_ms + math.max(left, 0)
			check()
		end
	end
	offset_ms = offset_ms + ms
	check()
end

function M.arm(deadline_ms)
	assert(math.type(deadline_ms) == "integer", "arm: integer deadline expected")
	deadline = deadline_ms
	debug.sethook(check, "", 1000)
	check()
end

function M.disarm()
	deadline = nil
	debug.sethook()
end

function M.interrupted()
	return signal
end

--- Test back channel: behaves like a signal arriving now.
function M._raise_signal(name)
	assert(name == "SIGINT" or name == "SIGTERM")
	signal = signal or name
	check()
end

--- Test back channel: forget a previous signal (the real one is sticky for the process).
function M._reset()
	signal, deadline = nil, nil
	debug.sethook()
end

function M.mkdir_p(path)
	local okx = os.execute("mkdir -p '" .. path:gsub("'", "'\\''") .. "' 2>/dev/null")
	if okx then
		return true
	end
	return nil, "cannot create '" .. path .. "'"
end

M.array_mt = { __name = "rigor.json_array" }
M.json_array = M.array_mt

---------------------------------------------------------------------------------------------
-- Minimal JSON

local function is_array(t)
	if getmetatable(t) == M.array_mt then
		return true
	end
	if t.n ~= nil then
		return true
	end
	local n = 0
	for _ in pairs(t) do
		n = n + 1
	end
	return n > 0 and n == #t
end

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r",
	["\t"] = "\\t", ["\b"] = "\\b", ["\f"] = "\\f" }

local function enc_string(s)
	return '"' .. s:gsub('[%c"\\]', function(c)
		return escapes[c] or string.format("\\u%04x", c:byte())
	end) .. '"'
end

local function encode(v, indent, cur)
	local tv = type(v)
	if v == nil then
		return "null"
	elseif tv == "boolean" then
		return tostring(v)
	elseif tv == "number" then
		if v ~= v or v == math.huge or v == -math.huge then
			error("json_encode: cannot encode " .. tostring(v))
		end
		if math.type(v) == "integer" then
			return tostring(v)
		end
		return string.format("%.17g", v)
	elseif tv == "string" then
		return enc_string(v)
	elseif tv == "table" then
		local nl = indent and "\n" .. cur .. indent or ""
		local close = indent and "\n" .. cur or ""
		local sep = indent and ": " or ":"
		local parts = {}
		if is_array(v) then
			for i = 1, v.n or #v do
				parts[i] = encode(v[i], indent, indent and cur .. indent)
			end
			if #parts == 0 then
				return "[]"
			end
			return "[" .. nl .. table.concat(parts, "," .. nl) .. close .. "]"
		end
		local keys = {}
		for k in pairs(v) do
			if type(k) ~= "string" then
				error("json_encode: object keys must be strings")
			end
			keys[#keys + 1] = k
		end
		table.sort(keys)
		for _, k in ipairs(keys) do
			parts[#parts + 1] = enc_string(k) .. sep .. encode(v[k], indent, indent and cur .. indent)
		end
		if #parts == 0 then
			return "{}"
		end
		return "{" .. nl .. table.concat(parts, "," .. nl) .. close .. "}"
	end
	error("json_encode: cannot encode a " .. tv)
end

function M.json_encode(v, indent)
	if type(indent) == "number" then
		indent = string.rep(" ", indent)
	end
	return encode(v, indent, "")
end

M.json_null = setmetatable({}, { __name = "json_null", __tostring = function() return "null" end })

function M.json_decode(s)
	local pos = 1
	local function ws()
		pos = s:find("[^ \t\r\n]", pos) or #s + 1
	end
	local function fail(what)
		error(string.format("json_decode: %s at byte %d", what, pos), 0)
	end
	local value
	local function str()
		pos = pos + 1
		local out = {}
		while true do
			local c = s:sub(pos, pos)
			if c == "" then
				fail("unterminated string")
			elseif c == '"' then
				pos = pos + 1
				return table.concat(out)
			elseif c == "\\" then
				local e = s:sub(pos + 1, pos + 1)
				local map = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t", ['"'] = '"',
					["\\"] = "\\", ["/"] = "/" }
				if map[e] then
					out[#out + 1] = map[e]
					pos = pos + 2
				elseif e == "u" then
					local cp = tonumber(s:sub(pos + 2, pos + 5), 16) or fail("bad \\u")
					pos = pos + 6
					if cp >= 0xD800 and cp < 0xDC00 and s:sub(pos, pos + 1) == "\\u" then
						local lo = tonumber(s:sub(pos + 2, pos + 5), 16)
						cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
						pos = pos + 6
					end
					out[#out + 1] = utf8.char(cp)
				else
					fail("bad escape")
				end
			else
				out[#out + 1] = c
				pos = pos + 1
			end
		end
	end
	function value()
		ws()
		local c = s:sub(pos, pos)
		if c == "{" then
			pos = pos + 1
			local obj = {}
			ws()
			if s:sub(pos, pos) == "}" then
				pos = pos + 1
				return obj
			end
			while true do
				ws()
				if s:sub(pos, pos) ~= '"' then
					fail("expected key")
				end
				local k = str()
				ws()
				if s:sub(pos, pos) ~= ":" then
					fail("expected ':'")
				end
				pos = pos + 1
				local v = value()
				if v == M.json_null then
					v = nil
				end
				obj[k] = v
				ws()
				local d = s:sub(pos, pos)
				pos = pos + 1
				if d == "}" then
					return obj
				elseif d ~= "," then
					fail("expected ',' or '}'")
				end
			end
		elseif c == "[" then
			pos = pos + 1
			local arr = setmetatable({}, M.array_mt)
			ws()
			if s:sub(pos, pos) == "]" then
				pos = pos + 1
				return arr
			end
			while true do
				arr[#arr + 1] = value()
				ws()
				local d = s:sub(pos, pos)
				pos = pos + 1
				if d == "]" then
					return arr
				elseif d ~= "," then
					fail("expected ',' or ']'")
				end
			end
		elseif c == '"' then
			return str()
		elseif s:find("^true", pos) then
			pos = pos + 4
			return true
		elseif s:find("^false", pos) then
			pos = pos + 5
			return false
		elseif s:find("^null", pos) then
			pos = pos + 4
			return M.json_null
		else
			local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
			if not num or num == "" then
				fail("unexpected character")
			end
			pos = pos + #num
			return math.tointeger(tonumber(num)) or tonumber(num)
		end
	end
	local v = value()
	ws()
	if pos <= #s then
		fail("trailing garbage")
	end
	return v
end

package.preload["rigor.core"] = function()
	return M
end
package.loaded["rigor.core"] = M
return M
