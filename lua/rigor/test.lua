-- SPDX-License-Identifier: MIT
-- rigor.test: the API testcases are written against.
--
--   local t = require "rigor.test"
--   local s = t.suite("power", { requires = {"power"}, tags = {"smoke"}, timeout = 30000 })
--   s:before_each(function(rig, case) ... end)
--   s:case("boots", { tags = {"slow"} }, function(rig, case) t.assert.eq(1, 1) end)
--   return s
--
-- Suites register themselves when created; rigor.runner loads testcase files and collects
-- them. Failures, skips and errors travel as error values (tables with a marker field), so a
-- failing assertion unwinds the case like any Lua error. The manual is docs/lua-api.md.

local M = {}

local THIS_SOURCE = debug.getinfo(1, "S").source

-- Suites created since the runner last called M._take_registered().
local registered = {}

local DEFAULT_TIMEOUT = 60000

---------------------------------------------------------------------------------------------
-- Formatting values

local function is_identifier(s)
	return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil
end

local function quote(s)
	-- %q writes newlines as "\<newline>"; we want one-line output.
	local q = string.format("%q", s)
	q = q:gsub("\\\n", "\\n"):gsub("\r", "\\r")
	return q
end

local function fmt_key(k)
	if is_identifier(k) then
		return "." .. k
	elseif type(k) == "string" then
		return "[" .. quote(k) .. "]"
	elseif type(k) == "number" or type(k) == "boolean" then
		return "[" .. tostring(k) .. "]"
	else
		return "[<" .. tostring(k) .. ">]"
	end
end

local function key_order(a, b)
	local ta, tb = type(a), type(b)
	if ta ~= tb then
		return ta < tb
	end
	if ta == "number" or ta == "string" then
		return a < b
	end
	return tostring(a) < tostring(b)
end

