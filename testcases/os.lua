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
local testos = require "rigor.testos"
local A = t.assert

local IMAGE = os.getenv("RIGOR_OS_IMAGE") or "build/os/rigor-os-1.0.img"
local BOOT_MS = math.tointeger(tonumber(os.getenv("RIGOR_BOOT_TIMEOUT_MS") or "")) or 60000

local s = t.suite("os", { requires = { "os-image", "sd", "serial" }, tags = { "os", "virtual" },
	timeout = BOOT_MS + 30000 })

local parse_os_release, strap_card_boot = testos.parse_os_release, testos.strap_card_boot
local login, sh = testos.login, testos.sh
local hostname = testos.hostname_once()    -- the DUT's, the same for every case of the run

-- power on (card on the DUT side) and wait for the login prompt; returns the seconds taken
local function boot(rig)
	assert(rig.power:off())
	assert(rig.sdmux:set("dut"))
	strap_card_boot(rig)
	rig.console:clear()
	local t0 = core.now_ms()
	assert(rig.power:on())
	A.ok(rig.console:expect(testos.LOGIN, BOOT_MS, true))
	return (core.now_ms() - t0) / 1000
end

local version   -- VERSION of the image's /etc/os-release, read from the card

s:before_all(function(rig)
	testos.need_image(IMAGE, "OS image")
end)

s:before_each(function(rig, case)
	local config = testos.config_json(rig, hostname(rig))
	assert(rig:flash(IMAGE, { files = { ["config.json"] = config } }))
	local rel = assert(rig:read_file("resin-rootA", "/etc/os-release"))
	version = parse_os_release(rel).VERSION
	t.log("flashed %s (VERSION %s), hostname %s", IMAGE, tostring(version), hostname(rig))
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
	A.eq(sh(rig, "hostname"), hostname(rig))
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
	A.eq(sh(rig, "hostname"), hostname(rig))
	A.eq(sh(rig, "echo ok > /mnt/state/rigor-probe && cat /mnt/state/rigor-probe"), "ok",
		"the state partition is writable")
	-- the card survived: config.json still parses and keeps the hostname
	assert(rig.power:off())
	assert(rig.sdmux:set("host"))
	local cfg = A.ok(core.json_decode(assert(rig:read_file("resin-boot", "/config.json"))))
	A.eq(cfg.hostname, hostname(rig), "config.json hostname after the power cut")
end)

return s
