-- SPDX-License-Identifier: MIT
-- SIGINT / SIGTERM: exit codes 130 / 143, cleanup of the interrupted case, after_all and
-- rig:safe() still run, later cases do not, reports say so. Each run is a child process
-- (interrupt_child.lua) because a real signal is sticky for the whole process.

local H = require "harness"

local lua = os.getenv("RIGOR_LUA") or "lua5.4"

local function child(scenario, sig)
	local p = io.popen(string.format("RIGOR_TEST_SCENARIO=%s RIGOR_TEST_SIGNAL=%s %s "
		.. "lua/tests/interrupt_child.lua 2>&1", scenario, sig, lua))
	local res = {}
	local raw = p:read("a")
	p:close()
	for k, v in raw:gmatch("([%w_]+)=([^\n]*)") do
		res[k] = v:gsub("\\n", "\n"):gsub("\\\\", "\\")
	end
	res.raw = raw
	return res
end

for _, sig in ipairs({ "SIGINT", "SIGTERM" }) do
	H.test(sig .. " in a case", function()
		local r = child("case", sig)
		H.eq(r.code, sig == "SIGINT" and "130" or "143", sig .. ": exit code")
		H.eq(r.trace, "ba,be,1,ae:pass,be,2,ae:error,aa",
			sig .. ": the interrupted case cleans up, later cases do not run, after_all runs")
		H.eq(r.rig, "safe,safe,safe,safe", sig .. ": safe after cases, suite and run")
		H.has(r.out, { "ERROR two", "interrupted by " .. sig }, sig .. ": reported")
		H.ok(r.out and not r.out:find("three", 1, true) and not r.out:find("next", 1, true),
			sig .. ": later cases and suites are not reported", r.raw)
		H.has(r.tap, { "Bail out! interrupted by " .. sig }, sig .. ": TAP bails out")
		H.eq(r.json_interrupted, sig, sig .. ": JSON says interrupted")
		H.eq(r.json_cases, "2", sig .. ": JSON has the cases that ran")
		H.eq(r.junit_valid, "true", sig .. ": JUnit of an interrupted run validates")
	end)
end

H.test("SIGINT while sleeping", function()
	local r = child("sleep", "SIGINT")
	H.eq(r.code, "130", "exit 130")
	H.eq(r.trace, "ba,be,1,ae:error,aa", "the sleep is cut short, cleanup runs")
end)

H.test("SIGINT during cleanup", function()
	local r = child("cleanup", "SIGINT")
	H.eq(r.code, "130", "exit 130")
	H.eq(r.trace, "ba,be,1,ae:pass,aa", "cleanup completes, the run stops after the case")
	H.eq(r.rig, "safe,safe,safe", "safe after the case, the suite and the run")
end)

H.done()
