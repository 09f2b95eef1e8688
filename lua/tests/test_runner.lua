-- SPDX-License-Identifier: MIT
-- The runner: hook order, cleanup guarantees, timeouts, skips, capability gating,
-- selection, exit codes, safe state.

local H = require "harness"
local core = H.core
local fake_rig = require "fake_rig"

-- A suite whose hooks and cases record their calls with TRACE (see harness.lua).
local HOOKS = [[
local t = require "rigor.test"
local s = t.suite("s", { timeout = 200 })
s:before_all(function(rig) TRACE("ba") end)
s:after_all(function(rig) TRACE("aa") end)
s:before_each(function(rig, c) TRACE("be") end)
s:after_each(function(rig, c) TRACE("ae:" .. c.status) end)
]]

local function suite(body)
	return HOOKS .. body .. "\nreturn s\n"
end

H.test("hook order, passing cases", function()
	local code, out, _, rig = H.run{ files = { suite [[
s:case("one", function(rig, c) TRACE("1") end)
s:case("two", function(rig, c) TRACE("2") end)
]] } }
	H.eq(code, 0, "all pass: exit 0")
	H.eq(H.take_trace(), "ba,be,1,ae:pass,be,2,ae:pass,aa", "hook order (suite and case)")
	H.eq(rig:trace(), "safe,safe,safe,safe", "safe after each case, after the suite, at the end")
	H.has(out, { "ok    one", "ok    two", "2 cases: 2 passed, 0 failed, 0 errors, 0 skipped" },
		"human output")
end)

H.test("hook order when cases fail, error, time out", function()
	local code, out, _, rig = H.run{ files = { suite [[
s:case("fail", function() TRACE("f"); t.assert.eq(1, 2) end)
s:case("error", function() TRACE("e"); error("boom") end)
s:case("busy", { timeout = 30 }, function() TRACE("b"); while true do end end)
s:case("sleep", { timeout = 30 }, function() TRACE("z"); require("rigor.core").sleep(10^6) end)
s:case("caught", { timeout = 30 }, function()
	TRACE("c")
	for i = 1, 1000 do pcall(function() while true do end end) end
	TRACE("c-survived")   -- never: the abort is raised again after each pcall
end)
s:case("after", function() TRACE("a") end)
]] } }
	H.eq(code, 1, "failures: exit 1")
	H.eq(H.take_trace(), "ba,be,f,ae:fail,be,e,ae:error,be,b,ae:error,be,z,ae:error,"
		.. "be,c,ae:error,be,a,ae:pass,aa", "after_each runs after fail/error/timeout; "
		.. "a pcall loop cannot survive its case's timeout")
	H.eq(rig:trace(), "safe,safe,safe,safe,safe,safe,safe,safe", "safe after every case")
	H.has(out, { "FAIL  fail", "expected 2, got 1", "ERROR error", "boom",
		"ERROR busy", "timed out after 30 ms", "ERROR sleep", "ERROR caught", "ok    after" },
		"statuses and messages")
	H.has(out, { "timed out after 30 ms (at " }, "a timeout says where the case was")
end)

H.test("timeouts", function()
	local t0 = core.now_ms()
	local code, out = H.run{ files = { [[
local t = require "rigor.test"
local s = t.suite("to", { timeout = 40 })
s:case("suite default", function() while true do end end)
s:case("own", { timeout = 20 }, function() require("rigor.core").sleep(10^6) end)
s:case("in before_each", { timeout = 20 }, function() end)
s:before_each(function(rig, c)
	if c.name == "in before_each" then while true do end end
end)
return s
]] } }
	local took = core.now_ms() - t0
	H.eq(code, 1, "timeouts: exit 1")
	H.has(out, { "ERROR suite default (", "timed out after 40 ms",
		"ERROR own (", "timed out after 20 ms",  -- measured ms vary; the limit does not
		"before_each: timed out after 20 ms" }, "suite and case timeouts, in before_each")
	H.ok(took < 2000, "timeouts do not wait much longer than asked", took .. " ms")
end)

