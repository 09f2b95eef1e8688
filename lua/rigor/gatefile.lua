-- SPDX-License-Identifier: MIT
-- rigor.gatefile: reads a gate file (docs/release-gate.md) into a plain table and reports
-- every mistake at once as "file:line: message", the way rig files are checked.
--
-- A gate file is Lua run in a small sandbox. Its statements are constructors, each
-- recording the line it was called on:
--   release { version = "2.1.0", image = "...", baseline = "...", retries = {...}, ... }
--   board "qemux86-64" { suites = {...}, informative = {...}, image = "...", rigs = {...} }
--   rig "virtual-2" { env_file = "...", env = {...} }
--   quarantine "os/boot-time" { reason = "...", expires = "2027-01-31" }
-- Besides those, only string, table, math, os.getenv, pairs/ipairs/tostring/tonumber/type
-- are visible; any other name is a mistake reported with its line.

local util = require "rigor.util"

local M = {}

local RELEASE_KEYS = { version = "string", image = "string", baseline = "string",
	retries = "table", flaky = "string", slower = "number", env = "table",
	description = "string" }
local BOARD_KEYS = { suites = "table", informative = "table", image = "string", rigs = "table",
	capabilities = "table", env = "table" }
local RIG_KEYS = { env = "table", env_file = "string" }
local QUARANTINE_KEYS = { reason = "string", expires = "string", device_type = "string" }
local RETRY_KEYS = { infra = true, rerun = true }

