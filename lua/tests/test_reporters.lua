-- SPDX-License-Identifier: MIT
-- Reporters: TAP parsed by Test::Harness (prove / TAP::Parser), JUnit validated with
-- xmllint against lua/schema/junit.xsd, JSON decoded, per-case log files, human output.

local H = require "harness"
local core = H.core

local XSD = "lua/schema/junit.xsd"

-- Console bytes that are hostile to XML and JSON: CDATA end, ESC, NUL, invalid UTF-8.
local NASTY = "U-Boot ]]> <&> \27[32mgreen\27[0m nul:\0 bad:\255\254 ok:\u{e9}\u{1F600}\nlogin: "

local SRC = [==[
local t = require "rigor.test"
local s = t.suite("power & <mux>", { tags = { "smoke" } })
s:case("boots \"to\" login # 1", function(rig)
	rig.power:on()
	t.assert.ok(rig.console:expect("login:", 1000))
end)
s:case("mux is dut", function(rig) t.assert.eq(rig.sdmux:get(), "dut") end)
s:case("usb boot", { requires = { "usbboot" } }, function() end)
s:case("raises", function() error("bad \0 byte \255 ]]" .. "> here") end)
s:case("skipped", function() t.skip("no # card") end)
local m = t.suite("second")
m:case("fine", function() end)
return { s, m }
]==]

local function run_all(dir, extra)
	local reporters = { human = true, tap = dir .. "/report.tap", junit = dir .. "/junit.xml",
		json = dir .. "/report.json" }
	for k, v in pairs(extra or {}) do
		reporters[k] = v
	end
	return H.run{ files = { H.testcase(SRC, "rep") }, artifacts = dir .. "/artifacts",
		rig_opts = { console = NASTY }, reporters = reporters }
end

local dir = H.tmpdir() .. "/reports"
local code, out = run_all(dir)

H.test("exit code", function()
	H.eq(code, 1, "failures: exit 1")
end)

local function has_prog(name)
	return H.sh("command -v " .. name) == 0
end

H.test("TAP", function()
	local tap = H.read(dir .. "/report.tap") or ""
	H.ok(tap:sub(1, 15) == "TAP version 14\n", "starts with TAP version 14", tap:sub(1, 40))
	H.has(tap, { "# Subtest: power & <mux>", "    ok 3 - usb boot # SKIP rig lacks capability "
		.. "'usbboot'", "    ok 5 - skipped # SKIP no \\# card",
		'    ok 1 - boots "to" login \\# 1', "    not ok 2 - mux is dut", "      ---",
		"      ...", "    1..5", "not ok 1 - power & <mux>", "ok 2 - second", "1..2" },
		"subtests, SKIP directives, escaped #, YAML blocks, plans")
	if not has_prog("prove") then
		H.skip("TAP parses with prove", "prove not installed")
		return
	end
	local st, res = H.sh("perl lua/tests/tap-check.pl " .. dir .. "/report.tap")
	H.eq(st, 0, "tap-check ran")
	H.has(res, { "top version=14", "tests=2 passed=1 failed=1 skipped=0 parse_errors=0" },
		"top level: one test point per suite, no parse errors")
	H.has(res, { "sub name=power & <mux> tests=5 passed=1 failed=2 skipped=2 parse_errors=0 "
		.. "yaml=2", 'messages=expected "dut", got "host"|' },
		"subtest stream with YAML diagnostics parses")
	H.has(res, { "sub name=second tests=1 passed=1 failed=0 skipped=0 parse_errors=0" },
		"second subtest parses")

	-- prove itself, on a passing run (prove exits 0 only if it parsed everything).
	local pdir = H.tmpdir() .. "/prove"
	local src = H.testcase("local t = require 'rigor.test'\nlocal s = t.suite('p')\n"
		.. "s:case('a', function() end)\ns:case('b', function() t.skip('why') end)\n", "pass")
	local accepts14 = H.sh("perl -MTAP::Parser -e 'exit($TAP::Parser::VERSION >= 3.48 ? 0 : 1)'")
		== 0
	local versions = accepts14 and { 14, 13 } or { 13 }
	for _, v in ipairs(versions) do
		local path = pdir .. "/v" .. v .. ".tap"
		local c = H.run{ files = { src }, reporters = { tap = path, tap_version = v } }
		H.eq(c, 0, "passing run for prove (TAP " .. v .. ")")
		local pst, pout = H.sh("prove -v --exec cat " .. path)
		H.ok(pst == 0 and pout:find("Result: PASS", 1, true), "prove parses TAP version " .. v
			.. " output and passes", pout)
	end
	if not accepts14 then
		H.skip("prove parses TAP version 14", "Test::Harness < 3.48 rejects version 14; "
			.. "tap-check.pl parsed it as 13 above")
	end
	local fst, fout = H.sh("sed 's/^TAP version 14/TAP version 13/' " .. dir
		.. "/report.tap > " .. pdir .. "/fail.tap && prove --exec cat " .. pdir .. "/fail.tap")
	H.ok(fst ~= 0 and fout:find("Failed 1/2 subtests", 1, true) and
		not fout:find("Parse errors", 1, true), "prove reads the failing run: 1/2 failed, "
		.. "no parse errors", fout)
end)