local function sorted_keys(t)
	local keys = {}
	for k in pairs(t) do
		keys[#keys + 1] = k
	end
	table.sort(keys, key_order)
	return keys
end

--- Formats any value on one line for messages: strings quoted, tables as constructors
--- (depth- and length-limited, cycles shown as <cycle>).
local function repr(v, depth, seen)
	local tv = type(v)
	if tv == "string" then
		if #v > 200 then
			return quote(v:sub(1, 200)) .. "..(" .. #v .. " bytes)"
		end
		return quote(v)
	elseif tv == "number" then
		if math.type(v) == "float" and v == math.floor(v) and v > -1e15 and v < 1e15 then
			return string.format("%.1f", v)
		end
		return tostring(v)
	elseif tv ~= "table" then
		return tostring(v)
	end
	local mt = getmetatable(v)
	if mt and mt.__tostring then
		return tostring(v)
	end
	depth = depth or 0
	seen = seen or {}
	if seen[v] then
		return "<cycle>"
	end
	if depth >= 3 then
		return "{...}"
	end
	seen[v] = true
	local parts = {}
	local n = #v
	for i = 1, n do
		parts[#parts + 1] = repr(v[i], depth + 1, seen)
	end
	for _, k in ipairs(sorted_keys(v)) do
		if not (math.type(k) == "integer" and k >= 1 and k <= n) then
			local ks = is_identifier(k) and k or "[" .. repr(k, depth + 1, seen) .. "]"
			parts[#parts + 1] = ks .. " = " .. repr(v[k], depth + 1, seen)
		end
	end
	seen[v] = nil
	if #parts > 20 then
		local more = #parts - 20
		for i = #parts, 21, -1 do
			parts[i] = nil
		end
		parts[21] = "...(" .. more .. " more)"
	end
	return "{" .. table.concat(parts, ", ") .. "}"
end
M.repr = repr

---------------------------------------------------------------------------------------------
-- Deep comparison and diffs

local function both_nan(a, b)
	return type(a) == "number" and type(b) == "number" and a ~= a and b ~= b
end

-- Collects up to `limit` differences between expected and actual into `out` as
-- "at <path>: ..." lines. Returns true when equal.
local function deep_diff(actual, expected, path, out, limit, seen)
	if rawequal(actual, expected) or both_nan(actual, expected) then
		return true
	end
	if type(actual) ~= "table" or type(expected) ~= "table" then
		if type(actual) ~= "table" and type(expected) ~= "table" and actual == expected then
			return true -- 1 == 1.0
		end
		if #out < limit then
			out[#out + 1] = string.format("at %s: expected %s, got %s",
				path == "" and "top level" or path, repr(expected), repr(actual))
		end
		return false
	end
	local mta, mte = getmetatable(actual), getmetatable(expected)
	if mta and mta == mte and mta.__eq then
		if actual == expected then
			return true
		end
	end
	seen[actual] = seen[actual] or {}
	if seen[actual][expected] then
		return true -- already being compared higher up (cycle)
	end
	seen[actual][expected] = true
	local equal = true
	for _, k in ipairs(sorted_keys(expected)) do
		local sub = path .. fmt_key(k)
		if actual[k] == nil then
			equal = false
			if #out < limit then
				out[#out + 1] = string.format("at %s: missing, expected %s", sub,
					repr(expected[k]))
			end
		elseif not deep_diff(actual[k], expected[k], sub, out, limit, seen) then
			equal = false
		end
	end
	for _, k in ipairs(sorted_keys(actual)) do
		if expected[k] == nil then
			equal = false
			if #out < limit then
				out[#out + 1] = string.format("at %s: unexpected, got %s",
					path .. fmt_key(k), repr(actual[k]))
			end
		end
	end
	seen[actual][expected] = nil
	return equal
end

--- Deep equality: tables compare by content (keys and values, recursively), other values
--- with ==, NaN equals NaN.
function M.deep_equal(a, b)
	return deep_diff(a, b, "", {}, 0, {})
end

local function split_lines(s)
	local lines = {}
	for line in (s .. "\n"):gmatch("(.-)\r?\n") do
		lines[#lines + 1] = line
	end
	return lines
end

--- Line diff of two multi-line strings ("-" expected, "+" actual, 2 lines of context).
function M.line_diff(expected, actual)
	local a, b = split_lines(expected), split_lines(actual)
	-- Trim common prefix and suffix so the LCS table stays small.
	local pre = 0
	while pre < #a and pre < #b and a[pre + 1] == b[pre + 1] do
		pre = pre + 1
	end
	local suf = 0
	while suf < #a - pre and suf < #b - pre and a[#a - suf] == b[#b - suf] do
		suf = suf + 1
	end
	local ops = {} -- { kind = " "|"-"|"+", text, ln }
	for i = 1, pre do
		ops[#ops + 1] = { " ", a[i] }
	end
	local na, nb = #a - pre - suf, #b - pre - suf
	if na * nb > 250000 then
		for i = 1, na do
			ops[#ops + 1] = { "-", a[pre + i] }
		end
		for j = 1, nb do
			ops[#ops + 1] = { "+", b[pre + j] }
		end
	else
		local L = {}
		for i = na + 1, 1, -1 do
			L[i] = {}
			for j = nb + 1, 1, -1 do
				if i > na or j > nb then
					L[i][j] = 0
				elseif a[pre + i] == b[pre + j] then
					L[i][j] = L[i + 1][j + 1] + 1
				else
					L[i][j] = math.max(L[i + 1][j], L[i][j + 1])
				end
			end
		end
		local i, j = 1, 1
		while i <= na or j <= nb do
			if i <= na and j <= nb and a[pre + i] == b[pre + j] then
				ops[#ops + 1] = { " ", a[pre + i] }
				i, j = i + 1, j + 1
			elseif i <= na and (j > nb or L[i + 1][j] >= L[i][j + 1]) then
				ops[#ops + 1] = { "-", a[pre + i] }
				i = i + 1
			else
				ops[#ops + 1] = { "+", b[pre + j] }
				j = j + 1
			end
		end
	end
	for i = #a - suf + 1, #a do
		ops[#ops + 1] = { " ", a[i] }
	end
	-- Keep changed lines plus 2 lines of context; elide the rest.
	local keep = {}
	for i, op in ipairs(ops) do
		if op[1] ~= " " then
			for k = i - 2, i + 2 do
				keep[k] = true
			end
		end
	end
	local out, elided = {}, false
	for i, op in ipairs(ops) do
		if keep[i] then
			local text = op[2]:gsub("[%z\1-\8\11-\31\127]", function(c)
				return string.format("\\%d", c:byte())
			end)
			out[#out + 1] = op[1] .. " " .. text
			elided = false
		elseif not elided then
			out[#out + 1] = "  ..."
			elided = true
		end
	end
	return table.concat(out, "\n")
end

---------------------------------------------------------------------------------------------
-- Failures, skips

local failure_mt = {
	__tostring = function(f)
		return (f.where and f.where .. ": " or "") .. f.message
	end,
}

-- The first stack frame outside this module: the testcase line that called the assertion.
local function caller_where()
	for level = 3, 40 do
		local info = debug.getinfo(level, "Sl")
		if not info then
			break
		end
		if info.source ~= THIS_SOURCE and info.what ~= "C" and info.currentline > 0 then
			return info.short_src .. ":" .. info.currentline
		end
	end
	return nil
end

--- Raises a failure: { rigor_failure = true, message, where = "file:line", details }.
local function raise_failure(message, user_msg, details)
	if user_msg ~= nil then
		message = tostring(user_msg) .. ": " .. message
	end
	local f = setmetatable({
		rigor_failure = true,
		message = message,
		details = details,
		where = caller_where(),
		traceback = debug.traceback("", 3):gsub("^\n", ""),
	}, failure_mt)
	error(f, 0)
end

--- Fails the current case with `msg`.
function M.fail(msg)
	raise_failure(msg ~= nil and tostring(msg) or "failed")
end

local skip_mt = { __tostring = function(s) return "skipped: " .. s.reason end }

--- Skips the current case (or, from before_all, the whole suite) with `reason`.
function M.skip(reason)
	error(setmetatable({ rigor_skip = true, reason = reason ~= nil and tostring(reason)
		or "skipped" }, skip_mt), 0)
end

--- Classifies an error value: "skip", "fail", "abort", "infra" or "error".
function M.classify(err)
	if type(err) == "table" then
		if rawget(err, "rigor_skip") then
			return "skip"
		elseif rawget(err, "rigor_failure") then
			return "fail"
		elseif rawget(err, "rigor_abort") then
			return "abort"
		elseif rawget(err, "rigor_infra") then
			return "infra"
		end
	end
	return "error"
end

---------------------------------------------------------------------------------------------
-- Assertions. All take an optional trailing `msg` that prefixes the failure message.

local A = {}
M.assert = A

local function is_multiline(v)
	return type(v) == "string" and v:find("\n", 1, true) ~= nil
end

function A.eq(actual, expected, msg)
	if type(actual) == "table" and type(expected) == "table" then
		local out = {}
		if deep_diff(actual, expected, "", out, 10, {}) then
			return actual
		end
		local text = table.concat(out, "\n")
		raise_failure("tables differ:\n" .. text, msg, text)
	end
	if rawequal(actual, expected) or both_nan(actual, expected)
		or (type(actual) == type(expected) and actual == expected) then
		return actual
	end
	if type(actual) == "string" and type(expected) == "string"
		and (is_multiline(actual) or is_multiline(expected)) then
		local d = M.line_diff(expected, actual)
		raise_failure("strings differ (- expected, + actual):\n" .. d, msg, d)
	end
	raise_failure(string.format("expected %s, got %s", repr(expected), repr(actual)), msg)
end

function A.ne(actual, unexpected, msg)
	if M.deep_equal(actual, unexpected) then
		raise_failure(string.format("expected a value other than %s", repr(unexpected)), msg)
	end
	return actual
end

--- Like Lua's assert: passes all arguments through when `v` is truthy, so
--- `t.assert.ok(rig.power:on())` turns a `nil, msg` return into a failure.
function A.ok(v, msg, ...)
	if not v then
		raise_failure(msg ~= nil and tostring(msg) or ("expected a true value, got " .. repr(v)))
	end
	return v, msg, ...
end

function A.truthy(v, msg)
	if not v then
		raise_failure("expected a truthy value, got " .. repr(v), msg)
	end
	return v
end

function A.falsy(v, msg)
	if v then
		raise_failure("expected a falsy value, got " .. repr(v), msg)
	end
	return v
end

function A.is_nil(v, msg)
	if v ~= nil then
		raise_failure("expected nil, got " .. repr(v), msg)
	end
end

function A.not_nil(v, msg)
	if v == nil then
		raise_failure("expected a non-nil value", msg)
	end
	return v
end

function A.type(v, tname, msg)
	if type(v) ~= tname then
		raise_failure(string.format("expected a %s, got %s (%s)", tname, type(v), repr(v)), msg)
	end
	return v
end

--- Lua pattern match; returns the captures.
function A.match(s, pattern, msg)
	if type(s) ~= "string" then
		raise_failure(string.format("expected a string matching %s, got %s", repr(pattern),
			repr(s)), msg)
	end
	local caps = table.pack(s:match(pattern))
	if caps[1] == nil then
		raise_failure(string.format("expected %s to match pattern %s", repr(s), repr(pattern)),
			msg)
	end
	return table.unpack(caps, 1, caps.n)
end

function A.not_match(s, pattern, msg)
	if type(s) == "string" and s:match(pattern) then
		raise_failure(string.format("expected %s not to match pattern %s", repr(s),
			repr(pattern)), msg)
	end
	return s
end

--- Substring (plain) for strings, element (deep-equal value) for tables.
function A.contains(haystack, needle, msg)
	if type(haystack) == "string" then
		if type(needle) == "string" and haystack:find(needle, 1, true) then
			return haystack
		end
	elseif type(haystack) == "table" then
		for _, v in pairs(haystack) do
			if M.deep_equal(v, needle) then
				return haystack
			end
		end
	end
	raise_failure(string.format("expected %s to contain %s", repr(haystack), repr(needle)), msg)
end

function A.near(actual, expected, tolerance, msg)
	if type(actual) ~= "number" or type(expected) ~= "number" then
		raise_failure(string.format("expected numbers, got %s and %s", repr(actual),
			repr(expected)), msg)
	end
	tolerance = tolerance or 1e-9
	if not (math.abs(actual - expected) <= tolerance) then
		raise_failure(string.format("expected %s +/- %s, got %s (off by %s)", repr(expected),
			repr(tolerance), repr(actual), repr(actual - expected)), msg)
	end
	return actual
end

local function compare(name, op, test)
	A[name] = function(a, b, msg)
		local ok, res = pcall(test, a, b)
		if not ok or not res then
			raise_failure(string.format("expected %s %s %s", repr(a), op, repr(b)), msg)
		end
		return a
	end
end
compare("lt", "<", function(a, b) return a < b end)
compare("le", "<=", function(a, b) return a <= b end)
compare("gt", ">", function(a, b) return a > b end)
compare("ge", ">=", function(a, b) return a >= b end)

--- Expects fn(...) to raise. `pattern` (optional) must match tostring(error) as a Lua
--- pattern or occur in it as plain text. Returns the error value. Timeouts, interrupts and
--- skips raised inside fn are passed on, not caught.
function A.error(fn, pattern, msg, ...)
	local ok, err = pcall(fn, ...)
	if ok then
		raise_failure("expected an error, but the function returned", msg)
	end
	local kind = M.classify(err)
	if kind == "abort" or kind == "skip" then
		error(err, 0)
	end
	if pattern ~= nil then
		local s = tostring(type(err) == "table" and rawget(err, "message") or err)
		if type(err) == "table" and getmetatable(err) and getmetatable(err).__tostring then
			s = tostring(err)
		end
		local found = s:find(pattern, 1, true)
		if not found then
			local pok, res = pcall(string.find, s, pattern)
			found = pok and res
		end
		if not found then
			raise_failure(string.format("expected an error matching %s, got %s", repr(pattern),
				repr(s)), msg)
		end
	end
	return err
end

---------------------------------------------------------------------------------------------
-- Logging from testcases. The runner installs the writer; outside a run it goes nowhere.

M._log_writer = nil

--- Writes a formatted line to the current case's log file.
function M.log(fmt, ...)
	if M._log_writer then
		M._log_writer(select("#", ...) > 0 and string.format(fmt, ...) or tostring(fmt))
	end
end

---------------------------------------------------------------------------------------------
-- Suites and cases

local Suite = {}
Suite.__index = Suite
M.Suite = Suite

local function check_list(v, what, level)
	if v == nil then
		return {}
	end
	if type(v) == "string" then
		return { v }
	end
	if type(v) ~= "table" then
		error(what .. " must be a list of strings", level + 1)
	end
	local out = {}
	for i, s in ipairs(v) do
		if type(s) ~= "string" then
			error(string.format("%s[%d] must be a string", what, i), level + 1)
		end
		out[#out + 1] = s
	end
	return out
end

local function check_opts(opts, level)
	if opts == nil then
		return { requires = {}, tags = {} }
	end
	if type(opts) ~= "table" then
		error("options must be a table", level + 1)
	end
	local known = { requires = true, tags = true, timeout = true, safe_state = true,
		skip = true }
	for k in pairs(opts) do
		if not known[k] then
			error(string.format("unknown option '%s'", tostring(k)), level + 1)
		end
	end
	if opts.timeout ~= nil and (math.type(opts.timeout) ~= "integer" or opts.timeout <= 0) then
		error("timeout must be a positive integer (milliseconds)", level + 1)
	end
	if opts.skip ~= nil and type(opts.skip) ~= "string" then
		error("skip must be a reason string", level + 1)
	end
	return {
		requires = check_list(opts.requires, "requires", level + 1),
		tags = check_list(opts.tags, "tags", level + 1),
		timeout = opts.timeout,
		safe_state = opts.safe_state,
		skip = opts.skip,
	}
end

--- Creates and registers a suite. opts: requires, tags, timeout (ms per case, default
--- 60000), safe_state (default true), skip (reason: skip every case).
function M.suite(name, opts)
	if type(name) ~= "string" or name == "" then
		error("suite name must be a non-empty string", 2)
	end
	local o = check_opts(opts, 2)
	local info = debug.getinfo(2, "Sl")
	local s = setmetatable({
		name = name,
		requires = o.requires,
		tags = o.tags,
		timeout = o.timeout or DEFAULT_TIMEOUT,
		safe_state = o.safe_state ~= false,
		skip_reason = o.skip,
		file = info and info.short_src,
		line = info and info.currentline,
		cases = {},
		hooks = { before_all = {}, after_all = {}, before_each = {}, after_each = {} },
	}, Suite)
	registered[#registered + 1] = s
	return s
end

local function hook_adder(kind)
	return function(self, fn)
		if getmetatable(self) ~= Suite then
			error("call as suite:" .. kind .. "(fn)", 2)
		end
		if type(fn) ~= "function" then
			error(kind .. " expects a function", 2)
		end
		local list = self.hooks[kind]
		list[#list + 1] = fn
		return self
	end
end
Suite.before_all = hook_adder("before_all")
Suite.after_all = hook_adder("after_all")
Suite.before_each = hook_adder("before_each")
Suite.after_each = hook_adder("after_each")

--- Adds a case: s:case(name, [opts,] fn). opts: requires, tags, timeout, skip.
function Suite:case(name, opts, fn)
	if getmetatable(self) ~= Suite then
		error("call as suite:case(name, [opts,] fn)", 2)
	end
	if fn == nil and type(opts) == "function" then
		opts, fn = nil, opts
	end
	if type(name) ~= "string" or name == "" then
		error("case name must be a non-empty string", 2)
	end
	if type(fn) ~= "function" then
		error("case '" .. name .. "' needs a function", 2)
	end
	for _, c in ipairs(self.cases) do
		if c.name == name then
			error(string.format("duplicate case '%s' in suite '%s'", name, self.name), 2)
		end
	end
	local o = check_opts(opts, 2)
	if o.safe_state ~= nil then
		error("safe_state is a suite option", 2)
	end
	local info = debug.getinfo(2, "Sl")
	local c = {
		name = name,
		suite = self,
		requires = o.requires,
		tags = o.tags,
		timeout = o.timeout,
		skip_reason = o.skip,
		fn = fn,
		file = info and info.short_src,
		line = info and info.currentline,
	}
	self.cases[#self.cases + 1] = c
	return c
end

--- Runner internals: returns and forgets the suites created since the last call.
function M._take_registered()
	local r = registered
	registered = {}
	return r
end

M.DEFAULT_TIMEOUT = DEFAULT_TIMEOUT

return M
