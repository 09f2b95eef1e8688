-- SPDX-License-Identifier: MIT
-- An OS image on a rig that can boot it (default: the rigor test OS on the virtual rig,
-- rigs/virtual.lua, scripts/virtual-rig). Every case flashes the image (incrementally) and
-- boots it. Other rigs lack the "os-image" capability: SKIPPED. On a rig with the
-- "flasher" capability (a DUT with internal storage) the boot strap is held at power-on so
-- that the board boots the card.
--
-- What to expect comes from the image's identity (rig.image, read back by rig:flash();
-- docs/lua-api.md, docs/os-image.md "What the suites read from the image"), not from
-- literals of the test OS:
-- - every os-release field of the image's root partition is the same on the console
--   (balena os suite "os-release"); a balenaOS-shaped image must also have balena's 8
--   fields and its SLUG and device type must be the rig's device_type;
-- - the login prompt is any "<hostname> login:", the shell prompt any root prompt
--   (rigor.shell's defaults);
-- - the power cut falls when the console shows the image's PRETTY_NAME (printed mid-boot
--   by the test OS's init, and by systemd's "Welcome to ..."), else at the login prompt.
-- Only a balenaOS-shaped image (rig.image.balena) gets a config.json (hostname, no
-- provisioning key): the hostname case and the state-partition and config.json checks
-- after the power cut need it and are SKIPPED or left out, with the reason, otherwise.
--
-- balena os-suite checks with an equivalent here (docs/coverage.md): os-release, uptime,
-- issue, under-voltage (made a hard check from the rig's own telemetry), config-json
-- (hostname, ntpServers, dnsServers, persistentLogging), overlap_test, fingerprint, fsck,
-- udev by-state links, swap (zram), purge-data, connectivity (wired), chrony.
--
-- Environment: RIGOR_OS_IMAGE (default build/os/rigor-os-1.0.img),
-- RIGOR_BOOT_TIMEOUT_MS (power-on to login prompt, default 120000), RIGOR_OS_HOSTNAME
-- (default rigor-<rig name>-NNNN), RIGOR_SUPPLY_MV (the DUT supply's rating, default 5000),
-- RIGOR_SUPPLY_TOLERANCE_PCT (how far below it the supply may sag, default 5: USB's 4.75 V),
-- RIGOR_CONNECTIVITY_URL (what each wired interface fetches, default config.json's
-- apiEndpoint + /ping), RIGOR_NTP_SERVER (an NTP server the DUT reaches; unset: the
-- chrony case is SKIPPED).
local t = require "rigor.test"
local core = require "rigor.core"
local testos = require "rigor.testos"
local A = t.assert

local IMAGE = os.getenv("RIGOR_OS_IMAGE") or "build/os/rigor-os-1.0.img"
local BOOT_MS = testos.boot_ms()
local SUPPLY_MV = testos.env_int("RIGOR_SUPPLY_MV", 5000)
local SUPPLY_TOL = tonumber(os.getenv("RIGOR_SUPPLY_TOLERANCE_PCT") or "") or 5

local s = t.suite("os", { requires = { "os-image", "sd", "serial" }, tags = { "os", "virtual" },
	timeout = BOOT_MS + 30000 })

local parse_os_release, strap_card_boot = testos.parse_os_release, testos.strap_card_boot
local login, sh = testos.login, testos.sh
local hostname = testos.hostname_once()    -- the DUT's, the same for every case of the run

-- the os-release fields balena's os suite requires (meta-balena tests/suites/os/tests/os-release)
local BALENA_FIELDS = { "ID", "NAME", "VERSION", "VERSION_ID", "PRETTY_NAME", "MACHINE", "SLUG",
	"META_BALENA_VERSION" }

local image    -- rig.image: the identity of the image under test

local function not_balena()
	return "not a balenaOS-shaped image (" .. image.name .. "): no config.json"
end

-- power on (card on the DUT side) and wait for a login prompt; returns the seconds taken
local function boot(rig)
	assert(rig.power:off())
	assert(rig.sdmux:set("dut"))
	strap_card_boot(rig)
	rig.console:clear()
	local t0 = core.now_ms()
	assert(rig.power:on())
	A.ok(rig.console:expect(testos.LOGIN_PATTERN, BOOT_MS))
	return (core.now_ms() - t0) / 1000
end

s:before_all(function(rig)
	testos.need_image(IMAGE, "OS image")
	-- a first flash only to learn the identity: a balenaOS-shaped image gets a config.json
	local st = assert(rig:flash(IMAGE))
	image = st.image
	local rel = image.os_release
	t.log("image %s: version %s, sha256 %s, os-release ID %s, bootloader %s, %s", image.name,
		tostring(image.version), image.sha256, tostring(rel and rel.ID), tostring(image.bootloader),
		image.balena and ("balenaOS-shaped, device type " .. tostring(image.device_type)) or "not balenaOS-shaped")
end)

s:before_each(function(rig, case)
	if image.balena then
		assert(rig:flash(IMAGE, { files = { ["config.json"] = testos.config_json(rig, hostname(rig)) } }))
		t.log("flashed %s with config.json, hostname %s", IMAGE, hostname(rig))
	else
		assert(rig:flash(IMAGE))
		t.log("flashed %s (%s)", IMAGE, not_balena())
	end
end)

s:case("boots to the login prompt", function(rig)
	local secs = boot(rig)
	t.log("login prompt %.1f s after power-on", secs)
	login(rig)
	A.eq(sh(rig, "echo $((6*7))"), "42", "the shell answers")
end)

s:case("os-release fields on the console", function(rig)
	local want = image.os_release
	if not want then t.skip("no os-release found in " .. image.name .. "'s partitions") end
	boot(rig)
	login(rig)
	local rel = parse_os_release(sh(rig, "cat /etc/os-release"))
	-- every field of the image's os-release, as the running system reports it
	A.eq(rel, want, "/etc/os-release on the console vs the image's")
	A.ok(rel.ID and rel.ID ~= "", "os-release has no ID")
	if image.version then A.eq(rel.VERSION or rel.VERSION_ID, image.version, "os-release version") end
	if not image.balena and not want.SLUG then
		t.log("not a balenaOS-shaped image: no SLUG or device type to compare with the rig's %s",
			tostring(rig.device_type))
		return
	end
	for _, k in ipairs(BALENA_FIELDS) do
		A.ok(rel[k] and rel[k] ~= "", "os-release has no " .. k)
	end
	A.eq(rel.SLUG, rig.device_type, "os-release SLUG vs the rig's device_type")
	if image.device_type then
		A.eq(image.device_type, rig.device_type, "the image's balena device type vs the rig's device_type")
	end
end)

-- balena os suite "uptime" (tests/uptime): `uptime` prints "up ... load average", no "????";
-- "issue" (tests/issue): /etc/issue and /etc/issue.net hold the OS's NAME and version.
-- balena compares the issue's second word with the OS version; balenaOS's VERSION and
-- VERSION_ID are the same string. os-release(5) makes VERSION free-form, with a codename
-- where a distribution has one ("12 (bookworm)"), and Debian's issue carries the number
-- ("Debian GNU/Linux 12 \n \l"), so either VERSION or VERSION_ID passes.
s:case("uptime and /etc/issue", function(rig)
	boot(rig)
	login(rig)
	local up = sh(rig, "uptime")
	A.ok(up:find("up", 1, true) and up:find("load average", 1, true), "uptime: " .. up)
	A.falsy(up:find("????", 1, true), "uptime prints '????': " .. up)
	local rel = image.os_release
	if not (rel and rel.NAME and (rel.VERSION or rel.VERSION_ID)) then
		t.log("no NAME/VERSION in %s's os-release: /etc/issue not compared", image.name)
		return
	end
	local versions = {}
	for _, k in ipairs{ "VERSION", "VERSION_ID" } do
		if rel[k] and rel[k] ~= "" then versions[#versions + 1] = rel[k] end
	end
	for _, f in ipairs{ "/etc/issue", "/etc/issue.net" } do
		local text = sh(rig, "cat " .. f)
		A.ok(text:find(rel.NAME, 1, true), f .. " lacks the os-release NAME '" .. rel.NAME .. "': " .. text)
		local found = false
		for _, v in ipairs(versions) do found = found or text:find(v, 1, true) ~= nil end
		A.ok(found, f .. " holds neither os-release version ('" .. table.concat(versions, "', '") ..
			"'): " .. text)
	end
end)

-- balena os suite "under-voltage" greps dmesg for "Under-voltage detected" and never fails
-- (tests/under-voltage). Here the rig measures the supply itself: every telemetry sample
-- from power-on to the login prompt must hold the rated voltage within the tolerance; the
-- kernel's own word is checked too where the board reports it.
s:case("supply holds its voltage from power-on to login (under-voltage)", function(rig)
	if not rig.power:measure() then t.skip("this rig's power back-end cannot measure") end
	assert(rig.power:off())
	assert(rig.sdmux:set("dut"))
	strap_card_boot(rig)
	rig.console:clear()
	assert(rig.power:on())
	local up, samples = testos.expect_sampling(rig, testos.LOGIN_PATTERN, BOOT_MS, 250)
	A.ok(up, "no login prompt within " .. BOOT_MS .. " ms")
	local ok, summary, low = testos.supply_verdict(samples, SUPPLY_MV, SUPPLY_TOL)
	t.log("supply from power-on to login: %s", summary)
	A.ok(ok, "under-voltage: " .. summary .. (low and (" (lowest at " .. low.mv .. " mV, " .. low.ma .. " mA)") or ""))
	login(rig)
	local uv = sh(rig, "dmesg | grep -ci 'under-voltage detected' || true")
	A.eq(uv, "0", "the kernel reports under-voltage")
end)

-- balenaOS's own conventions, which any balenaOS-shaped image must keep:
-- balena os suite "fingerprint": `md5sum -c /balenaos.fingerprint` (or /resinos.fingerprint)
-- passes; "udev": /dev/disk/by-state/{active,inactive,resin-data,resin-rootA,resin-rootB,
-- resin-state} exist and active != inactive; "swap": exactly one swap, on /dev/zram*, of
-- min(MemTotal / 2, 4 GB) +- 50 KiB.
s:case("fingerprint, by-state links and zram swap", function(rig)
	if not image.balena then t.skip(not_balena() .. ": no balenaOS fingerprint, by-state links or zram swap to expect") end
	boot(rig)
	login(rig)
	local fp = sh(rig, "for f in /balenaos.fingerprint /resinos.fingerprint; do " ..
		"[ -f $f ] && echo $f && break; done; true")
	A.ok(fp ~= "", "no /balenaos.fingerprint or /resinos.fingerprint")
	A.ok(tonumber(sh(rig, "wc -l < " .. fp)) > 10, fp .. " lists the root's files")
	A.eq(sh(rig, "md5sum -c " .. fp .. " 2>&1 | grep -v ': OK$' | head -n 5", 60000), "",
		"files that differ from " .. fp)
	for _, l in ipairs{ "active", "inactive", "resin-data", "resin-rootA", "resin-rootB", "resin-state" } do
		A.eq(sh(rig, "test -b /dev/disk/by-state/" .. l .. " && echo yes || echo no"), "yes",
			"/dev/disk/by-state/" .. l .. " is a block device")
	end
	A.ne(sh(rig, "readlink -f /dev/disk/by-state/active"), sh(rig, "readlink -f /dev/disk/by-state/inactive"),
		"active and inactive slots differ")
	-- balena's udev test also greps udevd's messages for "Failed to substitute variable"
	-- (its rules scanning ramdisks, zram and loop devices for a root); that udevd runs is
	-- checked first, so that no messages because no udevd cannot pass
	A.eq(sh(rig, "udevadm control --ping 2>&1 && echo running; true"), "running", "udevd answers")
	A.eq(sh(rig, "{ journalctl -u systemd-udevd.service 2>/dev/null || cat /var/log/messages; } | " ..
		"grep -c 'Failed to substitute variable'; true"), "0", "udevd's substitution failures")
	local swaps = sh(rig, "tail -n +2 /proc/swaps")
	local dev, kib, n = nil, nil, 0
	for line in (swaps .. "\n"):gmatch("([^\n]*)\n") do
		if line:match("%S") then
			n = n + 1
			dev, kib = line:match("^(%S+)%s+%S+%s+(%d+)")
		end
	end
	A.eq(n, 1, "swaps: " .. swaps)
	A.ok(dev and dev:match("^/dev/zram%d+$"), "the swap is on zram: " .. tostring(dev))
	local mem = tonumber(sh(rig, "awk '/^MemTotal:/ { print $2 }' /proc/meminfo"))
	local want = math.min(mem // 2, 4 * 1024 * 1024)   -- 4 GiB, as the test OS caps it
	A.ok(math.abs(tonumber(kib) - want) <= 50, string.format("swap %s KiB, want min(MemTotal/2, 4 GB) = %d KiB +- 50",
		tostring(kib), want))
end)

-- balena os suite "purge-data" (tests/purge-data): write a marker on the state and data
-- partitions, delete their remove_me_to_reset, reboot: the markers are gone, the flags are
-- back, and the OS comes up as before.
s:case("purge-data: state and data reset when remove_me_to_reset is gone", { timeout = 2 * BOOT_MS + 30000 },
	function(rig)
	if not image.balena then t.skip(not_balena() .. ": no resin-state/resin-data reset flags") end
	boot(rig)
	login(rig)
	for _, d in ipairs{ "/mnt/state", "/mnt/data" } do
		A.eq(sh(rig, "test -f " .. d .. "/remove_me_to_reset && echo yes || echo no"), "yes",
			d .. "/remove_me_to_reset before the reset")
		sh(rig, "echo marker > " .. d .. "/rigor-purge-marker && rm " .. d .. "/remove_me_to_reset && sync")
	end
	assert(rig.power:off())
	boot(rig)
	login(rig)
	for _, d in ipairs{ "/mnt/state", "/mnt/data" } do
		A.eq(sh(rig, "test -e " .. d .. "/rigor-purge-marker && echo kept || echo gone"), "gone",
			"the marker on " .. d .. " after the reset")
		A.eq(sh(rig, "test -f " .. d .. "/remove_me_to_reset && echo yes || echo no"), "yes",
			d .. "/remove_me_to_reset is back")
	end
	A.eq(sh(rig, "echo $((6*7))"), "42", "the shell answers after the reset")
end)

-- the file system label prefix of a balenaOS-shaped image ("resin" from resin-boot)
local function label_prefix()
	return testos.label_prefix(image) or "resin"
end

-- balena os suite "fsck" (tests/fsck): `tune2fs -E force_fsck` on resin-rootA, -rootB,
-- -state and -data makes `tune2fs -l` say "clean with errors"; after the device reboots,
-- each says "clean" (the OS checked them at boot). Skipped, as balena's, without
-- tune2fs >= 1.45.0 on the device.
s:case("fsck: ext4 partitions marked for a check are clean after a reboot", { timeout = 2 * BOOT_MS + 60000 },
	function(rig)
	if not image.balena then t.skip(not_balena() .. ": no resin-rootA/B, state or data partitions") end
	boot(rig)
	login(rig)
	-- its version line, "tune2fs 1.47.0 (5-Feb-2023)", comes with the usage on stderr
	local v = sh(rig, "tune2fs 2>&1 | grep -m 1 '^tune2fs [0-9]'; true")
	local maj, min = v:match("tune2fs (%d+)%.(%d+)")
	if not maj or tonumber(maj) * 100 + tonumber(min) < 145 then
		t.skip("no tune2fs >= 1.45.0 on the device: " .. v)
	end
	local pre = label_prefix()
	local function state(l)
		return sh(rig, "tune2fs -l /dev/disk/by-label/" .. pre .. "-" .. l ..
			" | sed -n 's/^Filesystem state:[[:space:]]*//p'")
	end
	for _, l in ipairs{ "rootA", "rootB", "state", "data" } do
		sh(rig, "tune2fs -E force_fsck /dev/disk/by-label/" .. pre .. "-" .. l .. " >/dev/null 2>&1; true")
		A.eq(state(l), "clean with errors", pre .. "-" .. l .. " marked for a check")
	end
	t.log("four file systems marked; the device reboots (%.1f s to a shell)", testos.reboot(rig))
	for _, l in ipairs{ "rootA", "rootB", "state", "data" } do
		A.eq(state(l), "clean", pre .. "-" .. l .. " after the reboot")
	end
end)

-- balena os suite "config-json" (tests/config-json): config.json is changed on the device,
-- which then reboots:
-- - hostname: `cat /etc/hostname` is the new name (balena logs in at <hostname>.local:
--   the virtual rig has no mDNS path from the host, so that part is not here);
-- - ntpServers: `chronyc sources` lists the server;
-- - dnsServers: the resolver's servers are balenaOS's default 8.8.8.8 before, then the
--   configured one in its place;
-- - persistentLogging: balena counts `journalctl --list-boots` over two reboots; here it
--   is switched on by the change, so the first boot keeps one record (nothing was kept
--   while it was off) and the next reboot adds one;
-- - os.udevRules: balena's rule `ENV{ID_FS_LABEL_ENC}=="resin-boot", SYMLINK+="disk/test"`
--   makes /dev/disk/test the boot partition.
-- The NetworkManager keys need NetworkManager (docs/coverage.md).
s:case("config.json settings applied after a reboot (hostname, ntpServers, dnsServers, udevRules, persistentLogging)",
	{ timeout = 3 * BOOT_MS + 90000 }, function(rig)
	if not image.balena then t.skip(not_balena()) end
	boot(rig)
	login(rig)
	local dns = testos.dns_servers(rig)
	A.eq(dns[1], "8.8.8.8", "the first DNS server without dnsServers (balenaOS's default): " ..
		table.concat(dns, " "))
	local name = string.format("rigor-cfg-%04d", core.now_ms() % 10000)
	local NTP, DNS = "192.0.2.123", "8.8.4.4"   -- TEST-NET-1: never answers, never resolves
	local rule = 'ENV{ID_FS_LABEL_ENC}=="' .. label_prefix() .. '-boot", SYMLINK+="disk/test"'
	testos.edit_config(rig, function(c)
		c.hostname, c.ntpServers, c.dnsServers, c.persistentLogging = name, NTP, DNS, true
		if type(c.os) ~= "table" then c.os = {} end
		c.os.udevRules = { ["99"] = rule }
	end)
	t.log("config.json: hostname %s, ntpServers %s, dnsServers %s, persistentLogging true; " ..
		"the device reboots (%.1f s to a shell)", name, NTP, DNS, testos.reboot(rig))
	A.eq(sh(rig, "hostname"), name, "hostname")
	A.eq(sh(rig, "cat /etc/hostname"), name, "/etc/hostname")
	local src, why = testos.ntp_sources(rig)
	if src then
		A.ok(src:find(NTP, 1, true), "chronyc sources lists the ntpServers entry " .. NTP .. ": " .. src)
	else
		t.log("ntpServers not checked: %s", why)
	end
	dns = testos.dns_servers(rig)
	A.eq(dns[1], DNS, "the first DNS server with dnsServers " .. DNS .. ": " .. table.concat(dns, " "))
	for _, a in ipairs(dns) do A.ne(a, "8.8.8.8", "the default DNS server with dnsServers set") end
	-- udevRules: balena's rule links the boot partition as /dev/disk/test
	-- (balena: `readlink -e`; busybox's readlink has only -f, so the link must exist first)
	local function target(l)
		return sh(rig, "if [ -b " .. l .. " ]; then readlink -f " .. l .. "; else echo none; fi")
	end
	local link, want = target("/dev/disk/test"), target("/dev/disk/by-label/" .. label_prefix() .. "-boot")
	A.ok(want:match("^/dev/%w+$"), "/dev/disk/by-label/" .. label_prefix() .. "-boot: " .. want)
	A.eq(link, want, "os.udevRules' /dev/disk/test")
	local first = testos.boots_logged(rig)
	A.eq(first, 1, "boots in the persistent log on the first boot with persistentLogging")
	t.log("the device reboots again (%.1f s to a shell)", testos.reboot(rig))
	A.eq(testos.boots_logged(rig), first + 1, "boots in the persistent log after one more reboot")
	A.eq(sh(rig, "hostname"), name, "hostname after the second reboot")
end)

-- balena os suite "chrony" (tests/chrony): chronyd runs; the system clock is synchronized
-- (balena: `timedatectl` "System clock synchronized: yes", within 2 min); `chronyc sources
-- -n` marks a source selected ("^*"). The DUT needs an NTP server it can reach: the rig's
-- RIGOR_NTP_SERVER, set in config.json ntpServers (the virtual rig's board answers NTP when
-- it can have UDP port 123, as root; scripts/virtual-rig exports it then).
local NTP_SERVER = os.getenv("RIGOR_NTP_SERVER") or ""
s:case("chrony: running, synchronized, a selected source (the rig's NTP server)", { timeout = 2 * BOOT_MS + 180000 },
	function(rig)
	if not image.balena then t.skip(not_balena() .. ": no config.json ntpServers") end
	if NTP_SERVER == "" then
		t.skip("no NTP server for the DUT: set RIGOR_NTP_SERVER (the virtual rig sets it when its board can serve UDP port 123, as root)")
	end
	boot(rig)
	login(rig)
	if not testos.ntp_sources(rig) then t.skip("no chronyc on the device") end
	testos.edit_config(rig, function(c) c.ntpServers = NTP_SERVER end)
	t.log("config.json ntpServers %s; the device reboots (%.1f s to a shell)", NTP_SERVER, testos.reboot(rig))
	A.eq(sh(rig, "if command -v systemctl >/dev/null; then systemctl is-active chronyd; " ..
		"else pidof chronyd >/dev/null && echo active; fi; true"), "active", "chronyd runs")
	-- synchronized: timedatectl where the image has it (balena's check), else chrony's own
	-- word (a reference and a normal leap status)
	local synced, tracking = false, ""
	local t_end = core.now_ms() + 120000
	local timedatectl = sh(rig, "command -v timedatectl >/dev/null && echo yes || echo no") == "yes"
	repeat
		if timedatectl then
			tracking = sh(rig, "timedatectl | grep 'System clock'; true")
			synced = tracking:find("synchronized: yes", 1, true) ~= nil
		else
			tracking = sh(rig, "chronyc -n tracking 2>&1")
			synced = tracking:match("Leap status%s*:%s*Normal") ~= nil and
				not tracking:match("Reference ID%s*:%s*00000000")
		end
		if not synced then core.sleep(2000) end
	until synced or core.now_ms() >= t_end
	A.ok(synced, "the clock is not synchronized within 120 s: " .. tracking)
	local src = testos.ntp_sources(rig)
	local sel = src:match("\n(%^%*[^\n]*)")
	A.ok(sel, "no selected source (^*) in chronyc sources: " .. src)
	A.ok(sel:find(NTP_SERVER, 1, true), "the selected source is not " .. NTP_SERVER .. ": " .. sel)
	t.log("synchronized: %s", sel)
end)

-- balena os suite "connectivity" (tests/connectivity): each wired interface fetches a page
-- (`curl --interface IF`). Here each wired interface (a device, not wireless) is up, routes
-- to the API and fetches its /ping ("OK"): with curl --interface where the image has curl,
-- else with wget (under `timeout 15`: busybox's has no timeout option) after `ip route get`
-- names that interface. RIGOR_CONNECTIVITY_URL
-- replaces the URL (and lets an image without config.json run the case).
s:case("wired connectivity: every wired interface reaches the API", function(rig)
	local url = os.getenv("RIGOR_CONNECTIVITY_URL")
	if (url or "") == "" and not image.balena then
		t.skip(not_balena() .. ": no apiEndpoint to reach (set RIGOR_CONNECTIVITY_URL)")
	end
	boot(rig)
	login(rig)
	if (url or "") == "" then
		local cfg = A.ok(core.json_decode(testos.get(rig, "/mnt/boot/config.json")))
		A.ok(type(cfg.apiEndpoint) == "string", "config.json has no apiEndpoint")
		url = cfg.apiEndpoint:gsub("/+$", "") .. "/ping"
	end
	local host = url:match("^%a+://%[?([^/%]]-)%]?:?%d*/") or url:match("^%a+://([^/:]+)")
	A.ok(host, "no host in " .. url)
	local ifs = {}
	for i in sh(rig, "for d in /sys/class/net/*; do [ -e $d/device ] && [ ! -e $d/wireless ] && " ..
		"[ ! -e $d/phy80211 ] && echo ${d##*/}; done; true"):gmatch("%S+") do ifs[#ifs + 1] = i end
	A.ok(#ifs > 0, "no wired network interface on the device")
	for _, i in ipairs(ifs) do
		-- the login prompt can come before DHCP is done (systemd-networkd): up to 30 s for a
		-- link and a route to the API through this interface
		sh(rig, "n=0; while [ $n -lt 30 ] && ! { [ \"$(cat /sys/class/net/" .. i .. "/operstate)\" = up ] && " ..
			"ip route get " .. host .. " 2>/dev/null | grep -q ' dev " .. i .. " '; }; do sleep 1; n=$((n + 1)); done", 40000)
		A.eq(sh(rig, "cat /sys/class/net/" .. i .. "/operstate"), "up", i .. " is up")
		local out = sh(rig, "if command -v curl >/dev/null; then curl -fsS -m 10 --interface " .. i .. " '" ..
			url .. "'; else ip route get " .. host .. " | grep -q ' dev " .. i .. " ' && timeout 15 wget -q -O - '" ..
			url .. "'; fi 2>&1; echo \" exit=$?\"", 30000)
		A.ok(out:match("OK exit=0$"), i .. " fetched " .. url .. ": " .. out)
		t.log("%s fetched %s", i, url)
	end
end)

s:case("config.json hostname is applied", function(rig)
	if not image.balena then t.skip(not_balena()) end
	boot(rig)
	login(rig)
	A.eq(sh(rig, "hostname"), hostname(rig))
	-- balena os suite "overlap_test": balenaOS's init leaves /overlap_detected on the boot
	-- partition when two partitions overlap on the medium; read from the card itself
	assert(rig.power:off())
	assert(rig.sdmux:set("host"))
	local boot_part = assert(testos.boot_partition(image), "no boot partition in " .. image.name)
	local flag, _, code = rig:read_file(boot_part, "/overlap_detected")
	A.is_nil(flag, "/overlap_detected on the boot partition")
	A.eq(code, "RIG_E_NOENT", "reading /overlap_detected")
end)

-- two boots: twice the boot budget
s:case("power cut mid-boot, then a clean boot", { timeout = 2 * BOOT_MS + 30000 }, function(rig)
	assert(rig.sdmux:set("dut"))
	strap_card_boot(rig)
	rig.console:clear()
	assert(rig.power:on())
	-- pull the plug once the OS proper runs (the test OS then has the boot partition
	-- mounted read-write): it names itself by its PRETTY_NAME
	local rel = image.os_release or {}
	local name = rel.PRETTY_NAME or rel.NAME
	local needles = { name, "login:" }
	if not name then table.remove(needles, 1) end
	local i, seen = testos.expect_any(rig, needles, BOOT_MS)
	A.ok(i, "neither the image's PRETTY_NAME nor a login prompt on the console; last output: " ..
		seen:sub(-200))
	assert(rig.power:off())
	t.log("power cut mid-boot, %s", needles[i] == name and ("at '" .. name .. "'")
		or "at the login prompt (the console never showed the image's PRETTY_NAME)")
	local secs = boot(rig)
	t.log("clean boot: login prompt %.1f s after power-on", secs)
	login(rig)
	A.eq(sh(rig, "echo $((6*7))"), "42", "the shell answers")
	if not image.balena then
		t.log("%s: the hostname, state partition and config.json checks are left out", not_balena())
		return
	end
	A.eq(sh(rig, "hostname"), hostname(rig))
	A.eq(sh(rig, "echo ok > /mnt/state/rigor-probe && cat /mnt/state/rigor-probe"), "ok",
		"the state partition is writable")
	-- the card survived: config.json still parses and keeps the hostname
	assert(rig.power:off())
	assert(rig.sdmux:set("host"))
	local boot_part = assert(testos.boot_partition(image), "no boot partition in " .. image.name)
	local cfg = A.ok(core.json_decode(assert(rig:read_file(boot_part, "/config.json"))))
	A.eq(cfg.hostname, hostname(rig), "config.json hostname after the power cut")
end)

return s
