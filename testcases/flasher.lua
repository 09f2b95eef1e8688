-- SPDX-License-Identifier: MIT
-- The flasher image of the rigor test OS (docs/os-image.md) on a rig whose DUT has
-- internal storage and a boot strap: the "flasher" capability (rigs/virtual.lua, where
-- rigor-vboard has DIR/internal.img; docs/virtual-rig.md). Other rigs: SKIPPED.
--
-- The flow of a balena flasher device type: flash the flasher image to the card, hold the
-- boot strap (boot from the card), power on; the flasher writes the OS to the internal
-- disk, prints "rigor-flasher: power down" and powers off. Power off, release the strap,
-- power on: the board boots the installed OS from its internal disk to the login prompt.
--
-- Environment: RIGOR_OS_FLASHER_IMAGE (default build/os/rigor-os-flasher-1.0.img),
-- RIGOR_FLASHER_TIMEOUT_MS (power-on to the power-down marker, default 120000),
-- RIGOR_BOOT_TIMEOUT_MS (power-on to login prompt, default 120000), RIGOR_OS_HOSTNAME
-- (default rigor-<rig name>-NNNN).
local t = require "rigor.test"
local core = require "rigor.core"
local testos = require "rigor.testos"
local A = t.assert

local IMAGE = os.getenv("RIGOR_OS_FLASHER_IMAGE") or "build/os/rigor-os-flasher-1.0.img"
local FLASH_MS = testos.env_int("RIGOR_FLASHER_TIMEOUT_MS", 120000)
local BOOT_MS = testos.boot_ms()
local MARKER = "rigor-flasher: power down"

local s = t.suite("flasher", { requires = { "flasher", "os-image", "sd", "serial" },
	tags = { "os", "flasher", "virtual" }, timeout = FLASH_MS + BOOT_MS + 30000 })

local version       -- VERSION of the OS the flasher carries (its own os-release)
local flashed       -- the internal disk was written in this run

local parse_os_release, sh = testos.parse_os_release, testos.sh
local hostname = testos.hostname_once()    -- the DUT's, the same for both cases

-- config.json for the flasher's card; the flasher copies it to the installed OS
local function config_json(rig)
	return testos.config_json(rig, hostname(rig))
end

-- Flash the flasher to the card and run it with the boot strap held; ends powered off.
local function run_flasher(rig)
	assert(rig:flash(IMAGE, { files = { ["config.json"] = config_json(rig) } }))
	version = parse_os_release(assert(rig:read_file("flash-rootA", "/etc/os-release"))).VERSION
	A.ok(rig:read_file("flash-boot", "/balena-image-flasher"), "the card holds a flasher image")
	t.log("flashed %s (VERSION %s), hostname %s", IMAGE, tostring(version), hostname(rig))
	assert(rig.sdmux:set("dut"))
	assert(rig.button.boot:hold())
	rig.console:clear()
	local t0 = core.now_ms()
	assert(rig.power:on())
	A.ok(rig.console:expect("rigor-flasher: writing", BOOT_MS, true))
	A.ok(rig.console:expect(MARKER, FLASH_MS, true))
	t.log("power-down marker %.1f s after power-on", (core.now_ms() - t0) / 1000)
	A.ok(rig.console:expect("reboot: Power down", 10000, true))
	if rig:has("virtual") then
		-- rigor-vboard reports the halt; the rig's power pin stays on until switched off
		A.ok(rig.console:expect("rigor-vboard: board halted", 10000, true))
		A.eq(rig.power:state(), "on", "power pin after the halt")
	end
	assert(rig.power:off())
	flashed = true
end

s:before_all(function(rig)
	testos.need_image(IMAGE, "flasher image")
end)

s:case("flasher writes the internal disk and powers off", function(rig)
	flashed = false
	run_flasher(rig)
end)

s:case("the installed OS boots from the internal disk", function(rig)
	if not flashed then run_flasher(rig) end
	assert(rig.power:off())
	assert(rig.button.boot:release())
	-- the card stays on the DUT side: with the strap released the board must ignore it
	assert(rig.sdmux:set("dut"))
	rig.console:clear()
	local t0 = core.now_ms()
	assert(rig.power:on())
	A.ok(rig.console:expect(testos.LOGIN, BOOT_MS, true))
	t.log("login prompt %.1f s after power-on", (core.now_ms() - t0) / 1000)
	testos.login(rig)
	local rel = parse_os_release(sh(rig, "cat /etc/os-release"))
	A.eq(rel.ID, "rigor-os", "os-release ID")
	A.eq(rel.VERSION, version, "os-release VERSION (installed OS vs the flasher's payload)")
	A.eq(rel.SLUG, rig.device_type, "os-release SLUG")
	-- booted from the internal disk: the installed image's bootloader (not the flasher's
	-- command line), the boot disk is the internal one (on the virtual board its serial
	-- number says so), and the mounted boot partition is the installed image's
	local cmdline = sh(rig, "cat /proc/cmdline")
	t.log("/proc/cmdline: %s", cmdline)
	A.not_match(cmdline, "rigor%.flasher", "the flasher's command line")
	A.match(cmdline, "root=LABEL=resin%-rootA", "the installed OS's root slot")
	if rig:has("virtual") then
		A.eq(sh(rig, "cat /sys/block/vda/serial"), "rigor-internal", "serial number of the boot disk")
	end
	A.eq(sh(rig, "ls /mnt/boot/balena-image /mnt/boot/balena-image-flasher 2>/dev/null"),
		"/mnt/boot/balena-image", "image marker on the mounted boot partition")
	-- the flasher copied its config.json to the installed OS
	A.eq(sh(rig, "hostname"), hostname(rig), "hostname from the flasher's config.json")
end)

return s
