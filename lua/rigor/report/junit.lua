-- SPDX-License-Identifier: MIT
-- rigor.report.junit: JUnit XML (the dialect GitLab and Jenkins read), written at the end of
-- the run. Schema: lua/schema/junit.xsd. Each testcase's <system-out> holds its log file
-- (rig events, console bytes, runner lines), and each testsuite's <system-out> its suite log
-- (before_all/after_all), made XML-safe by rigor.util.xml_cdata.

local util = require "rigor.util"

local M = {}
M.__index = M

M.MAX_LOG = 1024 * 1024 -- bytes of each case log copied into <system-out>
M.TAIL_LINES = 20       -- lines of the case log in a failure's or error's body

function M.new(path, run)
	return util.open_report("junit", "JUnit", path, run, M)
end

local e = util.xml_escape

local function secs(ms)
	return string.format("%.3f", (ms or 0) / 1000)
end

local function counts(cases)
	local c = { tests = 0, failures = 0, errors = 0, skipped = 0 }
	for _, r in ipairs(cases) do
		c.tests = c.tests + 1
		if r.status == "fail" then
			c.failures = c.failures + 1
		elseif r.status == "error" then
			c.errors = c.errors + 1
		elseif r.status == "skip" then
			c.skipped = c.skipped + 1
		end
	end
	return c
end

local function problem_text(r, log)
	local parts = {}
	if r.where then
		parts[#parts + 1] = r.where .. ": " .. (r.message or "")
	else
		parts[#parts + 1] = r.message or ""
	end
	for _, n in ipairs(r.notes or {}) do
		parts[#parts + 1] = "also: " .. n
	end
	if r.traceback then
		parts[#parts + 1] = r.traceback
	end
	-- what a CI page shows first: the end of the case's log (rig events and console), and the
	-- full log as an attachment line, the form GitLab and Jenkins turn into a link; @log is
	-- the case log's tail the caller already read for <system-out>
	local tail = log and log:sub(-8192)
	if tail and tail ~= "" then
		local lines = {}
		for line in tail:gmatch("[^\n]+") do
			lines[#lines + 1] = line
		end
		parts[#parts + 1] = string.format("last %d lines of %s:\n%s", math.min(#lines, M.TAIL_LINES),
			r.log, table.concat(lines, "\n", math.max(1, #lines - M.TAIL_LINES + 1)))
	end
	if r.log then
		parts[#parts + 1] = "[[ATTACHMENT|" .. r.log .. "]]"
	end
	return table.concat(parts, "\n")
end

function M.render(run)
	local out = {}
	local function w(s)
		out[#out + 1] = s
	end
	local total = counts({})
	for _, s in ipairs(run.suites) do
		local c = counts(s.cases)
		for k, v in pairs(c) do
			total[k] = total[k] + v
		end
	end
	w('<?xml version="1.0" encoding="UTF-8"?>\n')
	w(string.format('<testsuites name="%s" tests="%d" failures="%d" errors="%d" skipped="%d"'
		.. ' time="%s" timestamp="%s">\n', e("rigor " .. run.rig_info.name), total.tests,
		total.failures, total.errors, total.skipped, secs(run.duration_ms), run.timestamp))
	for i, s in ipairs(run.suites) do
		local c = counts(s.cases)
		w(string.format('  <testsuite name="%s" tests="%d" failures="%d" errors="%d" skipped="%d"'
			.. ' time="%s" timestamp="%s" hostname="%s" id="%d"%s>\n', e(s.name), c.tests,
			c.failures, c.errors, c.skipped, secs(s.duration_ms), s.timestamp, e(run.hostname),
			i - 1, s.file and (' file="' .. e(s.file) .. '"') or ""))
		w("    <properties>\n")
		w(string.format('      <property name="rig" value="%s"/>\n', e(run.rig_info.name)))
		if run.rig_info.device_type then
			w(string.format('      <property name="device_type" value="%s"/>\n',
				e(run.rig_info.device_type)))
		end
		-- the image the suite verified: the last one flashed when it ended
		local img = s.image
		if img then
			w(string.format('      <property name="image" value="%s"/>\n', e(img.name)))
			for _, k in ipairs({ "sha256", "version", "format" }) do
				if img[k] then
					w(string.format('      <property name="image_%s" value="%s"/>\n', k,
						e(img[k])))
				end
			end
		end
		w("    </properties>\n")
		for _, r in ipairs(s.cases) do
			local attrs = string.format('classname="%s" name="%s" time="%s"', e(s.name), e(r.name),
				secs(r.duration_ms))
			if r.file then
				attrs = attrs .. ' file="' .. e(r.file) .. '"'
			end
			if math.type(r.line) == "integer" and r.line > 0 then
				attrs = attrs .. ' line="' .. r.line .. '"'
			end
			w("    <testcase " .. attrs .. ">\n")
			local log = r.log and util.read_tail(r.log, M.MAX_LOG)
			if r.status == "fail" then
				w(string.format('      <failure message="%s" type="assertion">%s</failure>\n',
					e(r.message or ""), util.xml_text(problem_text(r, log))))
			elseif r.status == "error" then
				local typ = r.abort == "timeout" and "timeout" or r.abort and "interrupted"
					or r.infra and "infrastructure" or "error"
				w(string.format('      <error message="%s" type="%s">%s</error>\n',
					e(r.message or ""), typ, util.xml_text(problem_text(r, log))))
			elseif r.status == "skip" then
				w(string.format('      <skipped message="%s"/>\n', e(r.message or "")))
			end
			if log and log ~= "" then
				-- GitLab reads attachment lines from <system-out>
				w("      <system-out>" .. util.xml_cdata(log .. ((r.status == "fail" or r.status == "error")
					and "\n[[ATTACHMENT|" .. r.log .. "]]\n" or "")) .. "</system-out>\n")
			end
			w("    </testcase>\n")
		end
		-- the suite's own log: what before_all/after_all did (a flash, provisioning), which
		-- no case's log holds, so CI shows the setup too
		local slog = s.log and util.read_tail(s.log, M.MAX_LOG)
		if slog and slog ~= "" then
			w("    <system-out>" .. util.xml_cdata(slog) .. "</system-out>\n")
		end
		w("  </testsuite>\n")
	end
	w("</testsuites>\n")
	return table.concat(out)
end

function M:finish(run)
	util.commit_report(self, M.render(run))
end

return M
