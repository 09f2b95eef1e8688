-- SPDX-License-Identifier: MIT
-- rigor.report.human: live console output, one line per case, failure details, a summary.

local util = require "rigor.util"

local M = {}
M.__index = M

local COLORS = { ok = "32", FAIL = "31", ERROR = "31;1", SKIP = "33", bold = "1", dim = "2" }
local LABEL = { pass = "ok", fail = "FAIL", error = "ERROR", skip = "SKIP" }

function M.new(opts, run)
	return setmetatable({ verbose = type(opts) == "table" and opts.verbose }, M)
end

local function paint(run, what, s)
	if run.color and COLORS[what] then
		return "\27[" .. COLORS[what] .. "m" .. s .. "\27[0m"
	end
	return s
end

local function indent(text, prefix)
	return prefix .. tostring(text):gsub("\n", "\n" .. prefix)
end

local function image_line(img)
	return (string.format("image %s: version %s, sha256 %s", img.name, img.version or "unknown",
		img.sha256 or "unknown"):gsub("[\r\n]+", " "))
end

function M:start(run)
	local r = run.rig_info
	run.out(string.format("rigor: rig '%s'%s, %d %s selected from %d %s\n", r.name,
		r.device_type and (" (" .. r.device_type .. ")") or "", run.planned_cases,
		run.planned_cases == 1 and "case" or "cases", #run.files,
		#run.files == 1 and "file" or "files"))
	if run.image then
		run.out("rigor: " .. image_line(run.image) .. "\n")
	end
end

function M:suite_start(run, suite)
	run.out(paint(run, "bold", suite.name) .. "\n")
end

-- A hook or case flashed an image: say what is on the card from now on.
function M:image(run, suite, img)
	run.out(paint(run, "dim", "  " .. image_line(img)) .. "\n")
end

function M:case_end(run, suite, r)
	local label = LABEL[r.status]
	local line = string.format("  %s %s", paint(run, label, string.format("%-5s", label)), r.name)
	if r.status == "skip" then
		line = line .. ": " .. (r.message or "")
	else
		line = line .. paint(run, "dim", " (" .. util.fmt_duration(r.duration_ms) .. ")")
	end
	run.out(line .. "\n")
	if r.status == "fail" or r.status == "error" then
		local msg = r.message or ""
		if r.where and r.status == "fail" then
			msg = r.where .. ": " .. msg
		end
		run.out(indent(msg, "        ") .. "\n")
		for _, n in ipairs(r.notes or {}) do
			run.out(indent("also: " .. n, "        ") .. "\n")
		end
		if r.log then
			run.out("        log: " .. r.log .. "\n")
		end
	elseif r.notes and #r.notes > 0 then
		for _, n in ipairs(r.notes) do
			run.out(indent("note: " .. n, "        ") .. "\n")
		end
	end
end

function M:finish(run)
	local t = run.totals
	for _, e in ipairs(run.infra_errors) do
		run.out(paint(run, "ERROR", "infrastructure error: ") .. e .. "\n")
	end
	if run.interrupted then
		run.out(paint(run, "ERROR", "interrupted by " .. run.interrupted) .. "\n")
	end
	local parts = {
		string.format("%d passed", t.passed),
		string.format("%d failed", t.failed),
		string.format("%d errors", t.errors),
		string.format("%d skipped", t.skipped),
	}
	local summary = string.format("%d %s: %s in %s", t.cases, t.cases == 1 and "case" or "cases",
		table.concat(parts, ", "), util.fmt_duration(run.duration_ms or 0))
	for _, img in ipairs(run.images or {}) do
		run.out(image_line(img) .. "\n")
	end
	local verdict = run.exit_code == 0 and "ok" or "FAIL"
	run.out(paint(run, verdict, verdict) .. " " .. summary .. "\n")
	local where = {}
	for _, k in ipairs({ "tap", "junit", "json" }) do
		if run.reports[k] then
			where[#where + 1] = k .. ": " .. run.reports[k]
		end
	end
	if run.artifacts then
		where[#where + 1] = "artifacts: " .. run.artifacts
	end
	if #where > 0 then
		run.out(table.concat(where, ", ") .. "\n")
	end
end

return M
