-- SPDX-License-Identifier: MIT
-- rigor.util: small helpers shared by the runner and the reporters.

local M = {}

--- File-name-safe form of a name: lowercase ASCII letters, digits and '-', at most 64 chars.
function M.slug(name)
	local s = tostring(name):lower():gsub("[^%w]+", "-"):gsub("^%-+", ""):gsub("%-+$", "")
	if #s > 64 then
		s = s:sub(1, 64):gsub("%-+$", "")
	end
	if s == "" then
		s = "unnamed"
	end
	return s
end

--- Returns a slug of `name` not yet in `used` (a set), and records it.
function M.unique_slug(name, used)
	local base = M.slug(name)
	local s, n = base, 1
	while used[s] do
		n = n + 1
		s = base .. "-" .. n
	end
	used[s] = true
	return s
end

function M.dirname(path)
	local d = path:match("^(.*)/[^/]*$")
	if d == nil then
		return "."
	elseif d == "" then
		return "/"
	end
	return d
end

function M.hostname()
	local f = io.open("/proc/sys/kernel/hostname", "r") or io.open("/etc/hostname", "r")
	if f then
		local h = f:read("l")
		f:close()
		if h and h ~= "" then
			return h
		end
	end
	return os.getenv("HOSTNAME") or "localhost"
end

--- ISO 8601 UTC timestamp without fraction, e.g. 2026-11-25T05:39:56Z.
function M.iso_time(t)
	return os.date("!%Y-%m-%dT%H:%M:%SZ", t)
end

--- Reads at most `max` bytes from the end of a file; nil when it cannot be read.
function M.read_tail(path, max)
	local f = io.open(path, "rb")
	if not f then
		return nil
	end
	local size = f:seek("end")
	local cut = false
	if size > max then
		f:seek("set", size - max)
		cut = true
	else
		f:seek("set", 0)
	end
	local data = f:read("a") or ""
	f:close()
	if cut then
		data = "[... " .. (size - max) .. " bytes cut ...]\n" .. data
	end
	return data
end

