-- SPDX-License-Identifier: MIT
-- rigor.report.tap: TAP version 14, one subtest per suite, streamed to a file.
--
--   TAP version 14
--   1..2
--   # Subtest: power
--       ok 1 - boots to login
--       not ok 2 - shuts down
--         ---
--         message: "expected \"off\", got \"on\""
--         ...
--       ok 3 - usb boot # SKIP rig lacks capability 'usbboot'
--       1..3
--   not ok 1 - power
--
-- reporters.tap_version = 13 writes "TAP version 13" instead (same stream otherwise) for
-- harnesses older than Test::Harness 3.48, which reject version 14. TAP 13 parsers ignore
-- the indented subtest lines and read the one test point per suite.

local util = require "rigor.util"

local M = {}
M.__index = M

function M.new(path, run, spec)
	local version = spec and spec.tap_version or 14
	if version ~= 13 and version ~= 14 then
		return nil, "reporters.tap_version must be 13 or 14"
	end
	local self, err = util.open_report("tap", "TAP", path, run, M)
	if self then
		self.version, self.n = version, 0
	end
	return self, err
end

function M:w(s)
	self.f:write(s)
	self.f:flush()
end

local function desc(s)
	return (tostring(s):gsub("[\r\n]+", " "):gsub("\\", "\\\\"):gsub("#", "\\#"))
end

local function yaml_str(s)
	s = util.xml_clean(tostring(s))
	return '"' .. s:gsub('[%c"\\]', function(c)
		if c == '"' then
			return '\\"'
		elseif c == "\\" then
			return "\\\\"
		elseif c == "\n" then
			return "\\n"
		elseif c == "\t" then
			return "\\t"
		elseif c == "\r" then
			return "\\r"
		end
		return string.format("\\x%02x", c:byte())
	end) .. '"'
end

function M:start(run)
	self:w(string.format("TAP version %d\n", self.version))
	if run.planned_suites == 0 then
		self:w("1..0 # SKIP no case selected\n")
	else
		self:w(string.format("1..%d\n", run.planned_suites))
	end
	if run.image then
		self:image(run, nil, run.image)
	end
end

function M:suite_start(run, suite)
	self.sub = 0
	self.bad = false
	self:w("# Subtest: " .. desc(suite.name) .. "\n")
end

function M:case_end(run, suite, r)
	self.sub = self.sub + 1
	local line
	if r.status == "pass" then
		line = string.format("    ok %d - %s", self.sub, desc(r.name))
	elseif r.status == "skip" then
		line = string.format("    ok %d - %s # SKIP %s", self.sub, desc(r.name),
			desc(r.message or ""))
	else
		self.bad = true
		line = string.format("    not ok %d - %s", self.sub, desc(r.name))
	end
	self:w(line .. "\n")
	if r.status == "fail" or r.status == "error" then
		local y = { "      ---" }
		local function kv(k, v)
			if v ~= nil then
				y[#y + 1] = "      " .. k .. ": " .. (type(v) == "number" and tostring(v)
					or yaml_str(v))
			end
		end
		kv("message", r.message)
		kv("severity", r.status == "fail" and "fail" or "error")
		kv("at", r.where)
		kv("duration_ms", r.duration_ms)
		kv("log", r.log)
		if r.infra then
			kv("infrastructure", "true")
		end
		if r.notes and #r.notes > 0 then
			kv("notes", table.concat(r.notes, "\n"))
		end
		kv("traceback", r.traceback)
		y[#y + 1] = "      ..."
		self:w(table.concat(y, "\n") .. "\n")
	end
end

-- A flash in a hook or case: a comment, inside the suite's subtest when there is one.
function M:image(run, suite, img)
	self:w(string.format("%s# image: %s version %s sha256 %s\n", suite and self.sub and "    " or "",
		desc(img.name), desc(img.version or "unknown"), desc(img.sha256 or "unknown")))
end

function M:suite_end(run, suite)
	self.n = self.n + 1
	self:w(string.format("    1..%d\n", self.sub))
	self:w(string.format("%s %d - %s\n", self.bad and "not ok" or "ok", self.n, desc(suite.name)))
	self.sub = nil
end

function M:finish(run)
	for _, e in ipairs(run.infra_errors) do
		self:w("# infrastructure error: " .. desc(e) .. "\n")
	end
	if run.interrupted then
		self:w("Bail out! interrupted by " .. run.interrupted .. "\n")
	end
	util.commit_report(self)
end

return M
