-- SPDX-License-Identifier: MIT
-- The soak of the virtual rig (docs/soak.md), run by testcases/soak/soak.sh as
--
--   rigor --rig rigs/virtual.lua lua testcases/soak/soak.lua
--
-- with the environment of `scripts/virtual-rig start DIR` (. DIR/env). One rigor process
-- holds the rig for the whole soak, so its file descriptors and RSS are those of a
-- long-running controller. Every cycle:
--   flash   the test OS with a config.json naming this cycle (hostname soak-<run>-<N>):
--           DUT off, card to the host, incremental write, read-back, config.json read back
--   mux     off -> dut, each read back from the rig board (rigfw-sim over its link)
--   power   strap held, power on, read back, telemetry (mV, mA) from the rig board
--   boot    the console shows the login prompt
--   console log in, the hostname is this cycle's, a command with ~1.5 KiB of output
--   interlock  the card cannot go to the host while powered (RIG_E_PERM)
--   buttons release the strap, press it 50 ms
--   off     power off, read back, telemetry (about 0 mV, 0 mA: nothing is powered)
-- After each cycle it samples the fd count (/proc/PID/fd) and VmRSS (/proc/PID/status)
-- of rigor itself, rigfw-sim, rigor-backend and rigor-vboard (their PIDs from DIR/*.pid).
-- Cycle 1 is the warm-up; its sample is the baseline. At the end each process may have
-- grown by at most its slack (below).
--
-- Output: one line per cycle, one TAP line per check ("ok N - ..." / "not ok N - ..."), a
-- summary. Returns 0 (pass), 1 (a cycle failed or a process grew) or 130/143.
--
-- Environment: SOAK_SECONDS (default 300: cycles start until then), SOAK_MIN_CYCLES
-- (default 3, including the warm-up), SOAK_MAX_CYCLES (default unlimited),
-- SOAK_CYCLE_TIMEOUT_MS (default 180000), RIGOR_OS_IMAGE, RIGOR_BOOT_TIMEOUT_MS
-- (default 120000), SOAK_LOG (rig events and console, appended).
local core = require "rigor.core"
local testos = require "rigor.testos"

local function envint(name, default)
	return math.tointeger(tonumber(os.getenv(name) or "")) or default
end

local SECONDS = envint("SOAK_SECONDS", 300)
local WARMUP = math.max(envint("SOAK_WARMUP", 2), 1)
local MIN_CYCLES = math.max(envint("SOAK_MIN_CYCLES", WARMUP + 1), WARMUP + 1)
local MAX_CYCLES = envint("SOAK_MAX_CYCLES", math.maxinteger)
local CYCLE_MS = envint("SOAK_CYCLE_TIMEOUT_MS", 180000)
local BOOT_MS = testos.boot_ms()
local IMAGE = os.getenv("RIGOR_OS_IMAGE") or "build/os/rigor-os-1.0.img"
local DIR = os.getenv("RIGOR_VIRTUAL_DIR") or "/tmp/rigor-virtual"

-- Growth allowed between the warm-up sample and the last one. Bounded, never relative to
-- the run length: a leak of one fd or a few KiB per cycle shows in a long soak.
--   fds: none for rigor and rigfw-sim (sampled at the same point of every cycle, DUT off,
--   console idle: the set of open files is fixed). The Python processes get 2: the API
--   emulator may still hold the guest agent's last connection for a moment after the
--   power cut, and the board its relay's.
--   RSS: the baseline is taken after SOAK_WARMUP cycles (default 2), not 1: the first
--   flash writes a blank card, the second only compares, and glibc raises its mmap
--   threshold after the first large free, so buffers mmapped (and returned) in cycle 1
--   come from the heap, and stay there, from cycle 2 on. rigor's Lua heap is collected before each sample, but glibc keeps freed pages of
--   the flash engine's buffers and thread arenas (the arenas' high-water marks move with
--   thread scheduling: a few MiB); sanitizer builds keep a quarantine of freed memory
--   (ASAN_OPTIONS quarantine_size_mb=4, set by soak.sh, which adds SOAK_SAN_SLACK_KIB for
--   it and the shadow pages to rigor and rigfw-sim). rigfw-sim
--   has no heap: only stdio and page-cache noise. The Python emulators allocate per
--   request and per poll; their allocator keeps arenas.
local SLACK = {
	rigor = { fd = 0, rss = envint("SOAK_RSS_SLACK_KIB", 4096) },
	["rigfw-sim"] = { fd = 0, rss = 256 },
	["rigor-backend"] = { fd = 2, rss = 2048 },
	["rigor-vboard"] = { fd = 2, rss = 2048 },
}
-- sanitizer builds (soak.sh sets it): the ASan quarantine and its shadow pages
local SAN_SLACK = envint("SOAK_SAN_SLACK_KIB", 0)
SLACK.rigor.rss = SLACK.rigor.rss + SAN_SLACK
SLACK["rigfw-sim"].rss = SLACK["rigfw-sim"].rss + SAN_SLACK
local WATCH = { "rigor", "rigfw-sim", "rigor-backend", "rigor-vboard" }
local PIDFILE = { ["rigfw-sim"] = "sim.pid", ["rigor-backend"] = "backend.pid",
	["rigor-vboard"] = "vboard.pid" }

-- Every line goes to stdout and to SOAK_OUT. Checks are TAP lines ("ok N - ..."); with
-- SOAK_TAP=1 every other line is a TAP diagnostic ("# ...").
local TAP = os.getenv("SOAK_TAP") == "1"
local copy = os.getenv("SOAK_OUT") and assert(io.open(os.getenv("SOAK_OUT"), "a"))
local function emit(line)
	io.stdout:write(line, "\n")
	io.stdout:flush()
	if copy then copy:write(line, "\n"); copy:flush() end
end
local function out(fmt, ...)
	emit((TAP and "# " or "") .. string.format(fmt, ...))
end
local nchecks, fail = 0, false
local function check(ok, fmt, ...)
	nchecks = nchecks + 1
	emit(string.format("%s %d - " .. fmt, ok and "ok" or "not ok", nchecks, ...))
	if not ok then fail = true end
	return ok
end

local readfile = require("rigor.util").read_file

-- /proc sampling -----------------------------------------------------------------------

local pids = {}
pids.rigor = math.tointeger(tonumber((readfile("/proc/self/stat") or ""):match("^(%d+)")))
for name, file in pairs(PIDFILE) do
	pids[name] = math.tointeger(tonumber((readfile(DIR .. "/" .. file) or ""):match("%d+")))
end

-- fd -> link target of process `pid`, and their count; nil if it is gone. `ls` writes to
-- a file, not to a pipe, so that rigor's own list holds no fd of the sampling itself.
local LIST
local function fds(pid)
	LIST = LIST or os.tmpname()
	if not os.execute("ls -l /proc/" .. pid .. "/fd/ >" .. LIST .. " 2>/dev/null") then return nil end
	local t, n = {}, 0
	for line in (readfile(LIST) or ""):gmatch("[^\n]+") do
		local fd, target = line:match(" (%d+) %-> (.*)$")
		if fd then t[tonumber(fd)] = target; n = n + 1 end
	end
	return t, n
end

local function rss_kib(pid)
	local st = readfile("/proc/" .. pid .. "/status")
	return st and math.tointeger(tonumber(st:match("VmRSS:%s*(%d+)")))
end

-- { [name] = { fd = n, rss = KiB, fds = {fd -> target} } }; a process that is gone: nil
local function sample()
	collectgarbage("collect")
	collectgarbage("collect")
	local s = {}
	for _, name in ipairs(WATCH) do
		local pid = pids[name]
		if pid then
			local t, n = fds(pid)
			local rss = rss_kib(pid)
			if t and rss then s[name] = { fd = n, rss = rss, fds = t } end
		end
	end
	return s
end

local function sample_line(s)
	local parts = {}
	for _, name in ipairs(WATCH) do
		local v = s[name]
		parts[#parts + 1] = v and string.format("%s %d/%d", name, v.fd, v.rss)
			or string.format("%s gone", name)
	end
	return string.format("fd/RSS KiB: %s (Lua heap %d KiB)", table.concat(parts, ", "),
		collectgarbage("count") // 1)
end

-- one cycle ----------------------------------------------------------------------------

local run_id = string.format("%04d", core.now_ms() % 10000)
local step = "start"
local function at(name) step = name end

local A = {}
function A.eq(got, want, what)
	if got ~= want then
		error(string.format("%s: got %s, want %s", what, tostring(got), tostring(want)), 0)
	end
end
function A.ok(v, msg, ...)
	if not v then error(tostring(msg or "assertion failed"), 0) end
	return v, msg, ...
end

local function cycle(n)
	local info = {}
	local hostname = string.format("soak-%s-%d", run_id, n)

	at("flash")
	local t0 = core.now_ms()
	local st = A.ok(rig:flash(IMAGE, { files = { ["config.json"] = testos.config_json(rig, hostname) } }))
	local cfg = core.json_decode(A.ok(rig:read_file("resin-boot", "/config.json")))
	A.eq(type(cfg) == "table" and cfg.hostname, hostname, "config.json hostname on the card")
	info.flash = string.format("flash %.1f s %d KiB written", (core.now_ms() - t0) / 1000,
		(st.written or 0) // 1024)

	at("mux")
	A.eq(rig.sdmux:get(), "host", "mux after flashing")
	A.ok(rig.sdmux:set("off"))
	A.eq(rig.sdmux:get(), "off", "mux read back")
	A.ok(rig.sdmux:set("dut"))
	A.eq(rig.sdmux:get(), "dut", "mux read back")

	at("power on")
	A.eq(rig.power:state(), "off", "power before power-on")
	testos.strap_card_boot(rig)
	rig.console:clear()
	t0 = core.now_ms()
	A.ok(rig.power:on())
	A.eq(rig.power:state(), "on", "power read back")
	local m = A.ok(rig.power:measure())
	A.ok(m.mv > 4000, string.format("telemetry while on: %d mV", m.mv))
	info.on = string.format("%d mV %d mA", m.mv, m.ma)

	at("boot")
	A.ok(rig.console:expect(testos.LOGIN, BOOT_MS, true))
	info.boot = string.format("boot %.1f s", (core.now_ms() - t0) / 1000)

	at("console")
	testos.login(rig)
	A.eq(testos.sh(rig, "hostname"), hostname, "hostname on the DUT")
	local lines = testos.sh(rig, "seq 1 300")
	local count, last = 0, nil
	for l in lines:gmatch("[^\n]+") do count = count + 1; last = l end
	A.eq(count, 300, "lines of 'seq 1 300' on the console")
	A.eq(last, "300", "last line of 'seq 1 300'")

	at("interlock")
	local ok, msg, code = rig.sdmux:set("host")
	A.eq(ok, nil, "sdmux:set('host') while powered")
	A.eq(code, "RIG_E_PERM", "refusal code (" .. tostring(msg) .. ")")
	A.eq(rig.sdmux:get(), "dut", "mux after the refusal")

	at("buttons")
	A.ok(rig.button.boot:release())
	A.ok(rig.button.boot:press(50))

	at("power off")
	A.ok(rig.power:off())
	A.eq(rig.power:state(), "off", "power read back")
	-- the sensor is behind the switch, and the board samples it on every switch: the
	-- first reading after power-off already shows the DUT unpowered
	m = A.ok(rig.power:measure())
	A.ok(math.type(m.mv) == "integer" and math.type(m.ma) == "integer" and m.mv >= 0 and
		m.mv < 100 and math.abs(m.ma) < 10,
		string.format("telemetry while off: %s mV %s mA", tostring(m.mv), tostring(m.ma)))
	return info
end

-- the run ------------------------------------------------------------------------------

if not rig then
	check(false, "no rig: run with rigor --rig rigs/virtual.lua lua %s", arg and arg[0] or "soak.lua")
	return 1
end
if rig.name ~= "virtual" and rig.name ~= "virtual-2" then
	check(false, "rig '%s' is not a virtual rig", rig.name)
	return 1
end
do
	local f = io.open(IMAGE, "rb")
	if not f then check(false, "no OS image %s (make os-image)", IMAGE); return 1 end
	f:close()
end
for name in pairs(PIDFILE) do
	if not pids[name] then check(false, "no PID for %s in %s", name, DIR); return 1 end
end
if os.getenv("SOAK_LOG") then assert(rig:log_to(os.getenv("SOAK_LOG"))) end

out("soak: rig %s in %s, image %s, %d s (at least %d cycles%s), rigor pid %d",
	rig.name, DIR, IMAGE, SECONDS, MIN_CYCLES,
	MAX_CYCLES < math.maxinteger and ", at most " .. MAX_CYCLES or "", pids.rigor)

local start = core.now_ms()
local base, last           -- samples after the warm-up and after the last cycle
local prev                 -- the sample before `last`
local cycles, failure, code = 0, nil, 0

while cycles < MAX_CYCLES and (cycles < MIN_CYCLES or core.now_ms() - start < SECONDS * 1000) do
	local n = cycles + 1
	local t0 = core.now_ms()
	step = "start"
	core.arm(t0 + CYCLE_MS)
	local ok, res = pcall(cycle, n)
	core.disarm()
	if not ok then
		local e = res
		if type(e) == "table" and e.rigor_abort then
			code = e.rigor_abort == "SIGTERM" and 143 or e.rigor_abort == "SIGINT" and 130 or 1
			failure = string.format("cycle %d, step '%s': %s", n, step, tostring(e.message))
		else
			failure = string.format("cycle %d, step '%s': %s%s", n, step,
				type(e) == "table" and e.rigor_infra and "infrastructure error: " or "",
				type(e) == "table" and tostring(e.message) or tostring(e))
		end
		out("cycle %d: FAIL after %.1f s: %s", n, (core.now_ms() - t0) / 1000, failure)
		break
	end
	cycles = n
	core.sleep(200)    -- let the emulators close the guest's connections
	prev, last = last, sample()
	if n == WARMUP then base = last end
	out("cycle %d: ok %.1f s (%s; %s; %s) %s%s", n, (core.now_ms() - t0) / 1000, res.flash,
		res.boot, res.on, sample_line(last),
		n < WARMUP and " [warm-up]" or n == WARMUP and " [warm-up: baseline]" or "")
	-- what changed among the open files since the last sample (evidence for a leak)
	for _, name in ipairs(WATCH) do
		local a, b = prev and prev[name], last[name]
		if a and b then
			for fd, target in pairs(b.fds) do
				if a.fds[fd] ~= target then out("  %s: fd %d -> %s (new)", name, fd, target) end
			end
			for fd, target in pairs(a.fds) do
				if not b.fds[fd] then out("  %s: fd %d -> %s (closed)", name, fd, target) end
			end
		end
	end
	local gone = {}
	for _, name in ipairs(WATCH) do
		if not last[name] then gone[#gone + 1] = string.format("%s (pid %s)", name, pids[name]) end
	end
	if #gone > 0 then
		failure = string.format("cycle %d: process gone: %s", n, table.concat(gone, ", "))
		break
	end
	local sig = core.interrupted()
	if sig then
		code = sig == "SIGTERM" and 143 or 130
		failure = "interrupted by " .. sig
		break
	end
end
local elapsed = (core.now_ms() - start) / 1000
if LIST then os.remove(LIST) end
-- the DUT is left off, the strap released, whatever happened
local safe_ok, safe_err = pcall(rig.safe, rig)

-- checks and summary -------------------------------------------------------------------

check(not failure, "%d cycles without error%s", cycles, failure and (": " .. failure) or "")
check(cycles >= MIN_CYCLES, "at least %d cycles (%d)", MIN_CYCLES, cycles)
check(safe_ok, "rig:safe() at the end%s", safe_ok and "" or ": " .. tostring(safe_err))
out("soak: %d cycles in %.1f s (%.1f s per cycle)", cycles, elapsed, cycles > 0 and elapsed / cycles or 0)
if base and last and cycles > WARMUP then
	out("soak: %-14s %6s %6s %10s %10s %9s", "process", "fd@" .. WARMUP, "fd@" .. cycles, "RSS@" .. WARMUP .. " KiB",
		"RSS@" .. cycles .. " KiB", "growth")
	for _, name in ipairs(WATCH) do
		local b, e = base[name], last[name]
		if b and e then
			out("soak: %-14s %6d %6d %10d %10d %+9d", name, b.fd, e.fd, b.rss, e.rss, e.rss - b.rss)
		end
	end
	for _, name in ipairs(WATCH) do
		local b, e, sl = base[name], last[name], SLACK[name]
		if b and e then
			if not check(e.fd <= b.fd + sl.fd, "%s (pid %d): fds %d after cycle %d, %d after cycle %d (slack %d)",
				name, pids[name], b.fd, WARMUP, e.fd, cycles, sl.fd) then
				for fd, target in pairs(e.fds) do
					if b.fds[fd] ~= target then out("  new fd %d -> %s", fd, target) end
				end
			end
			check(e.rss <= b.rss + sl.rss, "%s (pid %d): RSS %d KiB after cycle %d, %d KiB after cycle %d (slack %d KiB)",
				name, pids[name], b.rss, WARMUP, e.rss, cycles, sl.rss)
		else
			check(false, "%s (pid %s) still running", name, tostring(pids[name]))
		end
	end
else
	check(false, "fd and RSS compared after the warm-up (needs %d cycles, ran %d)", WARMUP + 1, cycles)
end
if code ~= 0 then return code end
return fail and 1 or 0