--- Walks the words of a command line for an option parser (rigor run, rigor gate):
--- calls on_word(w, value, rest) for each word, "--opt=value" already split into "--opt"
--- and "value". value(opt) takes the next word as opt's value; rest() takes every word
--- left (after "--"). on_word raises M.usage_error(msg) for a bad word.
--- Returns true, or nil and the message of a usage error (other errors propagate).
function M.walk_argv(argv, on_word)
	argv = table.move(argv, 1, #argv, 1, {}) -- the splitting edits the copy
	local i = 1
	local function value(opt)
		i = i + 1
		if argv[i] == nil then
			M.usage_error("option '" .. opt .. "' needs a value")
		end
		return argv[i]
	end
	local function rest()
		local r = table.move(argv, i + 1, #argv, 1, {})
		i = #argv
		return r
	end
	local ok, e = pcall(function()
		while i <= #argv do
			local opt, inline = argv[i]:match("^(%-%-[%w-]+)=(.*)$")
			if opt then
				argv[i] = opt
				table.insert(argv, i + 1, inline)
			end
			on_word(argv[i], value, rest)
			i = i + 1
		end
	end)
	if not ok then
		if type(e) == "table" and e.usage then
			return nil, e.usage
		end
		error(e, 0)
	end
	return true
end

function M.usage_error(msg)
	error({ usage = msg }, 0)
end

--- The whole content of `path`, or nil and why when it cannot be read.
function M.read_file(path)
	local f, err = io.open(path, "rb")
	if not f then
		return nil, err
	end
	local s = f:read("a")
	f:close()
	return s
end

--- Writes `data` to `path` (replacing it). Returns true or nil, message.
function M.write_file(path, data)
	local f, err = io.open(path, "wb")
	if not f then
		return nil, err
	end
	local ok, werr = f:write(data)
	local cok, cerr = f:close()
	if not ok then
		return nil, werr
	end
	if not cok then
		return nil, cerr
	end
	return true
end

-- Decodes one UTF-8 sequence at byte i of s; returns the code point and its length, or nil.
local function utf8_at(s, i)
	local c = s:byte(i)
	local n, cp, min
	if c < 0x80 then
		return c, 1
	elseif c >= 0xC2 and c <= 0xDF then
		n, cp, min = 2, c & 0x1F, 0x80
	elseif c >= 0xE0 and c <= 0xEF then
		n, cp, min = 3, c & 0x0F, 0x800
	elseif c >= 0xF0 and c <= 0xF4 then
		n, cp, min = 4, c & 0x07, 0x10000
	else
		return nil
	end
	for k = 1, n - 1 do
		local b = s:byte(i + k)
		if not b or b & 0xC0 ~= 0x80 then
			return nil
		end
		cp = (cp << 6) | (b & 0x3F)
	end
	if cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then
		return nil
	end
	return cp, n
end

local function xml_char_ok(cp)
	return cp == 0x9 or cp == 0xA or cp == 0xD or (cp >= 0x20 and cp <= 0xD7FF)
		or (cp >= 0xE000 and cp <= 0xFFFD) or (cp >= 0x10000 and cp <= 0x10FFFF)
end

-- Copies the valid UTF-8 characters of s that keep(codepoint) accepts; every other byte
-- becomes the text "\xNN".
local function scrub(s, keep)
	local out, i, n = {}, 1, #s
	while i <= n do
		local cp, len = utf8_at(s, i)
		if cp and keep(cp) then
			out[#out + 1] = s:sub(i, i + len - 1)
			i = i + len
		else
			out[#out + 1] = string.format("\\x%02X", s:byte(i))
			i = i + 1
		end
	end
	return table.concat(out)
end

--- Makes arbitrary bytes (console output) valid UTF-8 that XML 1.0 accepts: invalid UTF-8
--- bytes and characters XML forbids (most control characters, e.g. ESC) become the text
--- "\xNN" (one per byte).
function M.xml_clean(s)
	if not s:find("[%z\1-\8\11\12\14-\31\128-\255]") then
		return s
	end
	return scrub(s, xml_char_ok)
end

--- Replaces each byte that is not part of valid UTF-8 with the text "\xNN" (for JSON, which
--- must be UTF-8). Control characters are kept (JSON escapes them).
function M.utf8_clean(s)
	if not s:find("[\128-\255]") or utf8.len(s) then
		return s
	end
	return scrub(s, function() return true end)
end

local xml_ent = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;",
	["\n"] = "&#10;", ["\r"] = "&#13;", ["\t"] = "&#9;" }

--- Escapes text for an XML attribute value (double-quoted) or element content.
function M.xml_escape(s)
	return (M.xml_clean(tostring(s)):gsub('[&<>"\n\r\t]', xml_ent))
end

function M.xml_text(s)
	return (M.xml_clean(tostring(s)):gsub("[&<>]", xml_ent))
end

--- Wraps text in CDATA, splitting any "]]>" so the section cannot end early.
function M.xml_cdata(s)
	s = M.xml_clean(tostring(s)):gsub("%]%]>", "]]]]><![CDATA[>")
	return "<![CDATA[" .. s .. "]]>"
end

--- Describes any error value as text.
function M.describe_error(e)
	if type(e) == "string" then
		return e
	end
	if type(e) == "table" then
		local mt = getmetatable(e)
		if mt and mt.__tostring then
			return tostring(e)
		end
		if type(rawget(e, "message")) == "string" then
			return rawget(e, "message")
		end
	end
	return tostring(e)
end

function M.fmt_duration(ms)
	if ms < 1000 then
		return string.format("%d ms", ms)
	end
	return string.format("%.2f s", ms / 1000)
end

-- A file reporter's start: check the path, create its directory, open it for writing and
-- record it in run.reports[kind]. Returns an object { f, path, tmp } with metatable mt
-- (which gets an abandon() method), or nil, message.
--
-- Reports are written atomically: into PATH.tmp, renamed over PATH by commit_report()
-- when complete. A report left from an earlier run is removed first, so a run killed
-- outright (SIGKILL, power loss) leaves no report rather than a stale one that CI would
-- read as this run's result.
function M.open_report(kind, label, path, run, mt)
	if type(path) ~= "string" then
		return nil, "reporters." .. kind .. " must be a file path"
	end
	require("rigor.core").mkdir_p(M.dirname(path))
	local probe = io.open(path, "r")
	if probe then
		local _, _, code = probe:read(0)
		probe:close()
		if code == 21 then   -- EISDIR
			return nil, string.format("cannot write %s report: '%s' is a directory", label, path)
		end
	end
	local tmp = path .. ".tmp"
	local f, err = io.open(tmp, "w")
	if not f then
		return nil, string.format("cannot write %s report: %s", label, err)
	end
	os.remove(path)
	run.reports[kind] = path
	mt.abandon = mt.abandon or function(self)
		self.f:close()
		os.remove(self.tmp)
	end
	return setmetatable({ f = f, path = path, tmp = tmp }, mt)
end

-- A file reporter's end: write `data` (if any), close, and rename the temporary file over
-- the report's path. Raises "cannot write 'PATH': why" on any failure, removing the
-- temporary file.
function M.commit_report(self, data)
	local ok, err = true, nil
	if data then
		ok, err = self.f:write(data)
	end
	local cok, cerr = self.f:close()
	local rok, rerr = true, nil
	if ok and cok then
		rok, rerr = os.rename(self.tmp, self.path)
	end
	if not (ok and cok and rok) then
		os.remove(self.tmp)
		error("cannot write '" .. self.path .. "': " .. tostring(err or cerr or rerr))
	end
end

return M