H.test("JUnit", function()
	local xml = H.read(dir .. "/junit.xml") or ""
	if not has_prog("xmllint") then
		H.skip("JUnit validates", "xmllint not installed")
	else
		local st, res = H.sh("xmllint --noout --schema " .. XSD .. " " .. dir .. "/junit.xml")
		H.ok(st == 0, "JUnit validates against lua/schema/junit.xsd", res)
		-- the same file still validates after the runner's worst-case inputs: check that
		-- a failing validation is detected at all
		local bad = H.tmpdir() .. "/bad.xml"
		local f = assert(io.open(bad, "w"))
		f:write('<testsuites><testsuite name="x"/></testsuites>')
		f:close()
		H.ok(H.sh("xmllint --noout --schema " .. XSD .. " " .. bad) ~= 0,
			"the schema rejects a testsuite without counts")
	end
	H.has(xml, { '<testsuite name="power &amp; &lt;mux&gt;" tests="5" failures="1" errors="1"'
		.. ' skipped="2"', 'hostname="', 'timestamp="',
		'<testcase classname="power &amp; &lt;mux&gt;" name="boots &quot;to&quot; login # 1"',
		'<failure message="expected &quot;dut&quot;, got &quot;host&quot;" type="assertion">',
		'<error message="', '<skipped message="rig lacks capability \'usbboot\'"/>',
		"<system-out><![CDATA[", "]]]]><![CDATA[>", "\\x1B[32mgreen", "nul:\\x00",
		"bad:\\xFF\\xFE", "ok:\u{e9}\u{1F600}", "event: power:on" },
		"counts, escaping, CDATA split, invalid bytes shown as \\xNN, log in system-out")
	H.ok(not xml:find("\27", 1, true) and not xml:find("\0", 1, true) and utf8.len(xml),
		"no control characters, valid UTF-8")
	H.ok(xml:find("</testcase>\n    <system%-out><!%[CDATA%[[^\n]*runner: suite 'power & <mux>' "
		.. "before_all") ~= nil, "the suite log (before_all) is the testsuite's system-out", xml)
end)

