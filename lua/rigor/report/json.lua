-- SPDX-License-Identifier: MIT
-- rigor.report.json: the machine-readable run report, schema "rigor.run/1" (documented in
-- docs/lua-api.md). Encoded by rigor.core.json_encode; absent optional fields are omitted.
-- A run that flashed images says which: "images" (each one flashed, in order), "image"
-- (the last) and each suite's "image" (the one on the card when the suite ended).

local core = require "rigor.core"
local util = require "rigor.util"

local M = {}
M.__index = M

M.SCHEMA = "rigor.run/1"

function M.new(path, run)
	return util.open_report("json", "JSON", path, run, M)
end

local function array(t)
	local a = setmetatable({}, core.array_mt)
	for i, v in ipairs(t or {}) do
		a[i] = v
	end
	return a
end

function M.document(run)
	local suites = array()
	for _, s in ipairs(run.suites) do
		local cases = array()
		for _, r in ipairs(s.cases) do
			cases[#cases + 1] = {
				name = r.name,
				id = r.id,
				status = r.status,
				duration_ms = r.duration_ms or 0,
				message = r.message,
				where = r.where,
				traceback = r.traceback,
				abort = r.abort,
				infra = r.infra and true or nil,
				notes = #r.notes > 0 and array(r.notes) or nil,
				log = r.log,
				file = r.file,
				line = r.line,
				tags = array(r.tags),
				requires = array(r.requires),
			}
		end
		suites[#suites + 1] = {
			name = s.name,
			file = s.file,
			tags = array(s.tags),
			timestamp = s.timestamp,
			duration_ms = s.duration_ms or 0,
			log = s.log,
			image = s.image,
			cases = cases,
		}
	end
	return {
		schema = M.SCHEMA,
		rig = {
			name = run.rig_info.name,
			device_type = run.rig_info.device_type,
			capabilities = array(run.rig_info.capabilities),
		},
		hostname = run.hostname,
		rigor_version = core.version,
		timestamp = run.timestamp,
		duration_ms = run.duration_ms or 0,
		exit_code = run.exit_code,
		interrupted = run.interrupted,
		selection = { case = run.selection.case, tags = array(run.selection.tags) },
		files = array(run.files),
		artifacts = run.artifacts,
		totals = {
			cases = run.totals.cases,
			passed = run.totals.passed,
			failed = run.totals.failed,
			errors = run.totals.errors,
			skipped = run.totals.skipped,
		},
		infra_errors = array(run.infra_errors),
		image = run.image,
		images = array(run.images),
		suites = suites,
	}
end

-- Makes every string valid UTF-8 (console bytes in messages may not be) and without NUL,
-- which many JSON readers (jansson by default) refuse even as \u0000.
local function clean(v)
	if type(v) == "string" then
		return (util.utf8_clean(v):gsub("%z", "\\x00"))
	elseif type(v) == "table" then
		for k, x in pairs(v) do
			v[k] = clean(x)
		end
	end
	return v
end

function M:finish(run)
	local text = core.json_encode(clean(M.document(run)), 2)
	util.commit_report(self, text .. "\n")
end

return M
