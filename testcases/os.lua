-- SPDX-License-Identifier: MIT
-- The rigor test OS (docs/os-image.md) on a rig that can boot it: the virtual rig
-- (rigs/virtual.lua, scripts/virtual-rig). Every case flashes the image (incrementally),
-- with a config.json that sets the hostname and has no provisioning key (this suite does
-- not need the cloud), and boots it. Other rigs lack the "os-image" capability: SKIPPED.
-- On a rig with the "flasher" capability (a DUT with internal storage) the boot strap is
-- held at power-on so that the board boots the card.
--
-- Environment: RIGOR_OS_IMAGE (default build/os/rigor-os-1.0.img),
-- RIGOR_BOOT_TIMEOUT_MS (power-on to login prompt, default 60000), RIGOR_OS_HOSTNAME
-- (default rigor-<rig name>-NNNN).
local t = require "rigor.test"
local core = require "rigor.core"
local A = t.assert

local IMAGE = os.getenv("RIGOR_OS_IMAGE") or "build/os/rigor-os-1.0.img"
local BOOT_MS = math.tointeger(tonumber(os.getenv("RIGOR_BOOT_TIMEOUT_MS") or "")) or 60000
local HOSTNAME      -- set by hostname(rig)
local LOGIN = "rigor-os login: "

local s = t.suite("os", { requires = { "os-image", "sd", "serial" }, tags = { "os", "virtual" },
	timeout = BOOT_MS + 30000 })

-- "KEY=value" lines (values optionally quoted) as a table
local function parse_os_release(text)
	local r = {}
	for line in text:gmatch("[^\r\n]+") do
		local k, v = line:match("^([%w_]+)=(.*)$")
		if k then r[k] = v:match('^"(.*)"$') or v end
	end
	return r
end

-- the DUT's hostname: RIGOR_OS_HOSTNAME, or one naming the rig (two rigs, two names)
local function hostname(rig)
	if not HOSTNAME then
		local env = os.getenv("RIGOR_OS_HOSTNAME")
		HOSTNAME = env ~= "" and env or string.format("rigor-%s-%04d",
			rig.name:gsub("[^%w%-]", "-"), core.now_ms() % 10000)
	end
	return HOSTNAME
end

-- A DUT with internal storage ("flasher") boots the card only with its boot strap held
-- at power-on; rig:safe() releases it after the case.
local function strap_card_boot(rig)
	if rig:has("flasher") then assert(rig.button.boot:hold()) end
end

local function config_json(rig)
	return core.json_encode({
		applicationId = 1, deviceType = rig.device_type, userId = 1,
		apiEndpoint = os.getenv("RIGOR_VIRTUAL_GUEST_API") or "http://10.0.2.2:48484",
		hostname = hostname(rig), listenPort = 48484, rigorReportInterval = 5,
		persistentLogging = false,
	}, 2)
end

-- power on (card on the DUT side) and wait for the login prompt; returns the seconds taken
local function boot(rig)
	assert(rig.power:off())
	assert(rig.sdmux:set("dut"))
	strap_card_boot(rig)
	rig.console:clear()
	local t0 = core.now_ms()
	assert(rig.power:on())
	A.ok(rig.console:expect(LOGIN, BOOT_MS, true))
	return (core.now_ms() - t0) / 1000
end

-- log in on the console (after boot())
local function login(rig)
	assert(rig.console:sendline("root"))
	A.ok(rig.console:expect("root@[%w%-]+:/# ", 10000))
end

-- run a shell command on the console; returns its output (lines joined with "\n")
local n = 0
local function sh(rig, cmd)
	n = n + 1
	rig.console:clear()
	-- the markers are computed by the shell, so the echoed command line does not match
	assert(rig.console:sendline(string.format("echo RIG-BEGIN-$((%d+1)); %s; echo RIG-END-$((%d+1))",
		n * 10, cmd, n * 10)))
	local out = A.ok(rig.console:expect(string.format("RIG%%-BEGIN%%-%d\r?\n(.-)\r?\nRIG%%-END%%-%d",
		n * 10 + 1, n * 10 + 1), 10000))
	return (out:gsub("\r", ""))
end

local version   -- VERSION of the image's /etc/os-release, read from the card

s:before_all(function(rig)
	local f = io.open(IMAGE, "rb")
	if not f then t.skip("no OS image " .. IMAGE .. " (make os-image)") end
	f:close()
end)

s:before_each(function(rig, case)
	assert(rig:flash(IMAGE, { files = { ["config.json"] = config_json(rig) } }))
	local rel = assert(rig:read_file("resin-rootA", "/etc/os-release"))
	version = parse_os_release(rel).VERSION
	t.log("flashed %s (VERSION %s), hostname %s", IMAGE, tostring(version), HOSTNAME)
end)

s:case("boots to the login prompt", function(rig)
	local secs = boot(rig)
	t.log("login prompt %.1f s after power-on", secs)
	login(rig)
	A.eq(sh(rig, "echo $((6*7))"), "42", "the shell answers")
end)

s:case("os-release fields on the console", function(rig)
	boot(rig)
	login(rig)
	local rel = parse_os_release(sh(rig, "cat /etc/os-release"))
	for _, k in ipairs { "ID", "NAME", "VERSION", "VERSION_ID", "PRETTY_NAME", "MACHINE", "SLUG",
		"META_BALENA_VERSION" } do
		A.ok(rel[k] and rel[k] ~= "", "os-release has no " .. k)
	end
	A.eq(rel.SLUG, rig.device_type, "os-release SLUG")
	A.eq(rel.VERSION, version, "os-release VERSION (console vs card)")
	A.eq(rel.ID, "rigor-os")
end)

s:case("config.json hostname is applied", function(rig)
	boot(rig)
	login(rig)
	A.eq(sh(rig, "hostname"), HOSTNAME)
end)

s:case("power cut mid-boot, then a clean boot", function(rig)
	assert(rig.sdmux:set("dut"))
	strap_card_boot(rig)
	rig.console:clear()
	assert(rig.power:on())
	-- stage 2 runs with the boot partition mounted read-write: pull the plug there
	A.ok(rig.console:expect("rigor%-os: Rigor OS [^\r\n]*\r?\n", BOOT_MS))
	assert(rig.power:off())
	t.log("power cut mid-boot")
	local secs = boot(rig)
	t.log("clean boot: login prompt %.1f s after power-on", secs)
	login(rig)
	A.eq(sh(rig, "hostname"), HOSTNAME)
	A.eq(sh(rig, "echo ok > /mnt/state/rigor-probe && cat /mnt/state/rigor-probe"), "ok",
		"the state partition is writable")
	-- the card survived: config.json still parses and keeps the hostname
	assert(rig.power:off())
	assert(rig.sdmux:set("host"))
	local cfg = A.ok(core.json_decode(assert(rig:read_file("resin-boot", "/config.json"))))
	A.eq(cfg.hostname, HOSTNAME, "config.json hostname after the power cut")
end)

return s