H.test("before_each / after_each failures", function()
	local code, out = H.run{ files = { suite [[
s:before_each(function(rig, c) if c.name == "be-fails" then t.assert.eq("x", "y") end end)
s:after_each(function(rig, c) if c.name == "ae-fails" then error("cleanup broke") end end)
s:case("be-fails", function() TRACE("never") end)
s:case("ae-fails", function() TRACE("body") end)
]] } }
	H.eq(code, 1, "exit 1")
	H.eq(H.take_trace(), "ba,be,ae:fail,be,body,ae:pass,aa",
		"a failing before_each skips the body; after_each still runs")
	H.has(out, { "FAIL  be-fails", 'before_each: expected "y", got "x"', "ERROR ae-fails",
		"after_each: ", "cleanup broke" }, "hook failures are reported with the hook name")
end)

H.test("before_all failure / skip, after_all failure", function()
	local code, out, _, rig = H.run{ files = { [[
local t = require "rigor.test"
local s = t.suite("s")
s:before_all(function() TRACE("ba"); error("no dut") end)
s:after_all(function() TRACE("aa") end)
s:before_each(function() TRACE("be") end)
s:case("a", function() TRACE("a") end)
s:case("b", function() TRACE("b") end)
return s
]] } }
	H.eq(code, 1, "before_all error: exit 1")
	H.eq(H.take_trace(), "ba,aa", "no case runs after before_all fails; after_all runs")
	H.has(out, { "ERROR a", "before_all: ", "no dut", "ERROR b" }, "every case errors")
	H.eq(rig:trace(), "safe,safe", "safe after the suite and at the end")

	code, out = H.run{ files = { [[
local t = require "rigor.test"
local s = t.suite("s")
s:before_all(function() t.skip("no network") end)
s:after_all(function() TRACE("aa") end)
s:case("a", function() TRACE("a") end)
return s
]] } }
	H.eq(code, 0, "before_all skip: exit 0")
	H.has(out, { "SKIP  a: before_all: no network" }, "t.skip in before_all skips the suite")
	H.eq(H.take_trace(), "aa", "after_all still runs")

	code, out = H.run{ files = { [[
local t = require "rigor.test"
local s = t.suite("s")
s:after_all(function() error("teardown failed") end)
s:case("a", function() end)
return s
]] } }
	H.eq(code, 1, "after_all error: exit 1")
	H.has(out, { "ok    a", "ERROR after_all", "teardown failed" },
		"an after_all failure is reported as its own result")
end)

H.test("skip, skip option, capability gating", function()
	local code, out, _, rig = H.run{ rig_opts = { caps = { "power" } }, files = { [[
local t = require "rigor.test"
local s = t.suite("s", { requires = { "power" } })
s:before_each(function() TRACE("be") end)
s:case("dynamic", function() t.skip("no card reader"); TRACE("x") end)
s:case("static", { skip = "broken on rev A" }, function() TRACE("x") end)
s:case("gated", { requires = { "power", "usbboot" } }, function() TRACE("x") end)
s:case("runs", { requires = { "power" } }, function() TRACE("r") end)
local g = t.suite("gated suite", { requires = { "sdmux" } })
g:before_all(function() TRACE("gba") end)
g:after_all(function() TRACE("gaa") end)
g:case("c1", function() TRACE("x") end)
g:case("c2", function() TRACE("x") end)
return { s, g }
]] } }
	H.eq(code, 0, "skips: exit 0")
	H.has(out, { "SKIP  dynamic: no card reader", "SKIP  static: broken on rev A",
		"SKIP  gated: rig lacks capability 'usbboot'", "ok    runs",
		"SKIP  c1: rig lacks capability 'sdmux'", "SKIP  c2: rig lacks capability 'sdmux'",
		"5 skipped" }, "skip reasons")
	H.eq(H.take_trace(), "be,be,r", "gated cases and suites run no hooks")
	H.eq(rig:trace(), "safe,safe,safe,safe", "safe only after cases that started")
end)