H.test("JSON", function()
	local text = H.read(dir .. "/report.json") or ""
	local ok, doc = pcall(core.json_decode, text)
	H.ok(ok and type(doc) == "table", "JSON report decodes", tostring(doc))
	if not ok then
		return
	end
	H.eq(doc.schema, "rigor.run/1", "schema")
	H.eq(doc.rig.name, "fake", "rig name")
	H.eq(doc.rig.device_type, "sim", "device type")
	H.eq(doc.exit_code, 1, "exit code")
	H.eq(doc.totals.cases, 6, "totals.cases")
	H.eq(doc.totals.passed, 2, "totals.passed")
	H.eq(doc.totals.failed, 1, "totals.failed")
	H.eq(doc.totals.errors, 1, "totals.errors")
	H.eq(doc.totals.skipped, 2, "totals.skipped")
	H.ok(type(doc.timestamp) == "string" and doc.timestamp:match("^%d+%-%d+%-%d+T"),
		"timestamp", doc.timestamp)
	H.eq(#doc.suites, 2, "two suites")
	local cases = doc.suites[1].cases
	H.eq(cases[2].status, "fail", "case status")
	H.eq(cases[2].message, 'expected "dut", got "host"', "case message")
	H.ok(cases[2].where and cases[2].where:match("rep%.lua:7$"), "case where", cases[2].where)
	H.eq(cases[3].status, "skip", "skip status")
	H.eq(cases[4].status, "error", "error status")
	H.ok(utf8.len(cases[4].message) and cases[4].message:find("\\xFF", 1, true)
		and cases[4].message:find("bad \\x00 byte", 1, true),
		"invalid UTF-8 and NUL in messages are escaped", cases[4].message)
	H.eq(cases[1].log, dir .. "/artifacts/power-mux/boots-to-login-1.log", "log path")
	H.ok(type(cases[1].duration_ms) == "number", "duration_ms")
	H.eq(cases[1].id, "power & <mux>/boots \"to\" login # 1", "case id")
	H.eq(#doc.infra_errors, 0, "empty arrays stay arrays")
end)

H.test("per-case logs", function()
	local log = H.read(dir .. "/artifacts/power-mux/boots-to-login-1.log")
	H.ok(log ~= nil, "case log exists")
	H.has(log or "", { "runner: case 'power & <mux>/boots \"to\" login # 1' start",
		"event: power:on", "event: console:expect login:", "U-Boot ]]>",
		"event: safe", "runner: case 'power & <mux>/boots \"to\" login # 1' pass" },
		"log has runner lines, rig events, console bytes, safe()")
	local flog = H.read(dir .. "/artifacts/power-mux/mux-is-dut.log") or ""
	H.has(flog, { "fail", 'expected "dut", got "host"', "stack traceback:", "rep.lua:7" },
		"failure message and traceback in the log")
	H.ok(H.read(dir .. "/artifacts/power-mux/suite.log") ~= nil, "suite log exists")
	H.ok(H.read(dir .. "/artifacts/power-mux/usb-boot.log") == nil,
		"no log for a case skipped before it started")
end)

H.test("human output", function()
	H.has(out, { "rigor: rig 'fake' (sim), 6 cases selected from 1 file", "power & <mux>",
		"  FAIL  mux is dut", "rep.lua:7: expected \"dut\", got \"host\"",
		"log: " .. dir .. "/artifacts/power-mux/mux-is-dut.log",
		"  SKIP  usb boot: rig lacks capability 'usbboot'",
		"FAIL 6 cases: 2 passed, 1 failed, 1 errors, 2 skipped in",
		"tap: " .. dir .. "/report.tap", "junit: " .. dir .. "/junit.xml",
		"json: " .. dir .. "/report.json", "artifacts: " .. dir .. "/artifacts" },
		"live lines, details, summary, where reports are")
	H.ok(not out:find("\27", 1, true), "no colour unless asked")
	local _, cout = H.run{ files = { "local t = require 'rigor.test'\n"
		.. "t.suite('c'):case('a', function() end)\n" }, color = true }
	H.has(cout, { "\27[32mok   \27[0m a", "\27[32mok\27[0m 1 case" }, "colour when asked")
end)

-- Image identity: a before_all that flashes puts the image in every report. The name and
-- version hold what XML, JSON and TAP must escape.
H.test("image identity in every report", function()
	local idir = H.tmpdir() .. "/image"
	local odd = 'odd "os" <&> \\ #1\nline2'
	local isrc = H.testcase([[
local t = require "rigor.test"
local s = t.suite("flashes")
s:before_all(function(rig) assert(rig:flash("/images/os-1.2.img.gz")) end)
s:case("sees rig.image", function(rig)
	t.assert.eq(rig.image.name, "os-1.2.img.gz")
	t.assert.eq(rig.image.os_release.ID, "fake-os")
end)
local m = t.suite("after")
m:case("still there", function(rig) t.assert.eq(rig.image.version, ]] .. string.format("%q", odd)
		.. [[) end)
return { s, m }
]], "img")
	local code, out = H.run{ files = { isrc }, artifacts = idir .. "/artifacts",
		rig_opts = { identity = function(path)
			return { name = path:match("[^/]*$"), path = path, format = "gzip",
				sha256 = string.rep("0f", 32), version = odd,
				os_release = { ID = "fake-os" } }
		end },
		reporters = { human = true, tap = idir .. "/r.tap", junit = idir .. "/j.xml",
			json = idir .. "/r.json" } }
	H.eq(code, 0, "the suite passes and sees rig.image")
	local sha = string.rep("0f", 32)
	H.has(out, { "  image os-1.2.img.gz: version " .. odd:gsub("\n", " ") .. ", sha256 " .. sha },
		"human: the image when it is flashed, and in the summary")
	local tap = H.read(idir .. "/r.tap") or ""
	H.has(tap, { "    # image: os-1.2.img.gz version odd \"os\" <&> \\\\ \\#1 line2 sha256 " .. sha },
		"TAP: a comment inside the suite's subtest, newline and # escaped")
	if H.sh("command -v prove") == 0 then
		local st, res = H.sh("perl lua/tests/tap-check.pl " .. idir .. "/r.tap")
		H.ok(st == 0 and res:find("parse_errors=0", 1, true) and
			not res:find("parse_errors=[1-9]"), "TAP with the image comment parses", res)
	end
	local xml = H.read(idir .. "/j.xml") or ""
	H.has(xml, { '<property name="image" value="os-1.2.img.gz"/>',
		'<property name="image_sha256" value="' .. sha .. '"/>',
		'<property name="image_version" value="odd &quot;os&quot; &lt;&amp;&gt; \\ #1',
		'<property name="image_format" value="gzip"/>' },
		"JUnit: image, image_sha256, image_version properties, escaped")
	local _, n = xml:gsub('<property name="image" ', "")
	H.eq(n, 2, "JUnit: both suites name the image (the second ran against it)")
	if H.sh("command -v xmllint") == 0 then
		local st, res = H.sh("xmllint --noout --schema " .. XSD .. " " .. idir .. "/j.xml")
		H.ok(st == 0, "JUnit with image properties validates against the schema", res)
	end
	local ok, doc = pcall(core.json_decode, H.read(idir .. "/r.json") or "")
	H.ok(ok and type(doc) == "table", "JSON decodes", tostring(doc))
	if ok and type(doc) == "table" then
		H.eq(doc.image and doc.image.sha256, sha, "JSON: image.sha256")
		H.eq(doc.image and doc.image.version, odd, "JSON: image.version round-trips")
		H.eq(#(doc.images or {}), 1, "JSON: one image flashed")
		H.eq(doc.suites[1].image and doc.suites[1].image.name, "os-1.2.img.gz",
			"JSON: the suite's image")
		H.eq(doc.suites[2].image and doc.suites[2].image.name, "os-1.2.img.gz",
			"JSON: the next suite ran against it too")
	end
	local slog = H.read(idir .. "/artifacts/flashes/suite.log") or ""
	H.has(slog, { "runner: image os-1.2.img.gz: version odd" }, "the suite log says what was flashed")
	-- a run that flashes nothing carries no image at all
	local ndir = H.tmpdir() .. "/noimage"
	H.run{ files = { H.testcase("local t = require 'rigor.test'\n"
		.. "t.suite('n'):case('a', function() end)\n", "noimg") },
		reporters = { junit = ndir .. "/j.xml", json = ndir .. "/r.json" } }
	local nx = H.read(ndir .. "/j.xml") or ""
	H.ok(not nx:find('name="image"', 1, true), "no image property when nothing was flashed")
	local nok_, ndoc = pcall(core.json_decode, H.read(ndir .. "/r.json") or "")
	H.ok(nok_ and ndoc.image == nil and #ndoc.images == 0, "JSON: no image, empty images")
end)

H.cleanup()
H.done()
