-- SPDX-License-Identifier: MIT
-- Host OS update (HUP) and rollback of the rigor test OS (docs/hup.md), balena's hup
-- suite (smoke and rollback tests, with the same assertions: active slot, OS version,
-- breadcrumb / triggered / failed files on resin-state, user data checksum) and what it
-- does not test: power cuts while the update is written and during the new slot's first
-- boot, refused payloads, and an update driven from the cloud.
--
-- Each case flashes the base image, boots it, logs in on the console and runs the OS's
-- update command (rigor-hup, the hostapp-update analogue) with the payload's URL and
-- sha256; the device fetches the payload from the API (on the virtual rig, the emulator
-- serves it: scripts/virtual-rig passes --hostos). Needs the "os-image" capability (an
-- A/B test OS image on a rig that boots it) and DUT-initiated reboots; the cloud case also
-- needs "balena".
--
-- Environment:
--   RIGOR_HUP_FROM_IMAGE   the previous release (default build/os/rigor-os-1.0.img)
--   RIGOR_HUP_IMAGE        this release (default build/os/rigor-os-1.1.img)
--   RIGOR_HUP_PAYLOAD      this release's update payload (default: RIGOR_HUP_IMAGE without
--                          .img, + -rootfs.img.gz); its sha256 from PAYLOAD.sha256
--   RIGOR_HUP_PAYLOAD_URL  the payload as the DUT fetches it (default: the guest's API
--                          + /rigor/v1/hostos/<device type>/<version>/rootfs.img.gz)
--   RIGOR_BOOT_TIMEOUT_MS  power-on to the login prompt (default 120000)
--   RIGOR_BALENA_API, RIGOR_BALENA_API_KEY, RIGOR_BALENA_FLEET (cloud case; as cloud.lua)
local t = require "rigor.test"
local core = require "rigor.core"
local balena = require "rigor.balena"
local provision = require "rigor.provision"
local testos = require "rigor.testos"
local A = t.assert

local FROM = os.getenv("RIGOR_HUP_FROM_IMAGE") or "build/os/rigor-os-1.0.img"
local IMAGE = os.getenv("RIGOR_HUP_IMAGE") or "build/os/rigor-os-1.1.img"
local PAYLOAD = os.getenv("RIGOR_HUP_PAYLOAD") or (IMAGE:gsub("%.img$", "") .. "-rootfs.img.gz")
local BOOT_MS = testos.boot_ms()
local GUEST_API = os.getenv("RIGOR_VIRTUAL_GUEST_API") or "http://10.0.2.2:48484"
local FLEET = os.getenv("RIGOR_BALENA_FLEET") or "rigor/test"
local STATE_FILES = { "rollback-health-breadcrumb", "rollback-altboot-breadcrumb",
	"rollback-health-triggered", "rollback-altboot-triggered", "rollback-health-failed" }
-- rollback-health settings for the cases, as balena's suite sets them (COUNT=3 TIMEOUT=10);
-- shorter here: a healthy slot commits at the first check, an unhealthy one gives up
-- after COUNT checks TIMEOUT seconds apart
local HEALTH_VARS = "COUNT=3\nTIMEOUT=3\n"

local s = t.suite("hup", { requires = { "os-image", "sd", "serial" },
	tags = { "hup", "os", "virtual" }, timeout = 5 * BOOT_MS })

local login = testos.login
local hostname = testos.hostname_once()
local new_version, from_version, sha256

local function read_version(rig, image)
	assert(rig:flash(image, { files = { ["config.json"] = testos.config_json(rig, hostname(rig)) } }))
	return testos.parse_os_release(assert(rig:read_file("resin-rootA", "/etc/os-release"))).VERSION
end

local function sh(rig, cmd, ms) return testos.sh(rig, cmd, ms) end

-- runs cmd, returns its output and exit status
local function sh_rc(rig, cmd, ms)
	local out = sh(rig, cmd .. "; echo RC=$?", ms)
	local body, rc = out:match("^(.-)\n?RC=(%d+)$")
	return body or out, tonumber(rc)
end

