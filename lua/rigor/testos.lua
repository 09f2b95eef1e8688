-- SPDX-License-Identifier: MIT
-- rigor.testos: steps shared by the suites that flash and boot the rigor test OS
-- (testcases/os.lua, testcases/flasher.lua, testcases/cloud.lua; docs/os-image.md).
--
--   local testos = require "rigor.testos"
--   s:before_all(function(rig) testos.need_image(IMAGE, "OS image") end)

local t = require "rigor.test"
local core = require "rigor.core"
local A = t.assert

local M = {}

--- The console's login prompt.
M.LOGIN = "rigor-os login: "

--- SKIPs the suite unless the image file `path` exists; `what` names it in the message.
function M.need_image(path, what)
	local f = io.open(path, "rb")
	if not f then t.skip("no " .. what .. " " .. path .. " (make os-image)") end
	f:close()
end

--- "KEY=value" lines (values optionally quoted) as a table.
function M.parse_os_release(text)
	local r = {}
	for line in text:gmatch("[^\r\n]+") do
		local k, v = line:match("^([%w_]+)=(.*)$")
		if k then r[k] = v:match('^"(.*)"$') or v end
	end
	return r
end

--- Returns a function(rig) that gives the DUT's hostname: RIGOR_OS_HOSTNAME, or one naming
--- the rig (two rigs, two names), made at its first call and the same after. Each suite
--- makes its own.
function M.hostname_once()
	local name
	return function(rig)
		if not name then
			local env = os.getenv("RIGOR_OS_HOSTNAME")
			name = env ~= "" and env or string.format("rigor-%s-%04d",
				rig.name:gsub("[^%w%-]", "-"), core.now_ms() % 10000)
		end
		return name
	end
end

--- config.json for the card, with `hostname` and no provisioning key (the suite does not
--- need the cloud).
function M.config_json(rig, hostname)
	return core.json_encode({
		applicationId = 1, deviceType = rig.device_type, userId = 1,
		apiEndpoint = os.getenv("RIGOR_VIRTUAL_GUEST_API") or "http://10.0.2.2:48484",
		hostname = hostname, listenPort = 48484, rigorReportInterval = 5,
		persistentLogging = false,
	}, 2)
end

--- A DUT with internal storage ("flasher") boots the card only with its boot strap held
--- at power-on; rig:safe() releases it after the case.
function M.strap_card_boot(rig)
	if rig:has("flasher") then assert(rig.button.boot:hold()) end
end

--- Logs in as root on the console (at the login prompt).
function M.login(rig)
	assert(rig.console:sendline("root"))
	A.ok(rig.console:expect("root@[%w%-]+:/# ", 10000))
end

--- Runs a shell command on the console; returns its output (lines joined with "\n").
--- `timeout_ms` (default 10000) bounds the wait for the command's end.
local n = 0
function M.sh(rig, cmd, timeout_ms)
	n = n + 1
	rig.console:clear()
	-- the markers are computed by the shell, so the echoed command line does not match
	assert(rig.console:sendline(string.format("echo RIG-BEGIN-$((%d+1)); %s; echo RIG-END-$((%d+1))",
		n * 10, cmd, n * 10)))
	local out = A.ok(rig.console:expect(string.format("RIG%%-BEGIN%%-%d\r?\n(.-)\r?\n?RIG%%-END%%-%d",
		n * 10 + 1, n * 10 + 1), timeout_ms or 10000))
	return (out:gsub("\r", ""))
end

--- Reads the console until one of the plain strings in `needles` appears or `timeout_ms`
--- passes. Returns the index of the first one seen and the text read, or nil and the text.
function M.expect_any(rig, needles, timeout_ms)
	local seen, t_end = "", core.now_ms() + timeout_ms
	while true do
		local first, at
		for i, needle in ipairs(needles) do
			local p = seen:find(needle, 1, true)
			if p and (not at or p < at) then first, at = i, p end
		end
		if first then return first, seen end
		local left = t_end - core.now_ms()
		if left <= 0 then return nil, seen end
		local data = rig.console:read(left)
		if data then seen = seen .. data end
	end
end

return M
