-- SPDX-License-Identifier: MIT
-- rigor.testos: steps shared by the suites that flash and boot an OS image
-- (testcases/os.lua, testcases/cloud.lua: any image; testcases/flasher.lua,
-- testcases/hup.lua: the rigor test OS; docs/os-image.md).
--
--   local testos = require "rigor.testos"
--   s:before_all(function(rig) testos.need_image(IMAGE, "OS image") end)

local t = require "rigor.test"
local core = require "rigor.core"
local shell = require "rigor.shell"
local A = t.assert

local M = {}

--- The rigor test OS's login prompt (plain text; testcases/flasher.lua, testcases/hup.lua).
--- Suites that verify any image match M.LOGIN_PATTERN instead.
M.LOGIN = "rigor-os login: "

--- A login prompt of any image ("<hostname> login:"; a Lua pattern, rigor.shell's default).
M.LOGIN_PATTERN = shell.DEFAULTS.login_prompt

--- The integer in environment variable `name` (a timeout in ms, say), or `default` when
--- it is unset, empty or not an integer.
function M.env_int(name, default)
	return math.tointeger(tonumber(os.getenv(name) or "")) or default
end

--- Power-on to login prompt, in ms: RIGOR_BOOT_TIMEOUT_MS, else 120000. The virtual board
--- boots in about 20 s on an idle 2-core machine but took 68-87 s at load 13-16, and a
--- first boot of balenaOS on a Raspberry Pi can take over a minute; a longer bound costs
--- nothing when the board boots, only a later verdict when it does not.
function M.boot_ms()
	return M.env_int("RIGOR_BOOT_TIMEOUT_MS", 120000)
end

--- The balenaOS version the suites ask /download-config for: RIGOR_CONFIG_OS_VERSION, else
--- 6.0.0. Not the image's own version: the API picks the provisioning protocol from it, and
--- the rigor test OS numbers itself 1.0 while its agent speaks today's protocol (a fleet
--- provisioning key in apiKey, balenaOS 2.7.8 and later). Its "1.0" would be refused (the
--- API no longer serves 1.2.0 and older), and anything before 2.7.8 would put the user's own
--- API key on the card (rigor.balena refuses to ask). docs/lua-api.md, "Which version to ask
--- for".
function M.config_os_version()
	local v = os.getenv("RIGOR_CONFIG_OS_VERSION")
	if v == nil or v == "" then return "6.0.0" end
	return v
end

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

-- the prefix of a balenaOS boot partition's label ("resin" of resin-boot), or nil
local function boot_prefix(p)
	return p.label and p.label:match("^(%a+)%-boot$")
end

--- The number of the image's boot partition (where config.json goes): for a
--- balenaOS-shaped image the one labelled "<prefix>-boot" (resin-boot, balena-boot,
--- flash-boot), else the first bootable FAT one; nil if none. `image`: rig.image.
function M.boot_partition(image)
	local parts = image and image.partitions or {}
	for _, p in ipairs(parts) do
		if boot_prefix(p) then return p.number end
	end
	for _, p in ipairs(parts) do
		if p.bootable and p.fs == "vfat" then return p.number end
	end
	return nil
end

--- The label prefix of a balenaOS-shaped image's partitions ("resin" of resin-boot,
--- "balena", "flash"), from its boot partition; nil if it has none. `image`: rig.image.
function M.label_prefix(image)
	for _, p in ipairs(image and image.partitions or {}) do
		local pre = boot_prefix(p)
		if pre then return pre end
	end
	return nil
end

-- One rigor.shell per rig (docs/lua-api.md "rigor.shell"), with its generic prompts
-- (any "<hostname> login:", a root shell prompt "root@<hostname>:...#").
local shells = setmetatable({}, { __mode = "k" })
local function shell_of(rig)
	local s = shells[rig]
	if not s then
		s = shell.console(rig)
		shells[rig] = s
	end
	return s
end

--- Logs in as root on the console (at the login prompt; any "<hostname> login:").
function M.login(rig)
	A.ok(shell_of(rig):login())
end

--- Runs a shell command on the console (rigor.shell: kernel lines stripped, robust to an
--- echoing or slow console); returns its output (lines joined with "\n", no final line
--- end). `timeout_ms` (default 10000) bounds the wait for the command's end. A timeout,
--- a reboot or no shell fails the case.
function M.sh(rig, cmd, timeout_ms)
	local r, err = shell_of(rig):run(cmd, { timeout_ms = timeout_ms or 10000 })
	A.ok(r, err)
	return r.out
end

--- Writes `data` to `path` on the DUT through the console shell (rigor.shell put:
--- base64 in chunks, checked by sha256, then moved into place). A failure fails the case.
function M.put(rig, path, data)
	A.ok(shell_of(rig):put(path, data))
end

