-- SPDX-License-Identifier: MIT
-- rigor.gate: `rigor gate GATEFILE`, a release's board x suite matrix over this host's
-- rigs, and `rigor gate merge`. docs/release-gate.md is the user's guide; this header
-- is the design.
--
-- Cells. A cell is one suite file on one device type. Every rig of that device type
-- (after the board's name and capability filters) serves the cells of its type from one
-- queue: a rig runs one `rigor run` process at a time (its own lock, its own reports and
-- artifacts), different rigs run at the same time. rigor gate itself never opens a rig.
--
-- Infrastructure vs test. `rigor run` exits 3 for an infrastructure error. Such an
-- attempt is retried (retries.infra times): first on the same rig, then preferring rigs
-- of the device type that have not tried it. A case that fails (or errors) in a
-- completed attempt is re-run alone (retries.rerun times, `--case` anchored to its id)
-- on any rig of the type: failing every time makes it "failed", passing once "flaky".
--
-- Verdict (exit code). Only required cells decide. 1 when a required cell has a failed
-- case that is not quarantined (or a flaky one under flaky = "fail"): the release is
-- broken whatever else happened, so this wins over 3. Else 3 when a required cell could
-- not be decided: its last attempt ended in an infrastructure error, no rig of its device
-- type exists here, every case of it skipped, or the gate was interrupted (then 128+N).
-- Else 0. Quarantined cases and informative cells are reported, never decisive.
--
-- Results: OUT/gate.json (schema rigor.gate/1, lua/schema/gate.schema.json), OUT/gate.md,
-- OUT/gate.html, and per attempt OUT/runs/NNN-RIG-SUITE[-rerun-CASE]/ with the child's
-- results.json, junit.xml, results.tap, output.log and artifacts/.

local core = require "rigor.core"
local util = require "rigor.util"
local gatefile = require "rigor.gatefile"
local shq = require("rigor.shell").quote

local M = {}

M.SCHEMA = "rigor.gate/1"
M.EXIT_OK, M.EXIT_FAIL, M.EXIT_USAGE, M.EXIT_INFRA = 0, 1, 2, 3
local SIGNAL_EXIT = { SIGINT = 130, SIGTERM = 143, SIGHUP = 129, SIGQUIT = 131 }

local function array(t)
	return setmetatable(t or {}, core.array_mt)
end

local function read_json(path)
	local s = util.read_file(path)
	if not s then
		return nil, "cannot read '" .. path .. "'"
	end
	local ok, v = pcall(core.json_decode, s)
	if not ok or type(v) ~= "table" then
		return nil, "'" .. path .. "' is not JSON: " .. tostring(v)
	end
	return v
end

local function basename(p)
	return (p:match("([^/]+)$") or p)
end

local function suite_label(file)
	return (basename(file):gsub("%.lua$", ""))
end

-- Lua pattern that matches exactly `s` (rigor run --case takes a pattern or substring).
local function exact_pattern(s)
	return "^" .. s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0") .. "$"
end

local function cwd()
	local ok, _, _, out = core.spawn("pwd", nil, true)
	return ok and out:gsub("\n$", "") or "."
end

local function abspath(p, base)
	if p:sub(1, 1) == "/" then
		return p
	end
	return (base or cwd()) .. "/" .. p:gsub("^%./", "")
end

-- `to` relative to directory `from`, both absolute.
local function relpath(to, from)
	local a, b = {}, {}
	for x in to:gmatch("[^/]+") do a[#a + 1] = x end
	for x in from:gmatch("[^/]+") do b[#b + 1] = x end
	local i = 1
	while a[i] and b[i] and a[i] == b[i] do
		i = i + 1
	end
	local parts = {}
	for _ = i, #b do parts[#parts + 1] = ".." end
	for k = i, #a do parts[#parts + 1] = a[k] end
	return #parts > 0 and table.concat(parts, "/") or "."
end

--------------------------------------------------------------------------------------------
-- Options

local USAGE = "usage: rigor gate GATEFILE [--out DIR] [--baseline FILE|DIR] [--only-rig NAME]... "
	.. "[--only-board DEVICE_TYPE]... [--list] [-q]\n"
	.. "       rigor gate merge --out DIR [--baseline FILE|DIR] GATE.json..."

function M.parse_argv(argv)
	local a = { out = "rigor-gate", only_rig = {}, only_board = {}, files = {} }
	a.merge = argv[1] == "merge"
	local words = table.move(argv, a.merge and 2 or 1, #argv, 1, {})
	local ok, e = util.walk_argv(words, function(w, value)
		if w == "--out" then
			a.out = value(w)
		elseif w == "--baseline" then
			a.baseline = value(w)
		elseif w == "--only-rig" and not a.merge then
			a.only_rig[value(w)] = true
		elseif w == "--only-board" and not a.merge then
			a.only_board[value(w)] = true
		elseif w == "--list" and not a.merge then
			a.list = true
		elseif w == "-q" or w == "--quiet" then
			a.quiet = true
		elseif w == "--help" or w == "-h" then
			util.usage_error("")
		elseif w:sub(1, 1) == "-" then
			util.usage_error("unknown option '" .. w .. "'")
		else
			a.files[#a.files + 1] = w
		end
	end)
	if not ok then
		return nil, e
	end
	if a.merge and #a.files == 0 then
		return nil, "gate merge: which gate.json files?"
	elseif not a.merge and #a.files ~= 1 then
		return nil, #a.files == 0 and "which gate file?" or "one gate file at a time"
	end
	return a
end

--------------------------------------------------------------------------------------------
-- Rigs and the plan

-- The rigs this host knows (rigor --json list rigs), by name.
local function host_rigs(exe)
	local ok, _, code, out = core.spawn(shq(exe) .. " --json list rigs", nil, true)
	if not ok then
		return nil, "'rigor --json list rigs' failed (exit " .. tostring(code) .. ")"
	end
	local okj, doc = pcall(core.json_decode, out)
	if not okj or type(doc) ~= "table" or type(doc.rigs) ~= "table" then
		return nil, "'rigor --json list rigs' printed no JSON"
	end
	return doc.rigs
end

local function has_all(caps, want)
	local set = {}
	for _, c in ipairs(caps or {}) do set[c] = true end
	for _, c in ipairs(want) do
		if not set[c] then
			return false
		end
	end
	return true
end

--- Builds the plan: cells (in gate-file order) and the rigs of each device type.
--- Returns plan, or nil and problems (rig names that contradict the gate file).
function M.plan(g, rigs, opts)
	opts = opts or {}
	local by_name = {}
	for _, r in ipairs(rigs) do
		if r.valid then
			by_name[r.name] = r
		end
	end
	local plan = { cells = {}, rigs = {}, by_type = {}, notes = {} }
	local problems = {}
	for _, b in ipairs(g.boards) do
		if next(opts.only_board or {}) == nil or opts.only_board[b.device_type] then
			local chosen = {}
			if #b.rigs > 0 then
				for _, n in ipairs(b.rigs) do
					local r = by_name[n]
					if r and r.device_type ~= b.device_type then
						problems[#problems + 1] = string.format("%s:%d: board \"%s\": rig '%s' is a %s",
							g.file, b.line, b.device_type, n, tostring(r.device_type))
					elseif r then
						chosen[#chosen + 1] = r
					else
						plan.notes[#plan.notes + 1] = string.format("board %s: rig '%s' is not on this host ('rigor list rigs')", b.device_type, n)
					end
				end
			else
				for _, r in ipairs(rigs) do
					if r.valid and r.device_type == b.device_type then
						chosen[#chosen + 1] = r
					end
				end
				table.sort(chosen, function(x, y) return x.name < y.name end)
			end
			local list = {}
			for _, r in ipairs(chosen) do
				if not has_all(r.capabilities, b.capabilities) then
					plan.notes[#plan.notes + 1] = string.format("board %s: rig '%s' lacks a capability of %s",
						b.device_type, r.name, table.concat(b.capabilities, ", "))
				elseif next(opts.only_rig or {}) == nil or opts.only_rig[r.name] then
					local renv = g.rigs[r.name] and g.rigs[r.name].env or {}
					local rig = { name = r.name, file = r.file, device_type = r.device_type, env = renv }
					list[#list + 1] = rig
					plan.rigs[#plan.rigs + 1] = rig
				end
			end
			plan.by_type[b.device_type] = list
			for _, s in ipairs(b.suites) do
				plan.cells[#plan.cells + 1] = {
					id = b.device_type .. " " .. s.file,
					device_type = b.device_type,
					suite_file = s.file,
					suite = suite_label(s.file),
					required = s.required,
					image = b.image,
					env = b.env,
					attempts = {},
					cases = {},
				}
			end
		end
	end
	if #problems > 0 then
		return nil, problems
	end
	return plan
end

--------------------------------------------------------------------------------------------
-- Running

local Gate = {}
Gate.__index = Gate

local function say(self, fmt, ...)
	if not self.quiet then
		self.out(string.format(fmt, ...) .. "\n")
	end
end

-- The command line and environment of one attempt.
function Gate:command(job, dir)
	local cell, rig = job.cell, job.rig
	local argv = { self.exe, "--rig", rig.file, "run", "--no-color",
		"--json", dir .. "/results.json", "--junit", dir .. "/junit.xml",
		"--tap", dir .. "/results.tap", "--artifacts", dir .. "/artifacts" }
	if job.case then
		argv[#argv + 1] = "--case"
		argv[#argv + 1] = exact_pattern(job.case)
	end
	argv[#argv + 1] = cell.suite_file
	local env = { RIGOR_GATE_RELEASE = self.gate.version, RIGOR_GATE_CELL = cell.id,
		RIGOR_RIG = false, NO_COLOR = "1" }
	for k, v in pairs(self.gate.env) do env[k] = v end
	for k, v in pairs(cell.env or {}) do env[k] = v end
	for k, v in pairs(rig.env or {}) do env[k] = v end
	if cell.image then
		env.RIGOR_OS_IMAGE = abspath(cell.image, self.cwd)
	end
	return argv, env
end

function Gate:start(job)
	self.seq = self.seq + 1
	local name = string.format("%03d-%s-%s%s", self.seq, util.slug(job.rig.name),
		util.slug(job.cell.device_type .. "-" .. job.cell.suite),
		job.case and ("-rerun-" .. util.slug(job.case)) or "")
	local dir = self.out_abs .. "/runs/" .. name
	core.mkdir_p(dir)
	local argv, env = self:command(job, dir)
	local pid, err = core.start(argv, { out = dir .. "/output.log", env = env })
	job.dir, job.rel = dir, "runs/" .. name
	job.t0 = core.now_ms()
	job.read = 0
	if not pid then
		job.exit_code, job.why = 3, err
		return false
	end
	job.pid = pid
	self.running[pid] = job
	self.busy[job.rig.name] = job
	local what = job.case and ("re-run " .. job.case) or (job.cell.suite_file ..
		(job.attempt > 1 and string.format(" (attempt %d)", job.attempt) or ""))
	say(self, "[%s] %s: %s", job.rig.name, job.cell.device_type, what)
	return true
end

-- Relays the case lines a child printed since the last look (live progress per rig).
function Gate:relay(job, final)
	if self.quiet then
		return
	end
	local f = io.open(job.dir .. "/output.log", "rb")
	if not f then
		return
	end
	f:seek("set", job.read)
	local data = f:read("a") or ""
	f:close()
	local upto = final and #data or (data:match(".*()\n") or 0)
	for line in data:sub(1, upto):gmatch("[^\n]*") do
		local label, rest = line:match("^  (%a+)%s+(.*)$")
		if label == "ok" or label == "FAIL" or label == "ERROR" or label == "SKIP" then
			self.out(string.format("[%s]   %-5s %s\n", job.rig.name, label, rest))
		elseif line:match("^rigor: ") and not line:match("^rigor: rig '") then
			self.out(string.format("[%s]   %s\n", job.rig.name, line))
		end
	end
	job.read = job.read + upto
end

-- The results of a finished attempt, from its results.json.
local function attempt_record(job)
	local doc = read_json(job.dir .. "/results.json")
	local rec = {
		n = job.attempt, kind = job.case and "rerun" or "cell", rig = job.rig.name,
		case = job.case, exit_code = job.exit_code, dir = job.rel,
		duration_ms = core.now_ms() - job.t0, why = job.why,
	}
	if doc then
		rec.results = job.rel .. "/results.json"
		rec.junit = job.rel .. "/junit.xml"
		rec.tap = job.rel .. "/results.tap"
		rec.infra_errors = doc.infra_errors
		rec.image = doc.image
		rec.host = doc.hostname
		rec.rigor_version = doc.rigor_version
		rec.cases = {}
		for _, s in ipairs(doc.suites or {}) do
			for _, c in ipairs(s.cases or {}) do
				rec.cases[#rec.cases + 1] = c
			end
		end
	elseif not rec.why then
		rec.why = "no results.json (see " .. job.rel .. "/output.log)"
	end
	return rec
end

local STATUS = { pass = "passed", fail = "failed", error = "failed", skip = "skipped" }

-- Folds a finished cell attempt into its cell, and queues what follows from it.
function Gate:cell_done(job, rec)
	local cell = job.cell
	cell.attempts[#cell.attempts + 1] = rec
	cell.tried = cell.tried or {}
	cell.tried[job.rig.name] = true
	if rec.exit_code == 3 or (rec.exit_code ~= 0 and rec.exit_code ~= 1) or not rec.cases then
		if rec.exit_code >= 128 then
			cell.status, cell.reason = "interrupted", "interrupted"
			return
		end
		if rec.exit_code == 2 then
			-- a suite that does not load or a bad option: the same on every rig, not retried
			cell.status, cell.done = "infra", true
			cell.reason = "rigor run exited 2 (a usage or configuration error): see " ..
				job.rel .. "/output.log"
			say(self, "[%s] %s: INFRA (%s)", job.rig.name, cell.id, cell.reason)
			return
		end
		if job.attempt <= self.gate.retries.infra then
			-- the first retry stays on the rig (a glitch), later ones move on (a sick rig)
			local retry = { cell = cell, attempt = job.attempt + 1 }
			if job.attempt == 1 then
				retry.pin = job.rig.name
			else
				retry.avoid = cell.tried
			end
			self:queue(retry)
			say(self, "[%s] %s: infrastructure error (exit %d); retrying", job.rig.name, cell.id,
				rec.exit_code)
			return
		end
		cell.status = "infra"
		local why = rec.infra_errors and rec.infra_errors[1] or rec.why
		for _, c in ipairs(rec.cases or {}) do
			if not why and c.infra then
				why = c.id .. ": " .. tostring(c.message)
			end
		end
		cell.reason = string.format("infrastructure error after %d attempt%s on %s%s", job.attempt,
			job.attempt == 1 and "" or "s", job.rig.name, why and (": " .. why) or "")
	end
	cell.rig, cell.image, cell.host = job.rig.name, rec.image, rec.host
	cell.rigor_version = rec.rigor_version or core.version
	cell.cases = {}
	for _, c in ipairs(rec.cases or {}) do
		local st = c.infra and "infra" or STATUS[c.status] or "failed"
		local case = { id = c.id, name = c.name, status = st, runs = array({ st }),
			duration_ms = c.duration_ms, message = c.message, where = c.where,
			log = c.log and relpath(abspath(c.log, self.cwd), self.out_abs) or nil }
		if c.log and st ~= "passed" and st ~= "skipped" then
			case.log_tail = util.read_tail(abspath(c.log, self.cwd), 2000)
		end
		case.quarantine = self:quarantined(cell.device_type, c.id)
		cell.cases[#cell.cases + 1] = case
		if st == "failed" and cell.status ~= "infra" then
			for i = 1, self.gate.retries.rerun do
				self:queue({ cell = cell, case = c.id, attempt = i })
				cell.pending = (cell.pending or 0) + 1
			end
		end
	end
	self:classify(cell)
end

function Gate:rerun_done(job, rec)
	local cell = job.cell
	cell.attempts[#cell.attempts + 1] = rec
	cell.pending = cell.pending - 1
	for _, case in ipairs(cell.cases) do
		if case.id == job.case then
			local got = "not run"
			for _, c in ipairs(rec.cases or {}) do
				if c.id == job.case then
					got = c.infra and "infra" or STATUS[c.status] or "failed"
				end
			end
			if rec.exit_code >= 128 then
				got = "interrupted"
			end
			case.runs[#case.runs + 1] = got
		end
	end
	self:classify(cell)
end

function Gate:quarantined(device_type, id)
	for _, q in ipairs(self.gate.quarantine) do
		if q.case == id and (q.device_type == nil or q.device_type == device_type) then
			q.used = true
			return { reason = q.reason, expires = q.expires, line = q.line }
		end
	end
	return nil
end

--- The final status of a cell from its cases (after its re-runs).
function M.classify_cell(cell, flaky_fails)
	if cell.status == "infra" or cell.status == "norig" or cell.status == "interrupted" then
		return cell.status
	end
	local failed, flaky, passed, counts = false, false, false, {}
	for _, case in ipairs(cell.cases) do
		if case.status == "failed" and #case.runs > 1 then
			for i = 2, #case.runs do
				if case.runs[i] == "passed" then
					case.status = "flaky"
				end
			end
		end
		local key = case.quarantine and case.status ~= "passed" and "quarantined" or case.status
		counts[key] = (counts[key] or 0) + 1
		if not case.quarantine then
			failed = failed or case.status == "failed" or (flaky_fails and case.status == "flaky")
			flaky = flaky or case.status == "flaky"
		end
		passed = passed or case.status == "passed" or case.status == "flaky" or
			(case.quarantine ~= nil and case.status ~= "skipped")
	end
	cell.counts = counts
	if failed then
		return "failed"
	elseif flaky then
		return "flaky"
	elseif not passed then
		return "skipped"
	end
	return "passed"
end

function Gate:classify(cell)
	if (cell.pending or 0) == 0 then
		cell.status = M.classify_cell(cell, self.gate.flaky == "fail")
		if cell.status == "skipped" then
			cell.reason = #cell.cases == 0 and "no case ran" or "every case was skipped"
		end
		cell.done = true
		local c = cell.counts or {}
		say(self, "[%s] %s: %s (%d passed, %d failed, %d flaky, %d skipped%s)", cell.rig or "-",
			cell.id, cell.status:upper(), c.passed or 0, c.failed or 0, c.flaky or 0,
			c.skipped or 0, c.quarantined and string.format(", %d quarantined", c.quarantined) or "")
	end
end

function Gate:queue(job)
	self.queue_[#self.queue_ + 1] = job
end

-- The next job rig `rig` may take, removed from the queue; nil when none.
function Gate:take(rig)
	local peers = self.plan.by_type[rig.device_type] or {}
	for i, job in ipairs(self.queue_) do
		if job.cell.device_type == rig.device_type then
			local ok
			if job.pin then
				ok = job.pin == rig.name
			elseif job.avoid and job.avoid[rig.name] then
				-- an avoided rig takes it only when every rig of the type has tried it
				ok = true
				for _, p in ipairs(peers) do
					if not job.avoid[p.name] then ok = false end
				end
			else
				ok = true
			end
			if ok then
				table.remove(self.queue_, i)
				return job
			end
		end
	end
end

function Gate:finish_job(job, how, code)
	self.running[job.pid] = nil
	self.busy[job.rig.name] = nil
	job.exit_code = how == "exit" and code or 128 + code
	self:relay(job, true)
	local rec = attempt_record(job)
	if job.case then
		self:rerun_done(job, rec)
	else
		self:cell_done(job, rec)
	end
end

function Gate:stop_all(sig)
	say(self, "rigor gate: %s: stopping %d running cell%s", sig, self:count_running(),
		self:count_running() == 1 and "" or "s")
	for pid in pairs(self.running) do
		core.kill(pid, "TERM")
	end
	-- each `rigor run` leaves its rig safe (DUT off, lock released) before it exits
	local deadline = core.now_ms() + 120000
	while next(self.running) and core.now_ms() < deadline do
		local pid, how, code = core.wait(500, true)
		if pid and self.running[pid] then
			self:finish_job(self.running[pid], how, code)
		end
	end
	for pid in pairs(self.running) do
		core.kill(pid, "KILL")
		local job = self.running[pid]
		job.why = "killed: did not stop within 120 s"
		self:finish_job(job, "signal", 9)
	end
end

function Gate:count_running()
	local n = 0
	for _ in pairs(self.running) do n = n + 1 end
	return n
end

-- The cells in the order they start: longest first by the baseline's durations (cells it
-- does not know first, as they may be long), so the last cell to end is a short one;
-- without a baseline, the gate file's order.
function Gate:start_order()
	local order, dur = {}, {}
	for i, c in ipairs(self.plan.cells) do
		order[i] = c
	end
	if not self.base then
		return order
	end
	for _, c in ipairs(self.base.cells or {}) do
		dur[c.id] = c.duration_ms
	end
	local pos = {}
	for i, c in ipairs(order) do pos[c] = i end
	table.sort(order, function(x, y)
		local dx, dy = dur[x.id] or math.huge, dur[y.id] or math.huge
		if dx ~= dy then
			return dx > dy
		end
		return pos[x] < pos[y]
	end)
	return order
end

function Gate:run()
	for _, cell in ipairs(self:start_order()) do
		if #(self.plan.by_type[cell.device_type] or {}) == 0 then
			cell.status, cell.done = "norig", true
			cell.reason = "no rig of device type " .. cell.device_type .. " on this host"
			say(self, "[-] %s: no rig of device type %s", cell.id, cell.device_type)
		else
			self:queue({ cell = cell, attempt = 1 })
		end
	end
	while true do
		local sig = core.interrupted()
		if sig then
			self.interrupted = sig
			self:stop_all(sig)
			break
		end
		for _, rig in ipairs(self.plan.rigs) do
			if not self.busy[rig.name] then
				local job = self:take(rig)
				if job then
					job.rig = rig
					if not self:start(job) then
						self:finish_job(job, "exit", 3)
					end
				end
			end
		end
		if not next(self.running) then
			break
		end
		local pid, how, code = core.wait(250)
		if pid and self.running[pid] then
			self:finish_job(self.running[pid], how, code)
		end
		for _, job in pairs(self.running) do
			self:relay(job, false)
		end
	end
	for _, cell in ipairs(self.plan.cells) do
		if not cell.done and not cell.status then
			cell.status, cell.reason = "interrupted", "not run: the gate was interrupted"
		elseif not cell.done then
			cell.status = cell.status == "infra" and "infra" or "interrupted"
			cell.reason = cell.reason or "the gate was interrupted"
		end
	end
end

--------------------------------------------------------------------------------------------
-- Verdict, baseline, document

--- The gate's verdict from its cells: "pass" (0), "fail" (1), "incomplete" (3).
function M.verdict(cells)
	local fail, incomplete = false, false
	for _, c in ipairs(cells) do
		if c.required then
			if c.status == "failed" then
				fail = true
			elseif c.status ~= "passed" and c.status ~= "flaky" then
				incomplete = true
			end
		end
	end
	if fail then
		return "fail", M.EXIT_FAIL
	elseif incomplete then
		return "incomplete", M.EXIT_INFRA
	end
	return "pass", M.EXIT_OK
end

local function totals(cells)
	local t = { cells = #cells, passed = 0, failed = 0, flaky = 0, skipped = 0, infra = 0,
		norig = 0, interrupted = 0, quarantined = 0, cases = 0 }
	for _, c in ipairs(cells) do
		t[c.status] = (t[c.status] or 0) + 1
		for _, k in ipairs(c.cases or {}) do
			t.cases = t.cases + 1
			if k.quarantine then
				t.quarantined = t.quarantined + 1
			end
		end
	end
	return t
end

-- The newest rigor gate result under `path` (a file, or a directory searched three levels
-- deep), skipping `exclude` (this run's own, absolute); `here` is the current directory.
-- Returns its document and path, or nil and why.
local function find_baseline(path, exclude, here)
	local f = io.open(path .. "/.", "r")
	if not f then
		local doc, err = read_json(path)
		return doc, doc and path or err
	end
	f:close()
	local ok, _, _, out = core.spawn("find " .. shq(path) .. " -maxdepth 3 -name gate.json -type f", nil, true)
	if not ok then
		return nil, "cannot list '" .. path .. "'"
	end
	local best, best_doc
	for p in out:gmatch("[^\n]+") do
		if abspath(p, here) ~= exclude then
			local doc = read_json(p)
			if doc and doc.schema == M.SCHEMA and
				(not best_doc or (doc.started or "") > (best_doc.started or "")) then
				best, best_doc = p, doc
			end
		end
	end
	if not best then
		return nil, "no gate.json (schema " .. M.SCHEMA .. ") under '" .. path .. "'"
	end
	return best_doc, best
end

local FAILING = { failed = true }

--- Compares `cells` with the baseline document's cells, case by case (device type + id).
--- Returns { file, release, changes = { { device_type, case, change, before, after,
--- duration_ms, baseline_ms } }, counts }.
function M.diff(cells, base, slower)
	local before = {}
	for _, c in ipairs(base.cells or {}) do
		for _, k in ipairs(c.cases or {}) do
			before[c.device_type .. "\0" .. k.id] = k
		end
	end
	local seen, changes, counts = {}, {}, {}
	local function add(ch)
		changes[#changes + 1] = ch
		counts[ch.change] = (counts[ch.change] or 0) + 1
	end
	local ran_types = {}
	for _, c in ipairs(cells) do
		ran_types[c.device_type] = true
		for _, k in ipairs(c.cases or {}) do
			local key = c.device_type .. "\0" .. k.id
			local b = before[key]
			seen[key] = true
			local ch
			if not b then
				ch = "new-case"
			elseif FAILING[k.status] and FAILING[b.status] then
				ch = "still-failing"
			elseif FAILING[k.status] then
				ch = "new-failure"
			elseif FAILING[b.status] then
				ch = "fixed"
			end
			local slow = b and b.duration_ms and k.duration_ms and b.status == "passed" and
				k.status == "passed" and k.duration_ms > slower * b.duration_ms and
				k.duration_ms - b.duration_ms > 2000
			if ch or slow then
				add({ device_type = c.device_type, case = k.id, change = ch or "slower",
					before = b and b.status, after = k.status, slower = slow or nil,
					duration_ms = k.duration_ms, baseline_ms = b and b.duration_ms })
			end
		end
	end
	for _, c in ipairs(base.cells or {}) do
		if ran_types[c.device_type] then
			for _, k in ipairs(c.cases or {}) do
				if not seen[c.device_type .. "\0" .. k.id] then
					add({ device_type = c.device_type, case = k.id, change = "gone", before = k.status })
				end
			end
		end
	end
	return { release = base.release and base.release.version, changes = array(changes),
		counts = counts }
end

local function cell_doc(c)
	local cases = array()
	for _, k in ipairs(c.cases or {}) do
		cases[#cases + 1] = { id = k.id, name = k.name, status = k.status, runs = array(k.runs or {}),
			duration_ms = k.duration_ms, message = k.message, where = k.where, log = k.log,
			log_tail = k.log_tail, quarantine = k.quarantine and { reason = k.quarantine.reason,
				expires = k.quarantine.expires } or nil }
	end
	local attempts = array()
	for _, a in ipairs(c.attempts or {}) do
		attempts[#attempts + 1] = { n = a.n, kind = a.kind, rig = a.rig, case = a.case,
			exit_code = a.exit_code, dir = a.dir, results = a.results, junit = a.junit, tap = a.tap,
			duration_ms = a.duration_ms, why = a.why, infra_errors = array(a.infra_errors or {}) }
	end
	local duration = 0
	for _, a in ipairs(c.attempts or {}) do duration = duration + (a.duration_ms or 0) end
	return { id = c.id, device_type = c.device_type, suite = c.suite, suite_file = c.suite_file,
		required = c.required, status = c.status, reason = c.reason, rig = c.rig, host = c.host,
		rigor_version = c.rigor_version, image = c.image, duration_ms = duration,
		attempts = attempts, cases = cases }
end

--- The rigor.gate/1 document.
function M.document(g)
	local cells = array()
	for _, c in ipairs(g.cells) do
		cells[#cells + 1] = cell_doc(c)
	end
	local quarantine = array()
	for _, q in ipairs(g.quarantine or {}) do
		quarantine[#quarantine + 1] = { case = q.case, device_type = q.device_type, reason = q.reason,
			expires = q.expires, used = q.used and true or false }
	end
	local verdict, code = M.verdict(g.cells)
	if g.interrupted then
		verdict, code = "interrupted", SIGNAL_EXIT[g.interrupted] or 130
	end
	return {
		schema = M.SCHEMA,
		release = { version = g.version, description = g.description, gate_file = g.file },
		verdict = verdict,
		exit_code = code,
		host = g.host or util.hostname(),
		hosts = array(g.hosts or { g.host or util.hostname() }),
		rigor_version = core.version,
		started = g.started,
		duration_ms = g.duration_ms or 0,
		policy = { retries = { infra = g.retries.infra, rerun = g.retries.rerun }, flaky = g.flaky,
			slower = g.slower },
		rigs = array(g.rig_names or {}),
		notes = array(g.notes or {}),
		quarantine = quarantine,
		baseline = g.diff,
		totals = totals(g.cells),
		cells = cells,
	}
end

-- The document of gate `g`, written as gate.json, gate.md and gate.html into out_dir (each
-- through a temporary file). Returns the document, or nil after telling err() why.
function M.write_reports(g, out_dir, err)
	local doc = M.document(g)
	local md = require "rigor.report.gate_md"
	local html = require "rigor.report.gate_html"
	local files = {
		{ "gate.json", core.json_encode(doc, 2) .. "\n" },
		{ "gate.md", md.render(doc) },
		{ "gate.html", html.render(doc) },
	}
	for _, f in ipairs(files) do
		local path = out_dir .. "/" .. f[1]
		local ok, werr = util.write_file(path .. ".tmp", f[2])
		if ok then
			ok, werr = os.rename(path .. ".tmp", path)
		end
		if not ok then
			err("rigor: cannot write '" .. path .. "': " .. tostring(werr) .. "\n")
			return nil
		end
	end
	return doc
end

-- The baseline document under `path` (a gate.json, or the newest in a directory), and its
-- path; nil and why.
local function load_baseline(path, out_abs, here)
	local base, file = find_baseline(path, out_abs .. "/gate.json", here)
	if not base then
		return nil, file
	end
	if base.schema ~= M.SCHEMA then
		return nil, "'" .. file .. "' is not a rigor gate result (schema " .. tostring(base.schema) .. ")"
	end
	return base, file
end

local function apply_baseline(g, path, out_abs, here)
	local base, file = load_baseline(path, out_abs, here)
	if not base then
		return nil, file
	end
	g.diff = M.diff(g.cells, base, g.slower)
	g.diff.file = file
	return true
end

--------------------------------------------------------------------------------------------
-- Entry points

local function merge(a, out, err)
	local docs = {}
	for _, p in ipairs(a.files) do
		local d, e = read_json(p)
		if not d then
			err("rigor: gate merge: " .. e .. "\n")
			return M.EXIT_USAGE
		end
		if d.schema ~= M.SCHEMA then
			err("rigor: gate merge: '" .. p .. "' is not a rigor gate result (schema " .. tostring(d.schema) .. ")\n")
			return M.EXIT_USAGE
		end
		if docs[1] and d.release.version ~= docs[1].doc.release.version then
			err(string.format("rigor: gate merge: '%s' is release %s, '%s' is %s: merge results of one release\n",
				p, tostring(d.release.version), docs[1].path, tostring(docs[1].doc.release.version)))
			return M.EXIT_USAGE
		end
		docs[#docs + 1] = { path = p, doc = d }
	end
	core.mkdir_p(a.out)
	local here = cwd()
	local out_abs = abspath(a.out, here)
	-- a cell that ran beats one that could not; between two that ran, the worse outcome
	local RANK = { failed = 7, flaky = 6, passed = 5, skipped = 4, infra = 3, interrupted = 2, norig = 1 }
	local first = docs[1].doc
	local g = { version = first.release.version, description = first.release.description,
		file = first.release.gate_file, retries = first.policy.retries, flaky = first.policy.flaky,
		slower = first.policy.slower, cells = {}, quarantine = {}, hosts = {}, rig_names = {},
		notes = {}, started = first.started, duration_ms = 0 }
	local index, qseen, rseen = {}, {}, {}
	for _, item in ipairs(docs) do
		local d = item.doc
		local dir = util.dirname(abspath(item.path, here))
		local rel = relpath(dir, out_abs)
		g.hosts[#g.hosts + 1] = d.host
		if (d.started or "") < (g.started or "") then g.started = d.started end
		g.duration_ms = math.max(g.duration_ms, d.duration_ms or 0)
		for _, r in ipairs(d.rigs or {}) do
			if not rseen[r] then rseen[r] = true; g.rig_names[#g.rig_names + 1] = r end
		end
		for _, n in ipairs(d.notes or {}) do g.notes[#g.notes + 1] = d.host .. ": " .. n end
		for _, q in ipairs(d.quarantine or {}) do
			local key = q.case .. "\0" .. tostring(q.device_type)
			if not qseen[key] then
				qseen[key] = q
				g.quarantine[#g.quarantine + 1] = q
			elseif q.used then
				qseen[key].used = true
			end
		end
		for _, c in ipairs(d.cells or {}) do
			-- artifact paths stay valid from the merged report's directory
			local function fix(p) return p and (rel == "." and p or rel .. "/" .. p) end
			for _, at in ipairs(c.attempts or {}) do
				at.dir, at.results, at.junit, at.tap = fix(at.dir), fix(at.results), fix(at.junit), fix(at.tap)
			end
			for _, k in ipairs(c.cases or {}) do
				k.log = fix(k.log)
			end
			local cur = index[c.id]
			if not cur then
				index[c.id] = c
				g.cells[#g.cells + 1] = c
			elseif (RANK[c.status] or 0) > (RANK[cur.status] or 0) then
				for i, x in ipairs(g.cells) do
					if x == cur then g.cells[i] = c end
				end
				index[c.id] = c
			end
		end
	end
	g.host = table.concat(g.hosts, ", ")
	if a.baseline then
		local ok, berr = apply_baseline(g, a.baseline, out_abs, here)
		if not ok then
			err("rigor: gate merge: baseline: " .. berr .. "\n")
			return M.EXIT_USAGE
		end
	end
	local doc = M.write_reports(g, a.out, err)
	if not doc then
		return M.EXIT_INFRA
	end
	if not a.quiet then
		out(string.format("rigor gate merge: release %s: %s (exit %d) from %d result%s; reports in %s/ (gate.json, gate.md, gate.html)\n",
			doc.release.version, doc.verdict:upper(), doc.exit_code, #docs, #docs == 1 and "" or "s", a.out))
	end
	return doc.exit_code
end

--- `rigor gate ARGS...` (rigl_gate()). env: out, err (writers). Returns the exit code.
function M.cli(argv, env)
	env = env or {}
	local out = env.out or function(s) io.stdout:write(s) end
	local err = env.err or function(s) io.stderr:write(s) end
	local a, uerr = M.parse_argv(argv)
	if not a then
		if uerr == "" then
			out(USAGE .. "\n")
			return M.EXIT_OK
		end
		err("rigor: gate: " .. uerr .. "\n" .. USAGE .. "\n")
		return M.EXIT_USAGE
	end
	if a.merge then
		return merge(a, out, err)
	end
	local g, problems = gatefile.load(a.files[1])
	if not g then
		for _, p in ipairs(problems) do
			err("rigor: " .. p .. "\n")
		end
		err(string.format("rigor: gate file '%s': %d problem%s\n", a.files[1], #problems,
			#problems == 1 and "" or "s"))
		return M.EXIT_USAGE
	end
	local exe = core.exe or "rigor"
	local rigs, rerr = host_rigs(exe)
	if not rigs then
		err("rigor: gate: " .. rerr .. "\n")
		return M.EXIT_INFRA
	end
	local plan, pproblems = M.plan(g, rigs, a)
	if not plan then
		for _, p in ipairs(pproblems) do
			err("rigor: " .. p .. "\n")
		end
		return M.EXIT_USAGE
	end
	if a.list then
		for _, c in ipairs(plan.cells) do
			local names = {}
			for _, r in ipairs(plan.by_type[c.device_type] or {}) do names[#names + 1] = r.name end
			out(string.format("%-40s %-11s rigs: %s\n", c.id, c.required and "required" or "informative",
				#names > 0 and table.concat(names, ", ") or "none on this host"))
		end
		for _, n in ipairs(plan.notes) do
			out("note: " .. n .. "\n")
		end
		return M.EXIT_OK
	end
	local here = cwd()
	core.mkdir_p(a.out .. "/runs")
	local self = setmetatable({
		gate = g, plan = plan, exe = exe, out_dir = a.out, out_abs = abspath(a.out, here),
		cwd = here, quiet = a.quiet, out = out, seq = 0, running = {}, busy = {}, queue_ = {},
	}, Gate)
	local base_path = a.baseline or g.baseline
	if base_path then
		local base, file = load_baseline(base_path, self.out_abs, here)
		if base then
			self.base, self.base_file = base, file
		else
			plan.notes[#plan.notes + 1] = "baseline not compared: " .. file
			err("rigor: gate: baseline not compared: " .. file .. "\n")
		end
	end
	local t0 = core.now_ms()
	g.started = util.iso_time()
	local names = {}
	for _, r in ipairs(plan.rigs) do names[#names + 1] = r.name end
	say(self, "rigor gate: release %s: %d cells on %d rig%s (%s); reports in %s/", g.version,
		#plan.cells, #plan.rigs, #plan.rigs == 1 and "" or "s", table.concat(names, ", "), a.out)
	for _, n in ipairs(plan.notes) do
		say(self, "rigor gate: note: %s", n)
	end
	self:run()
	g.cells, g.rig_names, g.notes = plan.cells, names, plan.notes
	g.duration_ms = core.now_ms() - t0
	g.interrupted = self.interrupted
	g.host = util.hostname()
	if self.base then
		g.diff = M.diff(g.cells, self.base, g.slower)
		g.diff.file = self.base_file
	end
	local doc = M.write_reports(g, a.out, err)
	if not doc then
		return M.EXIT_INFRA
	end
	local t = doc.totals
	out(string.format("\nrigor gate: release %s: %s (exit %d): %d cells: %d passed, %d failed, %d flaky, %d skipped, %d infra, %d without rig; %.1f s\n",
		g.version, doc.verdict:upper(), doc.exit_code, t.cells, t.passed, t.failed, t.flaky,
		t.skipped, t.infra, t.norig, g.duration_ms / 1000))
	out(string.format("rigor gate: reports: %s/gate.md, %s/gate.html, %s/gate.json\n", a.out, a.out, a.out))
	return doc.exit_code
end

return M
