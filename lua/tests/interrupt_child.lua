-- SPDX-License-Identifier: MIT
-- Child process for test_interrupt.lua: a signal is sticky for the whole process with the
-- real rigor.core, so every interrupted run gets a process of its own. Scenario and signal
-- come from RIGOR_TEST_SCENARIO and RIGOR_TEST_SIGNAL; results are printed as key=value.

local H = require "harness"
local core = H.core

local sig = os.getenv("RIGOR_TEST_SIGNAL") or "SIGINT"
local scenario = os.getenv("RIGOR_TEST_SCENARIO") or "case"

--- Delivers `name` to this process: the fake core's back channel, or a real kill(1).
function RAISE()
	if core._raise_signal then
		core._raise_signal(sig)
	else
		io.popen("kill -" .. sig:sub(4) .. " $PPID"):close()
	end
end

local HOOKS = [[
local t = require "rigor.test"
local s = t.suite("s", { timeout = 5000 })
s:before_all(function(rig) TRACE("ba") end)
s:after_all(function(rig) TRACE("aa") end)
s:before_each(function(rig, c) TRACE("be") end)
s:after_each(function(rig, c) TRACE("ae:" .. c.status) end)
]]

local SCENARIOS = {
	-- a signal while a case runs (busy loop)
	case = HOOKS .. [[
s:case("one", function() TRACE("1") end)
s:case("two", function() TRACE("2"); RAISE(); while true do end end)
s:case("three", function() TRACE("3") end)
t.suite("next"):case("n", function() TRACE("n") end)
return s
]],
	-- a signal while the case sleeps
	sleep = HOOKS .. [[
s:case("one", function() TRACE("1"); RAISE(); require("rigor.core").sleep(4000) end)
s:case("two", function() TRACE("2") end)
return s
]],
	-- a signal during disarmed cleanup
	cleanup = HOOKS .. [[
s:after_each(function() if not DONE then DONE = true; RAISE() end end)
s:case("one", function() TRACE("1") end)
s:case("two", function() TRACE("2") end)
return s
]],
}

local dir = H.tmpdir()
local code, out, err, rig = H.run{ files = { SCENARIOS[scenario] },
	reporters = { human = true, tap = dir .. "/r.tap", json = dir .. "/r.json",
		junit = dir .. "/r.xml" } }
local function esc(s)
	return (s:gsub("\\", "\\\\"):gsub("\n", "\\n"))
end
print("code=" .. code)
print("trace=" .. H.take_trace())
print("rig=" .. rig:trace())
print("out=" .. esc(out))
print("err=" .. esc(err))
print("tap=" .. esc(H.read(dir .. "/r.tap") or ""))
local ok, doc = pcall(core.json_decode, H.read(dir .. "/r.json") or "")
print("json_interrupted=" .. tostring(ok and doc and doc.interrupted))
print("json_cases=" .. tostring(ok and doc and doc.totals.cases))
local st = H.sh("xmllint --noout --schema lua/schema/junit.xsd " .. dir .. "/r.xml")
print("junit_valid=" .. tostring(st == 0))
H.cleanup()