H.test("selection by pattern and tag", function()
	local SRC = [[
local t = require "rigor.test"
local s = t.suite("power", { tags = { "smoke" } })
s:case("boots (usb)", { tags = { "slow" } }, function() TRACE("usb") end)
s:case("boots (sd)", function() TRACE("sd") end)
s:case("off", { tags = { "quick" } }, function() TRACE("off") end)
local m = t.suite("mux")
m:case("switch", { tags = { "quick" } }, function() TRACE("switch") end)
return { s, m }
]]
	local path = H.testcase(SRC, "select")
	local function sel(args, want, name)
		args.files = { path }
		local code = H.run(args)
		H.eq(H.take_trace(), want, name)
		return code
	end
	sel({}, "usb,sd,off,switch", "no selection runs everything")
	sel({ case = "boots (usb)" }, "usb", "plain substring with pattern characters")
	sel({ case = "^power/boots" }, "usb,sd", "Lua pattern on suite/case")
	sel({ case = "mux/" }, "switch", "suite prefix")
	sel({ tags = { "quick" } }, "off,switch", "tag")
	sel({ tags = { "smoke" } }, "usb,sd,off", "suite tags apply to its cases")
	sel({ tags = { "smoke", "!slow" } }, "sd,off", "!tag excludes")
	sel({ tags = { "!slow" } }, "sd,off,switch", "only exclusions")
	sel({ tags = "quick", case = "power" }, "off", "tag and pattern combine")
	local code, out = H.run{ files = { path }, case = "nothing-matches" }
	H.eq(code, 0, "no case selected: exit 0")
	H.has(out, { "0 cases selected", "0 cases: 0 passed" }, "no case selected is reported")
end)