-- flash `image` (config.json with the hostname, no provisioning), boot it, log in
local function boot(rig, image, config)
	assert(rig.power:off())
	assert(rig:flash(image, { files = { ["config.json"] = config or
		testos.config_json(rig, hostname(rig)) } }))
	assert(rig.sdmux:set("dut"))
	testos.strap_card_boot(rig)
	rig.console:clear()
	assert(rig.power:on())
	A.ok(rig.console:expect(testos.LOGIN, BOOT_MS, true))
	login(rig)
end

-- what the running device says about itself
local function facts(rig)
	local f = {}
	f.slot = sh(rig, "cat /proc/cmdline"):match("root=LABEL=resin%-root(%u)")
	f.rootdev = sh(rig, "awk '$2 == \"/\" { print $1 }' /proc/mounts")
	f.version = sh(rig, ". /etc/os-release; echo $VERSION")
	f.env = {}
	for k, v in sh(rig, "rigor-bootenv list"):gmatch("([%w_]+)=(%S*)") do f.env[k] = v end
	f.state = {}
	for _, name in ipairs(STATE_FILES) do
		f.state[name] = sh(rig, "test -e /mnt/state/" .. name .. " && echo yes || echo no") == "yes"
	end
	local env = {}
	for k, v in pairs(f.env) do env[#env + 1] = k .. "=" .. v end
	table.sort(env)
	t.log("running resin-root%s (%s), VERSION %s, grubenv %s", tostring(f.slot), f.rootdev,
		f.version, table.concat(env, " "))
	return f
end

local function part_of(slot) return slot == "A" and "/dev/vda2" or "/dev/vda3" end
local function other(slot) return slot == "A" and "B" or "A" end

-- the state files that must be present (all others absent)
local function state_is(f, ...)
	local want = {}
	for _, name in ipairs { ... } do want[name] = true end
	for _, name in ipairs(STATE_FILES) do
		A.eq(f.state[name], want[name] == true, "/mnt/state/" .. name ..
			(want[name] and " present" or " absent"))
	end
end

-- user data on resin-data: 1 MiB of random bytes; returns its md5
local function write_user_data(rig)
	return sh(rig, "dd if=/dev/urandom of=/mnt/data/hup-userdata bs=64k count=16 2>/dev/null && " ..
		"sync && md5sum /mnt/data/hup-userdata | cut -d' ' -f1")
end

local function payload_url(rig, version)
	return os.getenv("RIGOR_HUP_PAYLOAD_URL") or string.format("%s/rigor/v1/hostos/%s/%s/rootfs.img.gz",
		GUEST_API, rig.device_type, version)
end

local function hup_cmd(rig, extra)
	return string.format("rigor-hup -u %s -s %s%s", payload_url(rig, new_version), sha256,
		extra or "")
end

-- before the update: settings for rollback-health, and the facts of the running slot
local function prepare(rig)
	local before = facts(rig)
	A.eq(before.env.upgrade_available, "0", "no update on trial before the update")
	sh(rig, "printf '" .. HEALTH_VARS:gsub("\n", "\\n") .. "' > /mnt/state/rollback-health-variables && sync")
	return before
end

-- rigor-hup -n: writes the inactive slot and puts it on trial, no reboot
local function hup_no_reboot(rig)
	local out, rc = sh_rc(rig, hup_cmd(rig, " -n"), 120000)
	t.log("%s", out)
	A.eq(rc, 0, "rigor-hup exit status")
end

-- changes the new slot (mounted read-write at /tmp/inactive) with `cmd`, then reboots
local function break_inactive_and_reboot(rig, slot, cmd)
	local out, rc = sh_rc(rig, string.format("mkdir -p /tmp/inactive && mount -t ext4 %s /tmp/inactive" ..
		" && (cd /tmp/inactive && %s) && umount /tmp/inactive && sync", part_of(slot), cmd))
	A.eq(rc, 0, "changing the new slot: " .. out)
	rig.console:clear()
	assert(rig.console:sendline("reboot -f"))
end

-- waits for `want` from rigor-hup on the console; fails at once on its FAILED line
local function expect_hup(rig, want, ms)
	local i, seen = testos.expect_any(rig, { want, "rigor-hup: FAILED" }, ms or 120000)
	if i ~= 1 then
		t.fail(i and ("rigor-hup failed: " .. (seen:match("rigor%-hup: FAILED[^\r\n]*") or ""))
			or ("no '" .. want .. "' on the console; last output: " .. seen:sub(-400)))
	end
end

local function wait_login(rig, ms)
	A.ok(rig.console:expect(testos.LOGIN, ms or BOOT_MS, true))
	login(rig)
end

s:before_all(function(rig)
	testos.need_image(FROM, "base OS image")
	testos.need_image(IMAGE, "OS image")
	local f = io.open(PAYLOAD .. ".sha256", "r")
	if not f then t.skip("no " .. PAYLOAD .. ".sha256 (make os-image)") end
	sha256 = f:read("l"):match("^(%x+)")
	f:close()
	A.eq(#(sha256 or ""), 64, "sha256 in " .. PAYLOAD .. ".sha256")
	new_version = read_version(rig, IMAGE)
	from_version = read_version(rig, FROM)
	t.log("HUP %s (%s) -> %s (%s), payload %s sha256 %s", FROM, tostring(from_version), IMAGE,
		tostring(new_version), PAYLOAD, sha256)
end)

-- balena's smoke test: the update from `image` boots, commits, keeps user data
local function smoke(rig, image, want_from)
	boot(rig, image)
	local before = prepare(rig)
	A.eq(before.version, want_from, "VERSION before the update")
	local md5 = write_user_data(rig)
	rig.console:clear()
	assert(rig.console:sendline(hup_cmd(rig)))
	expect_hup(rig, "rigor-hup: rebooting")
	A.ok(rig.console:expect("rigor-grub: booting resin-root" .. other(before.slot), BOOT_MS, true),
		"GRUB boots the updated slot")
	A.ok(rig.console:expect("rigor-rollback: healthy", BOOT_MS, true), "rollback-health commits")
	login(rig)   -- the login prompt may have come before the commit: type at it
	local after = facts(rig)
	A.ne(after.slot, before.slot, "the active slot changed")
	A.eq(after.rootdev, part_of(after.slot), "/ is the new slot's partition")
	A.eq(after.version, new_version, "VERSION after the update")
	A.eq(after.env.upgrade_available, "0", "the update is committed (upgrade_available=0)")
	state_is(after)
	A.eq(sh(rig, "md5sum /mnt/data/hup-userdata | cut -d' ' -f1"), md5, "user data on resin-data")
	A.match(sh(rig, "cat /mnt/data/rigor-hup.log"), "on trial at the next boot", "rigor-hup.log on resin-data")
end

s:case("HUP from the previous release", function(rig)
	smoke(rig, FROM, from_version)
end)

s:case("HUP from this release onto itself", function(rig)
	smoke(rig, IMAGE, new_version)
end)

-- balena's rollback tests: the new slot is broken after the update; the device ends on
-- the old slot by itself
local function rollback_health(rig, extra_vars, breakage, why)
	boot(rig, FROM)
	local before = prepare(rig)
	if extra_vars then sh(rig, "echo '" .. extra_vars .. "' >> /mnt/state/rollback-health-variables") end
	hup_no_reboot(rig)
	break_inactive_and_reboot(rig, other(before.slot), breakage)
	A.ok(rig.console:expect("rigor-grub: booting resin-root" .. other(before.slot), BOOT_MS, true),
		"GRUB boots the updated slot")
	A.ok(rig.console:expect("check 3/3: " .. why, BOOT_MS), "rollback-health's last check fails")
	A.ok(rig.console:expect("rigor-rollback: unhealthy: rolling back", 10000, true))
	A.ok(rig.console:expect("rigor-grub: booting resin-root" .. before.slot, BOOT_MS, true),
		"GRUB boots the old slot again")
	wait_login(rig)
	local after = facts(rig)
	A.eq(after.slot, before.slot, "back on the original slot")
	A.eq(after.rootdev, part_of(before.slot), "/ is the original partition")
	A.eq(after.version, from_version, "the original OS version")
	A.eq(after.env.upgrade_available, "0", "no update on trial")
	state_is(after, "rollback-health-triggered")
end

s:case("rollback-health: broken device agent in the new slot", function(rig)
	rollback_health(rig, nil, "ln -sf /dev/null usr/bin/rigor-agent", "/usr/bin/rigor%-agent does not run")
end)

s:case("rollback-health: API unreachable from the new slot (API online required)", function(rig)
	-- the VPN test's analogue: the new slot gets no address (its DHCP script is empty)
	rollback_health(rig, "RIGOR_ROLLBACK_APIONLINE=1", "ln -sf /dev/null etc/udhcpc.sh",
		"the API at [^\r\n]* does not answer")
end)

s:case("rollback-altboot: the new slot has no init", function(rig)
	boot(rig, FROM)
	local before = prepare(rig)
	hup_no_reboot(rig)
	break_inactive_and_reboot(rig, other(before.slot), "rm sbin/rigor-init")
	for i = 1, 2 do
		A.ok(rig.console:expect("rigor-grub: booting resin-root" .. other(before.slot), BOOT_MS, true),
			"trial boot " .. i .. " of the updated slot")
		A.ok(rig.console:expect("no /sbin/rigor-init", BOOT_MS, true), "trial boot " .. i .. " fails")
	end
	A.ok(rig.console:expect("rigor-grub: booting resin-root" .. before.slot, BOOT_MS, true),
		"GRUB falls back to the old slot")
	A.ok(rig.console:expect("rollback-altboot-triggered", BOOT_MS, true))
	wait_login(rig)
	local after = facts(rig)
	A.eq(after.slot, before.slot, "back on the original slot")
	A.eq(after.version, from_version, "the original OS version")
	A.eq(after.env.upgrade_available, "0", "no update on trial")
	A.eq(after.env.rollback_altboot, "0", "rollback_altboot handled")
	state_is(after, "rollback-altboot-triggered")
end)

s:case("power cut while the update is written: the old slot boots", function(rig)
	boot(rig, FROM)
	local before = prepare(rig)
	rig.console:clear()
	assert(rig.console:sendline(hup_cmd(rig)))
	expect_hup(rig, "rigor-hup: writing")
	assert(rig.power:off())
	t.log("power cut while rigor-hup writes resin-root%s", other(before.slot))
	rig.console:clear()
	assert(rig.power:on())
	A.ok(rig.console:expect("rigor-grub: booting resin-root" .. before.slot, BOOT_MS, true),
		"GRUB boots the old slot")
	wait_login(rig)
	local after = facts(rig)
	A.eq(after.slot, before.slot, "still on the original slot")
	A.eq(after.version, from_version, "the original OS version")
	A.eq(after.env.upgrade_available, "0", "no update on trial")
	state_is(after)
	A.match(sh(rig, "pidof rigor-agent || echo none"), "^%d+", "the device agent runs")
end)

s:case("power cut during the new slot's first boot: the trial goes on", function(rig)
	boot(rig, FROM)
	local before = prepare(rig)
	hup_no_reboot(rig)
	rig.console:clear()
	assert(rig.console:sendline("reboot -f"))
	A.ok(rig.console:expect("rigor%-grub: booting resin%-root" .. other(before.slot) ..
		" %(upgrade_available=1 bootcount=1%)", BOOT_MS), "trial boot 1")
	A.ok(rig.console:expect("rigor-os: Rigor OS", BOOT_MS, true))
	assert(rig.power:off())
	t.log("power cut during the first boot of resin-root%s", other(before.slot))
	rig.console:clear()
	assert(rig.power:on())
	A.ok(rig.console:expect("rigor%-grub: booting resin%-root" .. other(before.slot) ..
		" %(upgrade_available=1 bootcount=2%)", BOOT_MS), "trial boot 2 of the same slot")
	A.ok(rig.console:expect("rigor-rollback: healthy", BOOT_MS, true), "rollback-health commits")
	login(rig)   -- the login prompt may have come before the commit: type at it
	local after = facts(rig)
	A.eq(after.slot, other(before.slot), "on the updated slot")
	A.eq(after.version, new_version, "VERSION after the update")
	A.eq(after.env.upgrade_available, "0", "committed")
	state_is(after)
end)

s:case("a wrong checksum or a corrupt payload is refused; nothing changes", function(rig)
	boot(rig, FROM)
	local before = prepare(rig)
	local inactive = part_of(other(before.slot))
	local function snapshot()
		return sh(rig, "md5sum " .. inactive .. " /mnt/boot/EFI/BOOT/grubenv | cut -d' ' -f1 | tr '\\n' ' '", 60000)
	end
	local snap = snapshot()
	local out, rc = sh_rc(rig, string.format("rigor-hup -n -u %s -s %s", payload_url(rig, new_version),
		string.rep("0", 64)), 120000)
	A.eq(rc, 1, "rigor-hup exit status with a wrong sha256")
	A.match(out, "checksum mismatch", "the refusal names the cause")
	-- a corrupt payload whose checksum matches (a broken build or mirror): gzip catches it
	out, rc = sh_rc(rig, "rigor-agent --fetch " .. payload_url(rig, new_version) .. " --out /tmp/p.gz" ..
		" && printf 'XXXXXXXX' | dd of=/tmp/p.gz bs=1 seek=100000 conv=notrunc 2>/dev/null && " ..
		"rigor-hup -n -f /tmp/p.gz -s $(sha256sum /tmp/p.gz | cut -d' ' -f1)", 120000)
	A.eq(rc, 1, "rigor-hup exit status with a corrupt payload")
	A.match(out, "not intact gzip", "the refusal names the cause")
	A.eq(snapshot(), snap, "the inactive slot and grubenv are unchanged")
	local after = facts(rig)
	A.eq(after.env.upgrade_available, "0", "no update on trial")
	A.eq(after.env.resin_root_part, before.slot, "grubenv still boots the running slot")
	state_is(after)
end)

s:case("HUP driven from the cloud: pin the device to the release", function(rig)
	if not rig:has("balena") or (os.getenv("RIGOR_BALENA_API") or "") == "" then
		t.skip("needs the \"balena\" capability and RIGOR_BALENA_API")
	end
	local client = balena.new{ timeout = 10000 }
	assert(rig.power:off())
	testos.strap_card_boot(rig)
	local d, info = provision.run(rig, {
		balena = client, fleet = FLEET, version = testos.config_os_version(),
		image = FROM, config = { apiEndpoint = GUEST_API, rigorReportInterval = 5 },
		timeout = BOOT_MS + 30000, log = function(line) t.log("%s", line) end,
	})
	A.ok(d, info)
	local uuid = info.uuid
	A.eq(client:os_version(uuid), from_version, "the API sees the base version")
	local versions = {}
	for _, r in ipairs(assert(client:os_releases(rig.device_type))) do versions[#versions + 1] = r.raw_version end
	t.log("host OS releases for %s: %s", rig.device_type, table.concat(versions, ", "))
	A.ok(assert(client:pin_os_release(uuid, new_version)))
	A.eq(assert(client:os_target(uuid)).target, new_version, "the device's target OS release")
	A.ok(rig.console:expect("rigor-agent: host OS update to " .. new_version, 60000, true),
		"the device agent starts the update")
	expect_hup(rig, "rigor-hup: rebooting")
	A.ok(rig.console:expect("rigor-rollback: healthy", BOOT_MS, true), "the new slot commits")
	-- the API sees the new version once the agent reports from the new slot
	local t_end, seen = core.now_ms() + 60000, nil
	repeat
		seen = client:os_version(uuid)
		if seen ~= new_version then core.sleep(1000) end
	until seen == new_version or core.now_ms() > t_end
	A.eq(seen, new_version, "os_version on the API after the update")
	A.truthy(balena.is_online(assert(client:device(uuid))), "online after the update")
end)

return s