--- Reads `path` from the DUT through the console shell; a failure fails the case.
function M.get(rig, path)
	local data, err = shell_of(rig):get(path)
	A.ok(data, err)
	return data
end

--- The DUT reboots itself (`sync; reboot -f`, as balena's suites have the device reboot
--- rather than the host cut the power) and comes back to a root shell within `timeout_ms`
--- (default M.boot_ms()). Returns the seconds it took.
function M.reboot(rig, timeout_ms)
	local t0 = core.now_ms()
	rig.console:clear()
	assert(rig.console:sendline("sync; reboot -f"))
	A.ok(rig.console:expect(M.LOGIN_PATTERN, timeout_ms or M.boot_ms()), "no login prompt after the reboot")
	M.login(rig)
	return (core.now_ms() - t0) / 1000
end

--- config.json on the DUT's boot partition (/mnt/boot/config.json, where balenaOS and the
--- test OS mount it) changed at run time, as balena's suites do with jq: `edit(cfg)`
--- changes the decoded table in place (a key set to nil is removed). The file is
--- replaced whole (rigor.shell put: written beside it, checked, moved) and synced.
--- Returns the new table.
function M.edit_config(rig, edit)
	local path = "/mnt/boot/config.json"
	local cfg = A.ok(core.json_decode(M.get(rig, path)), path .. " on the DUT does not parse")
	edit(cfg)
	M.put(rig, path, core.json_encode(cfg, 2))
	M.sh(rig, "sync")
	return cfg
end

--- The DUT's DNS servers as a list, whichever resolver the image runs: balenaOS's dnsmasq
--- servers file (`--servers-file` in its unit, "server=ADDR" lines), else
--- /etc/resolv.conf's nameserver lines.
function M.dns_servers(rig)
	local text = M.sh(rig, "f=$(systemctl show dnsmasq -p ExecStart 2>/dev/null | " ..
		"sed -n 's/.*--servers-file=\\([^ ;]*\\).*/\\1/p'); " ..
		"if [ -n \"$f\" ] && [ -f \"$f\" ]; then sed -n 's/^server=//p' \"$f\"; " ..
		"else sed -n 's/^nameserver[[:space:]]*//p' /etc/resolv.conf; fi")
	local r = {}
	for a in text:gmatch("%S+") do r[#r + 1] = a end
	return r
end

--- The DUT's NTP sources as chrony lists them (`chronyc -n sources`, balenaOS's NTP
--- client and the test OS's); nil and why when the image has no chronyc.
function M.ntp_sources(rig)
	if M.sh(rig, "command -v chronyc >/dev/null && echo yes || echo no") ~= "yes" then
		return nil, "no chronyc on the DUT"
	end
	return M.sh(rig, "chronyc -n sources 2>&1")
end

--- How many boots the DUT's persistent log holds: journald's `--list-boots` where the
--- image has it, else the "syslogd started" lines (one per boot) in /var/log/messages.
function M.boots_logged(rig)
	return tonumber(M.sh(rig, "if command -v journalctl >/dev/null; then " ..
		"journalctl --list-boots 2>/dev/null | grep -c .; " ..
		"else grep -c 'syslogd started' /var/log/messages 2>/dev/null; fi; true"):match("(%d+)%s*$"))
end

--- The DUT's supply judged from rig telemetry: `samples` is a list of { mv =, ma = }
--- (rig.power:measure()), `nominal_mv` the supply's rating, `tolerance_pct` how far below
--- it the supply may sag (USB: 5 V -5 %, 4750 mV). Returns ok, a summary ("n samples,
--- min 4980 mV, max 420 mA"), and the lowest sample. No samples is not ok.
function M.supply_verdict(samples, nominal_mv, tolerance_pct)
	if #samples == 0 then return false, "no telemetry samples", nil end
	local low, max_ma = samples[1], samples[1].ma
	for _, m in ipairs(samples) do
		if m.mv < low.mv then low = m end
		if m.ma > max_ma then max_ma = m.ma end
	end
	local floor_mv = nominal_mv * (100 - tolerance_pct) / 100
	return low.mv >= floor_mv, string.format("%d samples, min %d mV (floor %.0f mV = %d mV - %g %%), max %d mA",
		#samples, low.mv, floor_mv, nominal_mv, tolerance_pct, max_ma), low
end

--- Waits up to `timeout_ms` for the Lua pattern `pattern` on the console while sampling
--- rig.power:measure() every `every_ms`. Returns whether it appeared, and the samples.
function M.expect_sampling(rig, pattern, timeout_ms, every_ms)
	local samples, t_end = {}, core.now_ms() + timeout_ms
	repeat
		local m = rig.power:measure()
		if m then samples[#samples + 1] = m end
		if rig.console:expect(pattern, math.min(every_ms, math.max(0, t_end - core.now_ms()))) then
			return true, samples
		end
	until core.now_ms() >= t_end
	return false, samples
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