H.test("usage and load errors: exit 2", function()
	local function usage(args, want, name)
		local code, _, err = H.run(args)
		H.eq(code, 2, name .. ": exit 2")
		H.has(err, { want }, name .. ": message")
		H.take_trace()
	end
	usage({ files = { "local x = = 1\n" } }, "cannot load", "syntax error")
	usage({ files = { H.tmpdir() .. "/missing.lua" } }, "cannot load", "missing file")
	usage({ files = { "error('oops')\n" } }, "oops", "error while loading")
	usage({ files = { "return 42\n" } }, "defines no suite", "file without suite")
	usage({ files = { "local t = require 'rigor.test'\nt.suite('x', {bogus=1})\n" } },
		"unknown option 'bogus'", "bad suite option")
	local a = "local t = require 'rigor.test'\nt.suite('dup'):case('c', function() end)\n"
	usage({ files = { a, a } }, "duplicate suite 'dup'", "duplicate suite names")
	usage({ files = { a }, reporters = { tap = "/proc/rigor-no-such-dir/x.tap" } }, "TAP report",
		"unwritable report")
	usage({ files = { a }, reporters = { xml = "x" } }, "unknown reporter 'xml'",
		"unknown reporter")
	local runner = require "rigor.runner"
	local errs = {}
	H.eq(runner.main{ files = {}, err = function(s) errs[#errs + 1] = s end }, 2,
		"no rig: exit 2")
	H.has(table.concat(errs), { "no rig given" }, "no rig: message")
	-- a good file next to a broken one: nothing runs
	usage({ files = { "local t = require 'rigor.test'\nt.suite('ok'):case('c', function() "
		.. "TRACE('ran') end)\n", "syntax error here\n" } }, "cannot load", "one bad file")
end)

H.test("infrastructure errors: exit 3", function()
	local code, out = H.run{ files = { [[
local t = require "rigor.test"
local s = t.suite("s")
s:case("fails", function() t.assert.eq(1, 2) end)
s:case("infra", function(rig) rig.power:infra() end)
s:case("later", function() end)
return s
]] } }
	H.eq(code, 3, "infra error wins over failures: exit 3")
	H.has(out, { "ERROR infra", "rig board not responding", "ok    later" },
		"the infra error is reported, the run goes on")

	code, out = H.run{ rig_opts = { safe_fails = true }, files = { [[
local t = require "rigor.test"
t.suite("s"):case("a", function() end)
]] } }
	H.eq(code, 3, "rig:safe() returning nil, msg: exit 3")
	H.has(out, { "ERROR a", "rig:safe() failed after case 's/a': cannot reach power switch" },
		"safe failure is reported on the case")

	code = H.run{ rig_opts = { safe_raises = true }, files = { [[
local t = require "rigor.test"
t.suite("s"):case("a", function() end)
]] } }
	H.eq(code, 3, "rig:safe() raising: exit 3")
	H.eq(H.run{ files = { "local t = require 'rigor.test'\nt.suite('s'):case('a', function(rig)"
		.. " assert(rig.power:broken()) end)\n" } }, 1,
		"a hardware failure the test asserts on is an ordinary error: exit 1")
end)

H.test("safe_state = false", function()
	local _, _, _, rig = H.run{ files = { [[
local t = require "rigor.test"
local s = t.suite("s", { safe_state = false })
s:case("a", function() end)
s:case("b", function() end)
return s
]] } }
	H.eq(rig:trace(), "", "no safe() at all when every suite run opts out")
	_, _, _, rig = H.run{ files = { [[
local t = require "rigor.test"
local s = t.suite("keep", { safe_state = false })
s:case("a", function() end)
local u = t.suite("usual")
u:case("b", function() end)
return { s, u }
]] } }
	H.eq(rig:trace(), "safe,safe,safe", "opt-out is per suite; the run still ends safe")
end)

H.test("case context and t.log", function()
	local art = H.tmpdir() .. "/ctx-art"
	local code = H.run{ artifacts = art, files = { [[
local t = require "rigor.test"
local s = t.suite("Ctx Suite", { timeout = 1234 })
s:case("Case / One!", { tags = { "x" } }, function(rig, c)
	TRACE(c.name .. "|" .. c.suite .. "|" .. c.id .. "|" .. c.timeout .. "|" .. c.tags[1])
	TRACE(c.log)
	t.log("hello %d", 42)
	assert(c.rig == rig)
end)
return s
]] } }
	H.eq(code, 0, "exit 0")
	local tr = H.take_trace()
	H.has(tr, { "Case / One!|Ctx Suite|Ctx Suite/Case / One!|1234|x" }, "ctx fields")
	H.has(tr, { art .. "/ctx-suite/case-one.log" }, "log path uses slugs")
	H.has(H.read(art .. "/ctx-suite/case-one.log") or "", { "test: hello 42" },
		"t.log writes to the case log")
end)

H.test("runner lines start on their own line after console bytes without a newline", function()
	local art = H.tmpdir() .. "/midline-art"
	local rig = fake_rig.new{ console = "sim-dut login: " }
	local code = H.run{ rig = rig, artifacts = art, files = { [[
local t = require "rigor.test"
local s = t.suite("Mid", { timeout = 1000 })
s:case("prompt", function(rig)
	assert(rig.console:expect("login: "))
	t.log("at the prompt")
end)
return s
]] } }
	H.eq(code, 0, "exit 0")
	local log = H.read(art .. "/mid/prompt.log") or ""
	H.has(log, { "sim-dut login: \n[" }, "the console's unfinished line is ended first")
	local bad
	for line in log:gmatch("[^\n]+") do
		if not line:find("^%[") and not line:find("^event: ") and not line:find("^sim%-dut") then
			bad = bad or line
		end
		if line:find("login: %[") then
			bad = bad or line
		end
	end
	H.ok(bad == nil, "no runner or test line is glued to a console line", bad)
end)

H.test("rig without has()", function()
	local rig = { name = "bare", capabilities = { "power" } }
	local code, out = H.run{ rig = rig, files = { [[
local t = require "rigor.test"
local s = t.suite("s")
s:case("a", { requires = { "power" } }, function() end)
s:case("b", { requires = { "console" } }, function() end)
return s
]] } }
	H.eq(code, 0, "a rig table with only capabilities works")
	H.has(out, { "ok    a", "SKIP  b: rig lacks capability 'console'" }, "capabilities list")
end)

H.test("parse_argv and list", function()
	local runner = require "rigor.runner"
	local a = runner.parse_argv{ "--case", "power/", "--tag", "smoke", "--tag=!slow",
		"--tap", "r.tap", "--junit=j.xml", "--json", "r.json", "--artifacts", "art", "--quiet",
		"--color", "--tap-version", "13", "a.lua", "--", "--odd.lua" }
	H.eq(a.case, "power/", "--case")
	H.eq(table.concat(a.tags, " "), "smoke !slow", "--tag, repeated, with =")
	H.eq(a.reporters.tap .. a.reporters.junit .. a.reporters.json, "r.tapj.xmlr.json",
		"report paths")
	H.eq(a.reporters.tap_version, 13, "--tap-version")
	H.eq(a.reporters.human, false, "--quiet")
	H.eq(a.artifacts .. tostring(a.color), "arttrue", "--artifacts, --color")
	H.eq(table.concat(a.files, " "), "a.lua --odd.lua", "files, -- ends options")
	local none, msg = runner.parse_argv{ "--bogus", "x.lua" }
	H.ok(none == nil and msg == "unknown option '--bogus'", "unknown option", msg)
	none, msg = runner.parse_argv{ "--case" }
	H.ok(none == nil and msg == "option '--case' needs a value", "missing value", msg)
	none, msg = runner.parse_argv{}
	H.ok(none == nil and msg == "no testcase files given", "no files", msg)

	local out = {}
	local path = H.testcase("local t = require 'rigor.test'\n"
		.. "local s = t.suite('p', { tags = {'smoke'} })\n"
		.. "s:case('a', { tags = {'slow'} }, function() TRACE('ran') end)\n"
		.. "s:case('b', function() TRACE('ran') end)\n", "list")
	local code = runner.main{ files = { path }, list = true, tags = { "slow" },
		out = function(s) out[#out + 1] = s end }
	H.eq(code, 0, "--list: exit 0, no rig needed")
	H.eq(table.concat(out), "p/a [smoke,slow]\n", "--list prints selected ids and tags")
	H.eq(H.take_trace(), "", "--list runs nothing")
	out = {}
	code = runner.list{ files = { path }, suites_only = true,
		out = function(s) out[#out + 1] = s end }
	H.eq(code, 0, "runner.list: exit 0")
	H.eq(table.concat(out), "p (2 cases) [smoke]\n", "runner.list suites_only")
	H.eq(runner.list{ files = { H.testcase("syntax error\n", "bad") }, err = function() end },
		2, "runner.list: a file that does not load gives 2")
end)

H.test("parse_argv: -q, --tap-version, list mode", function()
	local runner = require "rigor.runner"
	local a = runner.parse_argv{ "-q", "--list", "--tap-version=14", "x.lua" }
	H.eq(a.reporters.human, false, "-q is --quiet")
	H.eq(a.list, true, "--list")
	H.eq(a.reporters.tap_version, 14, "--tap-version=14")
	local none, msg = runner.parse_argv{ "--tap-version", "12", "x.lua" }
	H.ok(none == nil and msg:find("takes 13 or 14", 1, true), "--tap-version 12 refused", msg)
	a = runner.parse_argv({ "--case", "c", "--tag=t" }, "list")
	H.ok(a and a.case == "c" and a.tags[1] == "t" and #a.files == 0,
		"list mode: --case, --tag, no files needed")
	none, msg = runner.parse_argv({ "--junit", "j.xml" }, "list")
	H.ok(none == nil and msg == "unknown option '--junit'", "list mode refuses run's options", msg)
end)

H.test("cli: --list opens no rig; a run opens it once; usage errors", function()
	local runner = require "rigor.runner"
	local path = H.testcase("local t = require 'rigor.test'\n"
		.. "local s = t.suite('q', { tags = {'smoke'} })\n"
		.. "s:case('a', function() TRACE('ran a') end)\n"
		.. "s:case('b', { tags = {'slow'} }, function() TRACE('ran b') end)\n", "cli")
	local out, err, opened = {}, {}, 0
	local env = {
		out = function(s) out[#out + 1] = s end,
		err = function(s) err[#err + 1] = s end,
		expand = function(p) return { p } end,
		open_rig = function()
			opened = opened + 1
			return require("fake_rig").new()
		end,
	}
	local code = runner.cli({ "--list", "--tag", "!slow", path }, env)
	H.eq(code, 0, "cli --list: exit 0")
	H.eq(table.concat(out), "q/a [smoke]\n", "cli --list prints the selection")
	H.eq(opened, 0, "cli --list does not open the rig")
	H.eq(H.take_trace(), "", "cli --list runs nothing")
	out = {}
	code = runner.cli({ "-q", "--case", "q/b", path }, env)
	H.eq(code, 0, "cli run: exit 0")
	H.eq(opened, 1, "cli run opens the rig once")
	H.eq(H.take_trace(), "ran b", "cli run runs the selection")
	env.open_rig = function() return nil, 3 end
	H.eq(runner.cli({ "-q", path }, env), 3, "cli run: the host's code when the rig cannot open")
	err = {}
	H.eq(runner.cli({ "--bogus", path }, env), 2, "cli: unknown option exits 2")
	H.has(table.concat(err), "rigor: run: unknown option '--bogus' (see 'rigor run --help')",
		"cli: the usage error names the option")
	out = {}
	H.eq(runner.cli_list({ "--case", "q/a" }, { out = env.out, err = env.err,
		default = path }), 0, "cli_list: exit 0")
	H.eq(table.concat(out), "q/a [smoke]\n", "cli_list: --case and the default path")
end)

H.cleanup()
H.done()
