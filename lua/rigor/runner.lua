-- SPDX-License-Identifier: MIT
-- rigor.runner: loads testcase files, selects cases, runs them against a rig with
-- deadlines and guaranteed cleanup, and feeds the reporters.
--
--   local code = require("rigor.runner").main{ files = {...}, rig = rig, ... }
--
-- The argument table and the exit codes are documented in docs/lua-api.md.

local core = require "rigor.core"
local T = require "rigor.test"
local util = require "rigor.util"

local M = {}

M.EXIT_OK = 0
M.EXIT_FAIL = 1
M.EXIT_USAGE = 2
M.EXIT_INFRA = 3
M.EXIT_SIGINT = 130
-- How long the top level of one testcase file may run when it is loaded.
M.LOAD_TIMEOUT_MS = 10000
M.EXIT_SIGTERM = 143

local REPORTERS = { "human", "tap", "junit", "json" }

-- Frames from these sources are never "where" an error happened.
local RUNNER_SOURCES = {
	[debug.getinfo(1, "S").source] = true,
	[debug.getinfo(T.fail, "S").source] = true,
	[debug.getinfo(core.sleep, "S").source] = true, -- a Lua stand-in for rigor.core
}

---------------------------------------------------------------------------------------------
-- Error capture

-- Where an error was raised from: the first Lua frame outside the runner/test modules.
local function where_from(level)
	for l = level, level + 40 do
		local info = debug.getinfo(l, "Sln")
		if not info then
			break
		end
		if info.what ~= "C" and not RUNNER_SOURCES[info.source] and info.namewhat ~= "hook"
			and info.currentline > 0 then
			return info.short_src .. ":" .. info.currentline
		end
	end
	return nil
end

