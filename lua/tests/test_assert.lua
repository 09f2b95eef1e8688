-- SPDX-License-Identifier: MIT
-- Assertions: pass/fail behaviour and the failure messages (expected vs actual, string
-- diff, table path diff, file:line of the failing call).

local H = require "harness"
local t = require "rigor.test"

local THIS = debug.getinfo(1, "S").short_src

-- Runs fn, expects a failure; returns the failure table (or a fake one on no failure).
local function failure(fn)
	local ok, e = pcall(fn)
	if ok then
		return { message = "<no failure>" }
	end
	return e
end

local function line_here()
	return debug.getinfo(2, "l").currentline
end

H.test("eq passes", function()
	local ok = pcall(function()
		t.assert.eq(1, 1)
		t.assert.eq(1, 1.0)
		t.assert.eq("a", "a")
		t.assert.eq({ 1, { x = 2 } }, { 1, { x = 2 } })
		t.assert.eq(0 / 0, 0 / 0)
		t.assert.eq(nil, nil)
	end)
	H.ok(ok, "eq accepts equal scalars, deep-equal tables and NaN")
end)

H.test("eq scalar message and where", function()
	local line
	local f = failure(function()
		line = line_here() + 1
		t.assert.eq(2, 3)
	end)
	H.eq(f.rigor_failure, true, "a failure is a table marked rigor_failure")
	H.eq(f.message, "expected 3, got 2", "eq: expected vs actual")
	H.eq(f.where, THIS .. ":" .. line, "eq: where is the testcase file:line")
	H.eq(tostring(f), THIS .. ":" .. line .. ": expected 3, got 2", "tostring(failure)")
	f = failure(function() t.assert.eq("host", "dut") end)
	H.eq(f.message, 'expected "dut", got "host"', "strings are quoted")
	f = failure(function() t.assert.eq(nil, false) end)
	H.eq(f.message, "expected false, got nil", "nil vs false")
	f = failure(function() t.assert.eq(1, "1") end)
	H.eq(f.message, 'expected "1", got 1', "number vs string")
	f = failure(function() t.assert.eq("a\0b\r", "x") end)
	H.has(f.message, { [["a\0b\13"]] }, "control characters are escaped, on one line")
	f = failure(function() t.assert.eq("a\27[0m\nb", "x\nb") end)
	H.has(f.message, { [[+ a\27[0m]] }, "control characters are escaped in diffs")
	f = failure(function() t.assert.eq(2, 3, "relay count") end)
	H.eq(f.message, "relay count: expected 3, got 2", "user message prefixes")
end)

H.test("eq string diff", function()
	local f = failure(function()
		t.assert.eq("line1\nline2\nline3\nline4\nline5\nline6\nline7\n",
			"line1\nline2\nLINE3\nline4\nline5\nline6\nline7\n")
	end)
	H.has(f.message, { "strings differ (- expected, + actual):", "- LINE3", "+ line3",
		"  line2", "  line5" }, "multi-line strings give a line diff with context")
	H.ok(not f.message:find("line7", 1, true) and f.message:find("  ...", 1, true),
		"far context is elided", f.message)
	f = failure(function() t.assert.eq("a\nb", "a\nb\nc") end)
	H.has(f.message, { "- c" }, "a missing line shows as -")
	f = failure(function() t.assert.eq("a\nb\nc", "a\nb") end)
	H.has(f.message, { "+ c" }, "an extra line shows as +")
end)

H.test("eq table diff", function()
	local f = failure(function()
		t.assert.eq({ a = { b = { 1, 2, 2 } } }, { a = { b = { 1, 2, 1 } } })
	end)
	H.has(f.message, { "at .a.b[3]: expected 1, got 2" }, "table diff names the path")
	f = failure(function()
		t.assert.eq({ x = 1, ["with space"] = { true } }, { y = 1, ["with space"] = { false } })
	end)
	H.has(f.message, { 'at ["with space"][1]: expected false, got true',
		"at .x: unexpected, got 1", "at .y: missing, expected 1" },
		"missing/unexpected keys and non-identifier keys")
	f = failure(function() t.assert.eq({ 1 }, 1) end)
	H.has(f.message, { "expected 1, got {1}" }, "table vs scalar")
	local a, b = { n = 1 }, { n = 1 }
	a.self, b.self = a, b
	H.ok(pcall(t.assert.eq, a, b), "cyclic tables compare without looping")
	b.n = 2
	f = failure(function() t.assert.eq(a, b) end)
	H.has(f.message, { "at .n: expected 2, got 1" }, "cyclic tables diff")
	local big1, big2 = {}, {}
	for i = 1, 50 do
		big1[i], big2[i] = i, -i
	end
	f = failure(function() t.assert.eq(big1, big2) end)
	local n = select(2, f.message:gsub("\nat ", ""))
	H.eq(n, 10, "at most 10 differences are listed")
end)

H.test("other assertions", function()
	local function fails(fn, want, name)
		local f = failure(fn)
		H.has(f.message, { want }, name)
	end
	fails(function() t.assert.ne(1, 1) end, "expected a value other than 1", "ne")
	fails(function() t.assert.ne({ 1 }, { 1 }) end, "other than {1}", "ne is deep")
	fails(function() t.assert.truthy(nil) end, "expected a truthy value, got nil", "truthy")
	fails(function() t.assert.falsy(0) end, "expected a falsy value, got 0", "falsy")
	fails(function() t.assert.is_nil(false) end, "expected nil, got false", "is_nil")
	fails(function() t.assert.not_nil(nil) end, "expected a non-nil value", "not_nil")
	fails(function() t.assert.match("login: ", "^Password") end,
		'expected "login: " to match pattern "^Password"', "match")
	fails(function() t.assert.match(nil, "x") end, "expected a string matching", "match nil")
	fails(function() t.assert.not_match("abc", "b") end, "not to match", "not_match")
	fails(function() t.assert.near(3.3, 3.0, 0.1) end, "expected 3.0 +/- 0.1, got 3.3",
		"near")
	fails(function() t.assert.lt(2, 1) end, "expected 2 < 1", "lt")
	fails(function() t.assert.le(2, 1) end, "expected 2 <= 1", "le")
	fails(function() t.assert.gt(1, 2) end, "expected 1 > 2", "gt")
	fails(function() t.assert.ge(1, 2) end, "expected 1 >= 2", "ge")
	fails(function() t.assert.lt(1, "x") end, 'expected 1 < "x"', "lt with mixed types fails")
	fails(function() t.assert.contains("abc", "x") end, 'expected "abc" to contain "x"',
		"contains (string)")
	fails(function() t.assert.contains({ 1, 2 }, 3) end, "to contain 3", "contains (table)")
	fails(function() t.assert.type(1, "string") end, "expected a string, got number",
		"type")
	fails(function() t.assert.ok(nil, "relay stuck", -5) end, "relay stuck",
		"ok reports a rig error message")
	fails(function() t.fail("custom") end, "custom", "t.fail")
	local ok = pcall(function()
		assert(t.assert.match("U-Boot 2024.01", "U%-Boot (%d+)%.(%d+)") == "2024")
		t.assert.near(1.05, 1.0, 0.1)
		t.assert.lt(1, 2); t.assert.le(2, 2); t.assert.gt(3, 2); t.assert.ge(2, 2)
		t.assert.contains("a.b", ".")
		t.assert.contains({ { x = 1 } }, { x = 1 })
		local v, m, c = t.assert.ok(true, "m", 3)
		assert(v == true and m == "m" and c == 3)
		t.assert.truthy(0); t.assert.falsy(nil); t.assert.is_nil(nil)
	end)
	H.ok(ok, "passing forms of the assertions return normally")
end)

H.test("assert.error", function()
	local e = t.assert.error(function() error("bad port 7") end, "port %d")
	H.has(e, { "bad port 7" }, "error: returns the error, Lua pattern matches")
	H.ok(pcall(t.assert.error, function() error("a (b)") end, "a (b)"),
		"error: plain substring matches")
	local f = failure(function() t.assert.error(function() end) end)
	H.has(f.message, { "expected an error, but the function returned" }, "error: no error")
	f = failure(function() t.assert.error(function() error("x") end, "^y") end)
	H.has(f.message, { 'expected an error matching "^y"' }, "error: pattern mismatch")
	local abort = { rigor_abort = "timeout", message = "deadline" }
	local ok, got = pcall(t.assert.error, function() error(abort) end)
	H.ok(not ok and got == abort, "error: timeouts/interrupts are passed on, not caught")
	ok, got = pcall(t.assert.error, function() t.skip("x") end)
	H.ok(not ok and t.classify(got) == "skip", "error: skips are passed on")
end)

H.test("skip and classify", function()
	local ok, e = pcall(t.skip, "no card reader")
	H.ok(not ok and t.classify(e) == "skip" and e.reason == "no card reader", "t.skip")
	H.eq(t.classify("boom"), "error", "strings classify as error")
	H.eq(t.classify({ rigor_infra = true }), "infra", "rigor_infra classifies as infra")
	H.eq(t.classify({ rigor_abort = "SIGINT" }), "abort", "rigor_abort classifies as abort")
end)

H.test("suite definition errors", function()
	local function raises(fn, want, name)
		local ok, e = pcall(fn)
		H.ok(not ok and tostring(e):find(want, 1, true), name, tostring(e))
	end
	raises(function() t.suite("") end, "suite name must be", "empty suite name")
	raises(function() t.suite("s", { timout = 5 }) end, "unknown option 'timout'",
		"misspelt option")
	raises(function() t.suite("s", { timeout = 1.5 }) end, "timeout must be a positive integer",
		"fractional timeout")
	raises(function() t.suite("s", { requires = { 1 } }) end, "requires[1] must be a string",
		"bad requires")
	local s = t.suite("s")
	s:case("a", function() end)
	raises(function() s:case("a", function() end) end, "duplicate case 'a'", "duplicate case")
	raises(function() s:case("b") end, "needs a function", "case without function")
	raises(function() s.case("c", function() end) end, "call as suite:case", "s.case vs s:case")
	raises(function() s:before_each(42) end, "expects a function", "bad hook")
	raises(function() s:case("d", { safe_state = false }, function() end) end,
		"safe_state is a suite option", "safe_state on a case")
	local c = s:case("e", { tags = "slow" }, function() end)
	H.eq(c.tags[1], "slow", "a single tag may be a string")
	t._take_registered()
end)

H.test("repr", function()
	H.eq(t.repr(1.0), "1.0", "floats with integral values keep .0")
	H.eq(t.repr({ 1, 2, x = "y" }), '{1, 2, x = "y"}', "tables as constructors")
	H.eq(t.repr(setmetatable({}, { __tostring = function() return "<mux>" end })), "<mux>",
		"__tostring is used")
	local deep = { { { { { 1 } } } } }
	H.eq(t.repr(deep), "{{{{...}}}}", "depth is limited")
end)

H.done()