local function keys_of(t)
	local k = {}
	for name in pairs(t) do
		k[#k + 1] = name
	end
	table.sort(k)
	return table.concat(k, ", ")
end

local function exists(path)
	local f = io.open(path, "rb")
	if f then
		f:close()
		return true
	end
	return false
end

-- Reads "KEY=VALUE" lines (an optional "export ", values optionally in single or double
-- quotes without escapes: what `scripts/virtual-rig` writes, docker's --env-file and
-- systemd's EnvironmentFile= accept). Returns the table, or nil and "line N: why".
function M.read_env_file(path)
	local f, err = io.open(path, "r")
	if not f then
		return nil, err
	end
	local env, n = {}, 0
	for line in f:lines() do
		n = n + 1
		local body = line:match("^%s*(.-)%s*$")
		if body ~= "" and body:sub(1, 1) ~= "#" then
			local k, v = body:match("^export%s+([%a_][%w_]*)=(.*)$")
			if not k then
				k, v = body:match("^([%a_][%w_]*)=(.*)$")
			end
			if not k then
				f:close()
				return nil, string.format("line %d: expected KEY=VALUE, got '%s'", n, body)
			end
			local q = v:match("^'(.*)'$") or v:match('^"(.*)"$')
			env[k] = q or v
		end
	end
	f:close()
	return env
end

local function today()
	return os.getenv("RIGOR_GATE_TODAY") or os.date("!%Y-%m-%d")
end

--- Loads and checks gate file `path`. Returns the gate table, or nil and a list of
--- "file:line: message" strings. The gate table:
---   file, version, description, baseline, retries = { infra, rerun }, flaky ("warn"|"fail"),
---   slower (factor), env, boards = { { device_type, line, image, rigs, capabilities,
---   suites = { { file, required } }, env } }, rigs = { [name] = { env, line } },
---   quarantine = { { case, device_type, reason, expires, line } }
function M.load(path)
	local problems = {}
	local function problem(line, fmt, ...)
		problems[#problems + 1] = string.format("%s:%s: " .. fmt, path, line or 0, ...)
	end
	local chunk_src, rerr = util.read_file(path)
	if not chunk_src then
		return nil, { string.format("%s: cannot read gate file: %s", path, rerr) }
	end

	local decl = { releases = {}, boards = {}, rigs = {}, quarantine = {} }
	local function caller_line()
		local info = debug.getinfo(3, "Sl")
		return info and info.currentline or 0
	end
	local function named(kind, list)
		return function(name)
			local line = caller_line()
			if type(name) ~= "string" or name == "" then
				problem(line, "%s needs a name: %s \"NAME\" { ... }", kind, kind)
				name = "?"
			end
			return function(body)
				if type(body) ~= "table" then
					problem(line, "%s \"%s\" needs a table: %s \"%s\" { ... }", kind, name, kind, name)
					body = {}
				end
				list[#list + 1] = { name = name, body = body, line = line }
			end
		end
	end
	local api = {
		release = function(body)
			local line = caller_line()
			if type(body) ~= "table" then
				problem(line, "release needs a table: release { version = \"...\" }")
				body = {}
			end
			decl.releases[#decl.releases + 1] = { body = body, line = line }
		end,
		board = named("board", decl.boards),
		rig = named("rig", decl.rigs),
		quarantine = named("quarantine", decl.quarantine),
		string = string, table = table, math = math, os = { getenv = os.getenv },
		pairs = pairs, ipairs = ipairs, tostring = tostring, tonumber = tonumber, type = type,
	}
	local env = setmetatable({}, {
		__index = function(_, k)
			if api[k] ~= nil then
				return api[k]
			end
			local info = debug.getinfo(2, "l")
			error(string.format("%s:%d: unknown name '%s' (a gate file has release, board, rig and quarantine)",
				path, info and info.currentline or 0, tostring(k)), 0)
		end,
	})
	local fn, serr = load(chunk_src, "@" .. path, "t", env)
	if not fn then
		return nil, { serr }
	end
	local ok, eerr = pcall(fn)
	if not ok then
		problems[#problems + 1] = tostring(eerr)
	end

	local function check_keys(body, allowed, what, line)
		for k, v in pairs(body) do
			if type(k) ~= "string" then
				problem(line, "%s: unexpected list entry (expected %s)", what, keys_of(allowed))
			elseif not allowed[k] then
				problem(line, "%s: unknown key '%s' (expected %s)", what, k, keys_of(allowed))
			elseif type(v) ~= allowed[k] then
				problem(line, "%s: '%s' must be a %s, not a %s", what, k, allowed[k], type(v))
			end
		end
	end
	local function string_list(v, what, line)
		local out = {}
		if v == nil then
			return out
		end
		if type(v) ~= "table" then
			return out
		end
		for i, s in ipairs(v) do
			if type(s) ~= "string" or s == "" then
				problem(line, "%s[%d] must be a non-empty string", what, i)
			else
				out[#out + 1] = s
			end
		end
		return out
	end
	local function env_table(v, what, line)
		local out = {}
		for k, x in pairs(v or {}) do
			if type(k) ~= "string" or not k:match("^[%a_][%w_]*$") then
				problem(line, "%s: '%s' is not an environment variable name", what, tostring(k))
			elseif type(x) ~= "string" and type(x) ~= "number" then
				problem(line, "%s.%s must be a string, not a %s", what, k, type(x))
			else
				out[k] = tostring(x)
			end
		end
		return out
	end

	local g = { file = path, boards = {}, rigs = {}, quarantine = {},
		retries = { infra = 1, rerun = 2 }, flaky = "warn", slower = 1.5, env = {} }

	-- release
	if #decl.releases == 0 then
		problem(0, "no release { version = \"...\" } in the gate file")
	end
	for i, r in ipairs(decl.releases) do
		if i > 1 then
			problem(r.line, "a second release (the first is at line %d)", decl.releases[1].line)
		else
			local b = r.body
			check_keys(b, RELEASE_KEYS, "release", r.line)
			if type(b.version) ~= "string" or b.version == "" then
				problem(r.line, "release: 'version' is required (the release this gate decides)")
			end
			g.version, g.description, g.line = b.version, b.description, r.line
			g.image = type(b.image) == "string" and b.image or nil
			g.baseline = type(b.baseline) == "string" and b.baseline or nil
			if type(b.retries) == "table" then
				for k, v in pairs(b.retries) do
					if not RETRY_KEYS[k] then
						problem(r.line, "release.retries: unknown key '%s' (expected infra, rerun)", tostring(k))
					elseif math.type(v) ~= "integer" or v < 0 or v > 10 then
						problem(r.line, "release.retries.%s must be an integer from 0 to 10", k)
					else
						g.retries[k] = v
					end
				end
			end
			if b.flaky ~= nil and b.flaky ~= "warn" and b.flaky ~= "fail" then
				problem(r.line, "release.flaky must be \"warn\" or \"fail\", not \"%s\"", tostring(b.flaky))
			elseif b.flaky then
				g.flaky = b.flaky
			end
			if type(b.slower) == "number" then
				if b.slower <= 1 then
					problem(r.line, "release.slower must be a factor above 1 (e.g. 1.5)")
				else
					g.slower = b.slower
				end
			end
			g.env = env_table(b.env, "release.env", r.line)
		end
	end

	-- boards
	local seen_dt = {}
	for _, d in ipairs(decl.boards) do
		local b, what = d.body, "board \"" .. d.name .. "\""
		check_keys(b, BOARD_KEYS, what, d.line)
		if seen_dt[d.name] then
			problem(d.line, "%s is declared twice (also line %d)", what, seen_dt[d.name])
		end
		seen_dt[d.name] = d.line
		local board = { device_type = d.name, line = d.line,
			image = type(b.image) == "string" and b.image or g.image,
			rigs = string_list(b.rigs, what .. ".rigs", d.line),
			capabilities = string_list(b.capabilities, what .. ".capabilities", d.line),
			env = env_table(b.env, what .. ".env", d.line), suites = {} }
		local files = {}
		local function add(list, required, key)
			for _, f in ipairs(string_list(list, what .. "." .. key, d.line)) do
				if files[f] then
					problem(d.line, "%s: suite '%s' is listed twice", what, f)
				elseif not exists(f) then
					problem(d.line, "%s: suite file '%s' does not exist (paths are relative to the directory rigor gate runs in)", what, f)
				end
				files[f] = true
				board.suites[#board.suites + 1] = { file = f, required = required }
			end
		end
		add(b.suites, true, "suites")
		add(b.informative, false, "informative")
		if #board.suites == 0 then
			problem(d.line, "%s has no suites (suites = { \"testcases/os.lua\", ... })", what)
		end
		if board.image and not exists(board.image) then
			problem(d.line, "%s: image '%s'%s does not exist", what, board.image,
				type(b.image) == "string" and "" or " (the release's image)")
		end
		g.boards[#g.boards + 1] = board
	end
	if #decl.boards == 0 then
		problem(0, "no board \"DEVICE_TYPE\" { suites = { ... } } in the gate file")
	end

	-- rigs' environments
	for _, d in ipairs(decl.rigs) do
		check_keys(d.body, RIG_KEYS, "rig \"" .. d.name .. "\"", d.line)
		local e = {}
		if type(d.body.env_file) == "string" then
			local fe, ferr = M.read_env_file(d.body.env_file)
			if not fe then
				problem(d.line, "rig \"%s\": env_file '%s': %s", d.name, d.body.env_file, ferr)
			else
				e = fe
			end
		end
		for k, v in pairs(env_table(d.body.env, "rig \"" .. d.name .. "\".env", d.line)) do
			e[k] = v
		end
		if g.rigs[d.name] then
			problem(d.line, "rig \"%s\" is declared twice (also line %d)", d.name, g.rigs[d.name].line)
		end
		g.rigs[d.name] = { env = e, line = d.line }
	end

	-- quarantine
	local now = today()
	for _, d in ipairs(decl.quarantine) do
		local b, what = d.body, "quarantine \"" .. d.name .. "\""
		check_keys(b, QUARANTINE_KEYS, what, d.line)
		if not d.name:find("/", 1, true) then
			problem(d.line, "%s: name a case as 'suite/case' (its id in reports)", what)
		end
		if type(b.reason) ~= "string" or b.reason:match("^%s*$") then
			problem(d.line, "%s: 'reason' is required (why the case is known to be flaky)", what)
		end
		local y, m, dd = tostring(b.expires or ""):match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
		if not y or tonumber(m) < 1 or tonumber(m) > 12 or tonumber(dd) < 1 or tonumber(dd) > 31 then
			problem(d.line, "%s: 'expires' must be a date YYYY-MM-DD (a quarantine never lasts forever)", what)
		elseif b.expires < now then
			problem(d.line, "%s expired on %s: fix the case or renew the entry with a new reason", what, b.expires)
		end
		g.quarantine[#g.quarantine + 1] = { case = d.name, device_type = b.device_type,
			reason = b.reason, expires = b.expires, line = d.line }
	end

	if #problems > 0 then
		return nil, problems
	end
	return g
end

return M