local INTERNAL_SHORT = {}
for src in pairs(RUNNER_SOURCES) do
	if src:sub(1, 1) == "@" then
		INTERNAL_SHORT[#INTERNAL_SHORT + 1] = src:sub(2)
	end
end

local function is_internal_line(line)
	for _, s in ipairs(INTERNAL_SHORT) do
		if line:find(s, 1, true) then
			return true
		end
	end
	return false
end

-- Keeps the testcase's part of a traceback: drops the raise machinery at the top (error,
-- hooks, rigor.test) and everything from the runner's own frames down.
local function trim_traceback(tb)
	local lines = {}
	for line in tb:gmatch("[^\n]+") do
		lines[#lines + 1] = line
	end
	local out = { "stack traceback:" }
	local started = false
	for i = 2, #lines do
		local l = lines[i]
		if l:find(debug.getinfo(1, "S").short_src, 1, true) then
			break
		end
		if started or not (l:find("^%s*%[C%]") or is_internal_line(l)) then
			started = true
			out[#out + 1] = l
		end
	end
	return table.concat(out, "\n")
end
M._trim_traceback = trim_traceback

-- Message handler for xpcall: runs at the raise point, so it can take the traceback.
-- Disarms first so that the deadline hook cannot fire inside the handler.
local function capture(e)
	core.disarm()
	local kind = T.classify(e)
	local info = { value = e, kind = kind }
	if kind == "fail" then
		info.message = e.message
		info.where = e.where
		info.traceback = e.traceback and trim_traceback(e.traceback)
	elseif kind == "skip" then
		info.message = e.reason
	else
		info.message = util.describe_error(e)
		info.traceback = trim_traceback(debug.traceback("", 2))
		if kind == "abort" then
			info.abort = e.rigor_abort
			info.where = where_from(2)
		elseif type(e) ~= "string" then
			info.where = where_from(2)
		end
	end
	return info
end

-- Runs fn(...) protected; with a deadline when `deadline` is given. Returns nil on success
-- or the captured error info.
local function protected(deadline, fn, ...)
	local args = table.pack(...)
	local ok, info = xpcall(function()
		if deadline then
			core.arm(deadline)
		end
		fn(table.unpack(args, 1, args.n))
		if deadline then
			core.disarm()
		end
	end, capture)
	if deadline then
		core.disarm()
	end
	-- os.exit() raises (see rigor.core); taken here whether or not the code caught it
	local exit_code = core.exit_called and core.exit_called()
	if ok and exit_code then
		return { kind = "abort", abort = "exit", message = string.format(
			"os.exit(%d) called: a case ends by returning or raising an error", exit_code) }
	end
	if ok then
		-- The code may have swallowed the timeout or interrupt error (pcall in a loop);
		-- it still overran its deadline or was interrupted.
		local sig = deadline and core.interrupted()
		if sig then
			return { kind = "abort", abort = sig, message = "interrupted by " .. sig }
		elseif deadline and core.now_ms() >= deadline then
			return { kind = "abort", abort = "timeout", message = "deadline passed" }
		end
		return nil
	end
	if type(info) ~= "table" or info.kind == nil then
		-- capture() itself failed (e.g. out of memory): keep what we can.
		info = { kind = "error", message = util.describe_error(info) }
	end
	return info
end

---------------------------------------------------------------------------------------------
-- Loading and selection

local function load_files(files, errs)
	local suites, by_name = {}, {}
	T._take_registered()
	for _, path in ipairs(files) do
		local chunk, lerr = loadfile(path, "t")
		if not chunk then
			errs[#errs + 1] = string.format("cannot load '%s': %s", path, lerr)
		else
			-- top-level code of a suite file runs under a deadline too: an endless loop
			-- there must not hang `rigor run` or `rigor list`
			local ret
			local info = protected(core.now_ms() + M.LOAD_TIMEOUT_MS, function()
				ret = chunk()
			end)
			local got = T._take_registered()
			if info then
				local msg = info.message
				if info.abort == "timeout" then
					msg = string.format("did not finish within %d ms (an endless loop at the top "
						.. "level?)%s", M.LOAD_TIMEOUT_MS, info.where and " at " .. info.where or "")
				elseif info.traceback and info.kind == "error" then
					msg = msg .. "\n" .. info.traceback
				end
				errs[#errs + 1] = string.format("error loading '%s': %s", path, tostring(msg))
			else
				local seen = {}
				for _, s in ipairs(got) do
					seen[s] = true
				end
				if getmetatable(ret) == T.Suite and not seen[ret] then
					got[#got + 1] = ret
				elseif type(ret) == "table" and getmetatable(ret) == nil then
					for _, s in ipairs(ret) do
						if getmetatable(s) == T.Suite and not seen[s] then
							got[#got + 1] = s
						end
					end
				end
				if #got == 0 then
					errs[#errs + 1] = string.format("'%s' defines no suite", path)
				end
				for _, s in ipairs(got) do
					if by_name[s.name] then
						errs[#errs + 1] = string.format("duplicate suite '%s' in '%s' and '%s'",
							s.name, by_name[s.name].path, path)
					else
						s.path = path
						by_name[s.name] = s
						suites[#suites + 1] = s
					end
				end
			end
		end
	end
	return suites
end

local function matches_case(id, pattern)
	if id:find(pattern, 1, true) then
		return true
	end
	local ok, res = pcall(string.find, id, pattern)
	return ok and res ~= nil
end

local function has_tag(suite, case, tag)
	for _, t in ipairs(suite.tags) do
		if t == tag then
			return true
		end
	end
	for _, t in ipairs(case.tags) do
		if t == tag then
			return true
		end
	end
	return false
end

--- Selection: `pattern` is a Lua pattern or plain substring of "suite/case"; `tags` selects
--- cases carrying any listed tag (suite tags count), and "!tag" excludes a tag.
function M.selected(suite, case, pattern, tags)
	if pattern and not matches_case(suite.name .. "/" .. case.name, pattern) then
		return false
	end
	if tags and #tags > 0 then
		local want, wanted = false, false
		for _, tag in ipairs(tags) do
			local neg = tag:match("^!(.+)$")
			if neg then
				if has_tag(suite, case, neg) then
					return false
				end
			else
				want = true
				wanted = wanted or has_tag(suite, case, tag)
			end
		end
		if want and not wanted then
			return false
		end
	end
	return true
end

---------------------------------------------------------------------------------------------
-- Rig helpers

local function rig_has(rig, cap)
	if type(rig.has) == "function" then
		return rig:has(cap) and true or false
	end
	for _, c in ipairs(rig.capabilities or {}) do
		if c == cap then
			return true
		end
	end
	return false
end

local function missing_capability(rig, requires)
	for _, cap in ipairs(requires) do
		if not rig_has(rig, cap) then
			return string.format("rig lacks capability '%s'", cap)
		end
	end
	return nil
end

---------------------------------------------------------------------------------------------
-- The run

local Run = {}
Run.__index = Run

function Run:emit(method, ...)
	for _, r in ipairs(self.reporters) do
		if r[method] then
			local ok, err = pcall(r[method], r, self, ...)
			if not ok then
				self.err(string.format("rigor: reporter '%s' failed in %s: %s\n", r.name or "?",
					method, tostring(err)))
				self.infra_errors[#self.infra_errors + 1] = "reporter " .. (r.name or "?")
					.. ": " .. tostring(err)
			end
		end
	end
end

function Run:open_log(path, append)
	if not path then
		return
	end
	-- Create/truncate first (unless reopening, as the suite log is for after_all); the rig
	-- and the runner then both append.
	if not append then
		local f = io.open(path, "w")
		if f then
			f:close()
		end
	end
	self:rig_call_log_to(path)
	local lf = io.open(path, "a+")   -- '+': Run:log reads the last byte
	if lf then
		lf:setvbuf("line")
	end
	self.logf = lf
	self.log_t0 = core.now_ms()
	T._log_writer = function(line)
		self:log("test", line)
	end
end

function Run:close_log()
	T._log_writer = nil
	if self.logf then
		self.logf:close()
		self.logf = nil
	end
	if self.log_path_active then
		self:rig_call_log_to(nil)
	end
end

-- Log line stamps: local wall-clock time "[HH:MM:SS.mmm]" like the rig's own lines when
-- rigor.core offers wall_ms(), else seconds since the log was opened.
local function stamp(run)
	if core.wall_ms then
		local ms = core.wall_ms()
		return string.format("[%s.%03d]", os.date("%H:%M:%S", ms // 1000), ms % 1000)
	end
	return string.format("[+%.3f]", (core.now_ms() - run.log_t0) / 1000)
end

-- Whether the file ends inside a line: the rig appends console bytes to the same file
-- through its own handle, and a console line may be unfinished ("login: ").
local function ends_mid_line(f)
	local size = f:seek("end")
	if not size or size == 0 or not f:seek("set", size - 1) then
		return false
	end
	local last = f:read(1)
	f:seek("end")
	return last ~= nil and last ~= "\n"
end

function Run:log(who, text)
	if self.logf then
		local st = stamp(self)
		if ends_mid_line(self.logf) then
			self.logf:write("\n")   -- the rig goes on with that line as "console (continued)"
		end
		for line in (tostring(text) .. "\n"):gmatch("(.-)\n") do
			self.logf:write(string.format("%s %s: %s\n", st, who, line))
		end
	end
end

function Run:infra(msg)
	self.infra_errors[#self.infra_errors + 1] = msg
	self.err("rigor: " .. msg .. "\n")
end

function Run:rig_call_log_to(path)
	if type(self.rig.log_to) ~= "function" then
		return
	end
	local ok, r1, r2 = pcall(self.rig.log_to, self.rig, path)
	if not ok or r1 == nil then
		self:infra(string.format("rig:log_to(%s) failed: %s", path and ("'" .. path .. "'") or "nil",
			util.describe_error(ok and r2 or r1)))
	end
	self.log_path_active = path ~= nil
end

-- Puts the rig in its safe state. Returns nil or an error message (an infra error).
function Run:safe(what)
	if type(self.rig.safe) ~= "function" then
		return nil
	end
	local ok, r1, r2 = pcall(self.rig.safe, self.rig)
	local msg
	if not ok then
		msg = util.describe_error(r1)
	elseif r1 == nil and r2 ~= nil then
		msg = util.describe_error(r2)
	end
	self.safe_calls = self.safe_calls + 1
	if msg then
		msg = string.format("rig:safe() failed after %s: %s", what, msg)
		self:log("runner", msg)
		self:infra(msg)
	end
	return msg
end

-- The image identity rig:flash() leaves in rig.image (docs/lua-api.md): each flash makes a
-- new table, so a table not seen before means a hook or case flashed an image. The run
-- keeps it (run.image, run.images), the suite it happened in too (suite_rec.images), the
-- case log says so, and reporters with an image() method hear of it at once.
local IMAGE_KEYS = { "name", "path", "sha256", "version", "format", "size", "raw_size",
	"bootloader", "device_type" }

function Run:note_image(suite_rec, quiet)
	local ok, img = pcall(function() return self.rig.image end)
	if not ok or type(img) ~= "table" or img == self.seen_image then
		return
	end
	self.seen_image = img
	local rec = {}
	for _, k in ipairs(IMAGE_KEYS) do
		local v = img[k]
		if type(v) == "string" or math.type(v) == "integer" then
			rec[k] = v
		end
	end
	if type(img.os_release) == "table" and type(img.os_release.ID) == "string" then
		rec.os_id = img.os_release.ID
	end
	rec.name = rec.name or "?"
	self.image = rec
	self.images[#self.images + 1] = rec
	if suite_rec then
		suite_rec.images = suite_rec.images or {}
		suite_rec.images[#suite_rec.images + 1] = rec
	end
	if not quiet then
		self:log("runner", string.format("image %s: version %s, sha256 %s", rec.name,
			rec.version or "unknown", rec.sha256 or "unknown"))
		self:emit("image", suite_rec, rec)
	end
end

function Run:check_interrupt()
	local sig = core.interrupted()
	if sig and not self.interrupted then
		self.interrupted = sig
	end
	return self.interrupted
end

local function new_result(suite, case)
	return {
		suite = suite.name,
		name = case.name,
		id = suite.name .. "/" .. case.name,
		file = case.file,
		line = case.line,
		tags = case.tags,
		requires = case.requires,
		status = "pass",
		duration_ms = 0,
		notes = {},
	}
end

-- Applies captured error `info` from `phase` to result r (only the first problem counts as
-- the status; later ones become notes).
local function apply_error(r, info, phase, timeout_ms)
	local msg = info.message or "?"
	local status
	if info.kind == "skip" then
		status = "skip"
	elseif info.kind == "fail" then
		status = "fail"
	else
		status = "error"
		if info.kind == "abort" then
			if info.abort == "timeout" then
				msg = string.format("timed out after %d ms", timeout_ms or 0)
			elseif info.abort == "exit" then
				msg = info.message
			else
				msg = "interrupted by " .. tostring(info.abort)
			end
			if info.where then
				msg = msg .. " (at " .. info.where .. ")"
			end
		end
	end
	if phase ~= "case" then
		msg = phase .. ": " .. msg
	end
	if r.status == "pass" then
		r.status = status
		r.message = msg
		r.where = info.where
		r.traceback = info.traceback
		r.abort = info.abort
		r.infra = info.kind == "infra" or nil
	else
		r.notes[#r.notes + 1] = (status == "skip" and "skip in " or "") .. msg
		if info.kind == "infra" then
			r.infra = true
		end
	end
end

function Run:finish_result(suite_rec, r)
	if r.infra then
		self.had_infra = true
	end
	local t = self.totals
	t.cases = t.cases + 1
	local key = ({ pass = "passed", fail = "failed", error = "errors", skip = "skipped" })[r.status]
	t[key] = t[key] + 1
	suite_rec.cases[#suite_rec.cases + 1] = r
	self:emit("case_end", suite_rec, r)
end

function Run:case_ctx(suite, case, r, log)
	return {
		name = case.name,
		suite = suite.name,
		id = r.id,
		tags = case.tags,
		timeout = case.timeout or suite.timeout,
		log = log,
		artifacts = self.artifacts and self.artifacts .. "/" .. suite.slug or nil,
		rig = self.rig,
	}
end

function Run:run_case(suite, suite_rec, case)
	local rig = self.rig
	local r = new_result(suite, case)
	self:emit("case_start", suite_rec, r)
	local why = case.skip_reason or missing_capability(rig, case.requires)
	if why then
		r.status, r.message = "skip", why
		self:finish_result(suite_rec, r)
		return
	end
	local log
	if self.artifacts then
		log = self.artifacts .. "/" .. suite.slug .. "/"
			.. util.unique_slug(case.name, suite.case_slugs) .. ".log"
		r.log = log
	end
	local timeout = case.timeout or suite.timeout
	local ctx = self:case_ctx(suite, case, r, log)
	r.case = ctx
	self:open_log(log)
	self:log("runner", string.format("case '%s' start (timeout %d ms)", r.id, timeout))

	local t0 = core.now_ms()
	local phase = "before_each"
	local info = protected(t0 + timeout, function()
		for _, h in ipairs(suite.hooks.before_each) do
			h(rig, ctx)
		end
		phase = "case"
		case.fn(rig, ctx)
	end)
	r.duration_ms = core.now_ms() - t0
	if info then
		apply_error(r, info, phase, timeout)
	end
	ctx.status, ctx.message = r.status, r.message

	-- Cleanup: always, disarmed, every step regardless of the others.
	for _, h in ipairs(suite.hooks.after_each) do
		local hinfo = protected(nil, h, rig, ctx)
		if hinfo then
			apply_error(r, hinfo, "after_each")
		end
	end
	self:note_image(suite_rec)
	if suite.safe_state then
		local msg = self:safe("case '" .. r.id .. "'")
		if msg then
			r.infra = true
			if r.status == "pass" then
				r.status, r.message = "error", msg
			else
				r.notes[#r.notes + 1] = msg
			end
		end
	end
	self:check_interrupt()
	local line = string.format("case '%s' %s (%d ms)", r.id, r.status, r.duration_ms)
	if r.message then
		line = line .. ": " .. (r.where and r.status ~= "error" and r.where .. ": " or "")
			.. r.message
	end
	self:log("runner", line)
	for _, n in ipairs(r.notes) do
		self:log("runner", "also: " .. n)
	end
	if r.traceback and r.status ~= "skip" then
		self:log("runner", r.traceback)
	end
	self:close_log()
	self:finish_result(suite_rec, r)
end

function Run:run_suite(suite, cases)
	local rig = self.rig
	local suite_rec = {
		name = suite.name,
		file = suite.path,
		tags = suite.tags,
		cases = {},
		timestamp = util.iso_time(),
	}
	suite.slug = util.unique_slug(suite.name, self.suite_slugs)
	suite.case_slugs = { ["suite"] = true }
	self.suites[#self.suites + 1] = suite_rec
	local t0 = core.now_ms()
	self:emit("suite_start", suite_rec)

	local why = suite.skip_reason or missing_capability(rig, suite.requires)
	if why then
		for _, c in ipairs(cases) do
			local r = new_result(suite, c)
			r.status, r.message = "skip", why
			self:finish_result(suite_rec, r)
		end
		suite_rec.duration_ms = core.now_ms() - t0
		self:emit("suite_end", suite_rec)
		return
	end

	self.ran_suites = self.ran_suites + 1
	if suite.safe_state then
		self.safe_suites = self.safe_suites + 1
	end
	if self.artifacts then
		local dir = self.artifacts .. "/" .. suite.slug
		local ok, err = core.mkdir_p(dir)
		if not ok then
			self:infra(string.format("cannot create '%s': %s", dir, tostring(err)))
		else
			suite_rec.log = dir .. "/suite.log"
		end
	end
	local suite_ctx = { name = suite.name, suite = suite.name, id = suite.name,
		tags = suite.tags, log = suite_rec.log, rig = rig,
		artifacts = self.artifacts and self.artifacts .. "/" .. suite.slug or nil }

	-- Only when a case will run: hooks that flash a card for cases that all skip waste
	-- minutes and can fail for no reason.
	local runnable = false
	for _, c in ipairs(cases) do
		runnable = runnable or not (c.skip_reason or missing_capability(rig, c.requires))
	end
	if not runnable then
		for _, c in ipairs(cases) do
			self:run_case(suite, suite_rec, c)
		end
		suite_rec.duration_ms = core.now_ms() - t0
		self:emit("suite_end", suite_rec)
		return
	end

	self:open_log(suite_rec.log)
	self:log("runner", string.format("suite '%s' before_all", suite.name))
	local hook_at
	local binfo = protected(core.now_ms() + suite.timeout, function()
		for _, h in ipairs(suite.hooks.before_all) do
			local d = debug.getinfo(h, "S")
			hook_at = d and d.short_src .. ":" .. d.linedefined
			h(rig, suite_ctx)
		end
	end)
	self:note_image(suite_rec)
	if binfo then
		binfo.hook_where = binfo.where or hook_at
	end
	if binfo then
		self:log("runner", "before_all: " .. tostring(binfo.message))
		if binfo.traceback then
			self:log("runner", binfo.traceback)
		end
	end
	self:close_log()
	self:check_interrupt()

	for _, c in ipairs(cases) do
		if self.interrupted then
			break
		end
		if binfo then
			if binfo.kind == "abort" and binfo.abort ~= "timeout" and binfo.abort ~= "exit" then
				break
			end
			local r = new_result(suite, c)
			apply_error(r, binfo, "before_all", suite.timeout)
			if r.status ~= "skip" then
				r.status = "error"
			end
			-- where it failed and what it logged: the hook's file:line, the suite log
			r.where = r.where or binfo.hook_where
			r.log = suite_rec.log
			if r.status == "error" and r.where and not r.message:find(r.where, 1, true) then
				r.message = r.message .. " (at " .. r.where .. ")"
			end
			self:finish_result(suite_rec, r)
		else
			self:run_case(suite, suite_rec, c)
		end
	end

	self:open_log(suite_rec.log, true)
	self:log("runner", string.format("suite '%s' after_all", suite.name))
	local ainfo = protected(nil, function()
		for _, h in ipairs(suite.hooks.after_all) do
			h(rig, suite_ctx)
		end
	end)
	self:note_image(suite_rec)
	if ainfo and ainfo.kind ~= "skip" then
		self:log("runner", "after_all: " .. tostring(ainfo.message))
		if ainfo.traceback then
			self:log("runner", ainfo.traceback)
		end
		local r = new_result(suite, { name = "after_all", tags = {}, requires = {},
			file = suite.file, line = suite.line })
		apply_error(r, ainfo, "after_all")
		if r.status ~= "fail" then
			r.status = "error"
		end
		r.log = suite_rec.log
		self:finish_result(suite_rec, r)
	end
	if suite.safe_state then
		self:safe("suite '" .. suite.name .. "'")
	end
	self:close_log()
	self:check_interrupt()
	suite_rec.image = self.image
	suite_rec.duration_ms = core.now_ms() - t0
	self:emit("suite_end", suite_rec)
end

---------------------------------------------------------------------------------------------
-- Entry point

local function make_reporters(run, spec, errs)
	local list = {}
	for _, name in ipairs(REPORTERS) do
		local v = spec[name]
		if v then
			local mod = require("rigor.report." .. name)
			local r, err = mod.new(v, run, spec)
			if not r then
				errs[#errs + 1] = err
			else
				r.name = name
				list[#list + 1] = r
			end
		end
	end
	for k in pairs(spec) do
		local known = false
		for _, n in ipairs(REPORTERS) do
			known = known or n == k
		end
		if not known and k ~= "tap_version" then
			errs[#errs + 1] = string.format("unknown reporter '%s'", tostring(k))
		end
	end
	return list
end

local SIGNAL_EXIT = { SIGINT = 130, SIGTERM = 143, SIGHUP = 129, SIGQUIT = 131 }

local function exit_code(run)
	if run.interrupted then
		return SIGNAL_EXIT[run.interrupted] or M.EXIT_SIGINT
	elseif run.had_infra or #run.infra_errors > 0 then
		return M.EXIT_INFRA
	elseif run.totals.failed + run.totals.errors > 0 then
		return M.EXIT_FAIL
	end
	return M.EXIT_OK
end

--- Prints the selected cases ("suite/case [tags]", one per line) or, with
--- args.suites_only, the suites ("suite (N cases) [tags]"), without running anything.
--- With args.json, one JSON document instead (schema rigor.cases/1 or rigor.suites/1;
--- docs/rigor.1), valid whatever the names hold: bytes that are not UTF-8 are escaped.
--- args: files, case, tags, suites_only, json, out, err. Returns 0, or 2 when a file fails
--- to load.
function M.list(args)
	local out = args.out or function(s) io.stdout:write(s) end
	local err = args.err or function(s) io.stderr:write(s) end
	local tags = type(args.tags) == "string" and { args.tags } or args.tags
	local errs = {}
	local suites = load_files(args.files or {}, errs)
	if #errs > 0 then
		for _, e in ipairs(errs) do
			err("rigor: " .. e .. "\n")
		end
		return M.EXIT_USAGE
	end
	local function tag_list(...)
		local tl = {}
		for _, list in ipairs({ ... }) do
			for _, tag in ipairs(list) do
				tl[#tl + 1] = tag
			end
		end
		return #tl > 0 and " [" .. table.concat(tl, ",") .. "]" or ""
	end
	local function jstr(s)
		return util.utf8_clean(tostring(s))
	end
	local function jtags(...)
		local tl = setmetatable({}, core.array_mt)
		for _, list in ipairs({ ... }) do
			for _, tag in ipairs(list) do
				tl[#tl + 1] = jstr(tag)
			end
		end
		return tl
	end
	local jlist = setmetatable({}, core.array_mt)
	for _, s in ipairs(suites) do
		local n = 0
		for _, c in ipairs(s.cases) do
			if M.selected(s, c, args.case, tags) then
				n = n + 1
				if args.json and not args.suites_only then
					jlist[#jlist + 1] = { id = jstr(s.name .. "/" .. c.name), suite = jstr(s.name),
						name = jstr(c.name), tags = jtags(s.tags, c.tags), file = jstr(s.path) }
				elseif not args.suites_only then
					out(s.name .. "/" .. c.name .. tag_list(s.tags, c.tags) .. "\n")
				end
			end
		end
		if args.suites_only and n > 0 then
			if args.json then
				jlist[#jlist + 1] = { name = jstr(s.name), cases = n, tags = jtags(s.tags),
					file = jstr(s.path) }
			else
				out(string.format("%s (%d %s)%s\n", s.name, n, n == 1 and "case" or "cases",
					tag_list(s.tags)))
			end
		end
	end
	if args.json then
		local doc = args.suites_only and { schema = "rigor.suites/1", suites = jlist }
			or { schema = "rigor.cases/1", cases = jlist }
		out(core.json_encode(doc) .. "\n")
	end
	return M.EXIT_OK
end

--- Turns command-line words into a runner.main argument table (without rig, out, err).
--- This is the one parser of `rigor run` (and of `rigor list`'s options): the C command
--- hands its argv over untouched (rigl_run(), host/lua/lrun.c).
--- Returns the table, or nil and a message (a usage error).
---   [--case PATTERN] [--tag TAG]... [--tap FILE] [--tap-version 13|14] [--junit FILE]
---   [--json FILE] [--artifacts DIR] [-q|--quiet] [--color|--no-color] [--list] FILE...
--- With kind "list" (`rigor list`), only --case, --tag and -- are options, and no file
--- is not an error.
function M.parse_argv(argv, kind)
	local a = { files = {}, tags = {}, reporters = { human = true } }
	local run = kind ~= "list"
	local ok, e = util.walk_argv(argv, function(w, value, rest)
		if w == "--case" then
			a.case = value(w)
		elseif w == "--tag" then
			a.tags[#a.tags + 1] = value(w)
		elseif run and (w == "--tap" or w == "--junit" or w == "--json") then
			a.reporters[w:sub(3)] = value(w)
		elseif run and w == "--tap-version" then
			-- 13 for harnesses older than Test::Harness 3.48 (Debian 12's prove)
			local v = value(w)
			if v ~= "13" and v ~= "14" then
				util.usage_error("option '--tap-version' takes 13 or 14, not '" .. v .. "'")
			end
			a.reporters.tap_version = math.tointeger(tonumber(v))
		elseif run and w == "--artifacts" then
			a.artifacts = value(w)
		elseif run and (w == "--quiet" or w == "-q") then
			a.reporters.human = false
		elseif run and w == "--color" then
			a.color = true
		elseif run and w == "--no-color" then
			a.color = false
		elseif run and w == "--list" then
			a.list = true
		elseif w == "--" then
			local r = rest()
			table.move(r, 1, #r, #a.files + 1, a.files)
		elseif w:sub(1, 1) == "-" and w ~= "-" then
			util.usage_error("unknown option '" .. w .. "'")
		else
			a.files[#a.files + 1] = w
		end
	end)
	if not ok then
		return nil, e
	end
	if #a.files == 0 and run then
		return nil, "no testcase files given"
	end
	return a
end

-- FILE stays, DIR becomes its *.lua files (sorted) through env.expand; nil, msg on error.
local function expand_files(files, env)
	if not env.expand then
		return files
	end
	local all = {}
	for _, f in ipairs(files) do
		local list, xerr = env.expand(f)
		if not list then
			return nil, xerr
		end
		table.move(list, 1, #list, #all + 1, all)
	end
	return all
end

--- `rigor run ARGS...`: parses @argv (parse_argv), then lists the selection (--list: no
--- rig is opened or locked) or opens the rig and runs it (main). @env supplies what only
--- the host knows: out, err (writers), color (the default of --color/--no-color),
--- expand(path) (a file stays, a directory becomes its *.lua files; nil, msg when it
--- cannot be read) and open_rig() (the rig, or nil and an exit code).
--- Returns the exit code.
function M.cli(argv, env)
	env = env or {}
	local err = env.err or function(s) io.stderr:write(s) end
	local a, msg = M.parse_argv(argv)
	local files
	if a then
		files, msg = expand_files(a.files, env)
	end
	if not files then
		err("rigor: run: " .. msg .. " (see 'rigor run --help')\n")
		return M.EXIT_USAGE
	end
	a.files, a.out, a.err = files, env.out, env.err
	if a.color == nil then
		a.color = env.color and true or false
	end
	if a.list then
		return M.list(a)
	end
	local rig, code = env.open_rig and env.open_rig()
	if not rig then
		return code or M.EXIT_INFRA
	end
	a.rig = rig
	return M.main(a)
end

--- `rigor list suites|cases ARGS...`: [--case PATTERN] [--tag TAG]... [FILE|DIR...]
--- (default: @env.default, e.g. "testcases"), listed by M.list. @env as for M.cli.
function M.cli_list(argv, env, suites_only)
	env = env or {}
	local err = env.err or function(s) io.stderr:write(s) end
	-- --json: the global option (the C command passes it first) or typed after the kind
	local json, words = false, {}
	for _, w in ipairs(argv) do
		if w == "--json" then
			json = true
		else
			words[#words + 1] = w
		end
	end
	local a, msg = M.parse_argv(words, "list")
	local files
	if a then
		if #a.files == 0 and env.default then
			a.files[1] = env.default
		end
		files, msg = expand_files(a.files, env)
	end
	if not files then
		err("rigor: list: " .. msg .. " (see 'rigor list --help')\n")
		return M.EXIT_USAGE
	end
	return M.list{ files = files, case = a.case, tags = a.tags, suites_only = suites_only,
		json = json, out = env.out, err = env.err }
end

--- Runs testcase files against a rig; returns the exit code. See docs/lua-api.md.
function M.main(args)
	local out = args and args.out or function(s) io.stdout:write(s) end
	local err = args and args.err or function(s) io.stderr:write(s) end
	local errs = {}
	if type(args) ~= "table" then
		err("rigor: runner.main expects an argument table\n")
		return M.EXIT_USAGE
	end
	if type(args.files) ~= "table" then
		errs[#errs + 1] = "no testcase files given"
	end
	if not args.list and type(args.rig) ~= "table" and type(args.rig) ~= "userdata" then
		errs[#errs + 1] = "no rig given"
	end
	if args.case ~= nil and type(args.case) ~= "string" then
		errs[#errs + 1] = "case pattern must be a string"
	end
	local tags = args.tags
	if type(tags) == "string" then
		tags = { tags }
	end
	if tags ~= nil and type(tags) ~= "table" then
		errs[#errs + 1] = "tags must be a list of strings"
	end
	if #errs > 0 then
		for _, e in ipairs(errs) do
			err("rigor: " .. e .. "\n")
		end
		return M.EXIT_USAGE
	end

	local run = setmetatable({
		rig = args.rig,
		out = out,
		err = err,
		color = args.color and true or false,
		artifacts = args.artifacts,
		files = args.files,
		selection = { case = args.case, tags = tags or {} },
		suites = {},
		totals = { cases = 0, passed = 0, failed = 0, errors = 0, skipped = 0 },
		infra_errors = {},
		safe_calls = 0,
		ran_suites = 0,
		safe_suites = 0,
		suite_slugs = {},
		started = os.time(),
		timestamp = util.iso_time(),
		hostname = util.hostname(),
		reports = {},
		images = {},
	}, Run)
	local suites = load_files(args.files, errs)
	if args.list then
		return M.list(args)
	end
	run.rig_info = {
		name = tostring(args.rig.name or "unnamed"),
		device_type = args.rig.device_type and tostring(args.rig.device_type) or nil,
		capabilities = args.rig.capabilities or {},
	}

	local plan, ncases = {}, 0
	for _, s in ipairs(suites) do
		local cases = {}
		for _, c in ipairs(s.cases) do
			if M.selected(s, c, args.case, tags) then
				cases[#cases + 1] = c
			end
		end
		if #cases > 0 then
			plan[#plan + 1] = { suite = s, cases = cases }
			ncases = ncases + #cases
		end
	end
	run.planned_cases = ncases
	run.planned_suites = #plan

	if run.artifacts then
		local ok, merr = core.mkdir_p(run.artifacts)
		if not ok then
			errs[#errs + 1] = string.format("cannot create artifacts directory '%s': %s",
				run.artifacts, tostring(merr))
		end
	end
	local spec = args.reporters or { human = true }
	run.reporters = make_reporters(run, spec, errs)
	if #errs > 0 then
		for _, e in ipairs(errs) do
			err("rigor: " .. e .. "\n")
		end
		for _, r in ipairs(run.reporters) do
			if r.abandon then
				pcall(r.abandon, r)
			end
		end
		return M.EXIT_USAGE
	end

	local t0 = core.now_ms()
	-- a script that flashed before calling the runner: reporters show it from the start
	run:note_image(nil, true)
	run:emit("start")
	run:check_interrupt()
	for _, p in ipairs(plan) do
		if run.interrupted then
			break
		end
		run:run_suite(p.suite, p.cases)
	end
	if run.ran_suites == 0 or run.safe_suites > 0 then
		run:safe("the run")
	end
	run:check_interrupt()
	run.duration_ms = core.now_ms() - t0
	run.exit_code = exit_code(run)
	run:emit("finish")
	-- A reporter failing to write its file changes the outcome.
	run.exit_code = exit_code(run)
	return run.exit_code
end

return M
