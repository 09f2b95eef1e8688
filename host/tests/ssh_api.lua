-- SPDX-License-Identifier: MIT
-- rigor.ssh and the network role against dropbear on loopback (host/tests/ssh.sh):
--   rigor --rig RIGFILE lua host/tests/ssh_api.lua main TMPDIR DEV_PORT
--   rigor --rig LEASE_RIGFILE lua host/tests/ssh_api.lua lease|nolease TMPDIR
-- Prints unnumbered TAP lines without a plan (ssh.sh adds it).
local core = require "rigor.core"
local ssh = require "rigor.ssh"
local shell = require "rigor.shell"

local mode, T, DEV = arg[1], arg[2], tonumber(arg[3])
assert(T, "usage: ssh_api.lua main|lease|nolease TMPDIR [DEV_PORT]")

local tc = dofile("host/tests/tapcheck.lua")()
local check = tc.check
local function show(r, msg, kind, part)
	if type(r) == "table" then
		return string.format("rc=%s out=%q err=%q", tostring(r.rc), r.out:sub(1, 300), r.err:sub(1, 300))
	end
	return string.format("%s, %s, %s, out=%q", tostring(r), tostring(msg), tostring(kind),
		part and tostring(part.out):sub(1, 300) or "")
end
local slurp = require("rigor.util").read_file

if mode == "lease" then
	local host, port = rig.network:address()
	check(host == "10.0.2.16" and port == 22222,
		"lease_file: the newest lease for the DUT's MAC, default port 22222", tostring(host) .. " " .. tostring(port))
	check(ssh.new(rig).o.user == "admin", "user from the rig file's network entry")
	os.exit(tc.failed == 0)
end
if mode == "nolease" then
	local h, err, code = rig.network:address()
	check(h == nil and code == "RIG_E_NOENT" and tostring(err):find("no lease for 52:54:00:00:00:01", 1, true)
		and tostring(err):find("asked for an address", 1, true),
		"lease_file without the DUT's lease: nil, a message naming the MAC, RIG_E_NOENT", tostring(err) .. " " .. tostring(code))
	local ok2, err2 = pcall(ssh.new(rig).run, ssh.new(rig), "true")
	check(not ok2 or err2 == nil, "ssh:run without an address raises or fails, does not hang", tostring(err2))
	os.exit(tc.failed == 0)
end

-- ---- main: the production server through the rig's network role ----
local host, port = rig.network:address()
check(host == "127.0.0.1" and math.type(port) == "integer", "rig.network:address() gives the rig file's address",
	tostring(host) .. " " .. tostring(port))
local user, identity = rig.network:login()
check(user == "root" and identity == T .. "/id", "rig.network:login(): default user root, the rig file's identity")

local sh = shell.ssh(rig)
local t0 = core.now_ms()
local ok, msg, kind = sh:wait({ timeout_ms = 20000 })
check(ok, "wait(): the server answers", tostring(msg) .. " " .. tostring(kind))
local kh = slurp(core.state_dir() .. "/ssh-fake.known_hosts")
check(kh and kh:find("[127.0.0.1]:" .. port, 1, true), "the host key went into <state dir>/<rig>.known_hosts", kh)

-- a first connection records the key without a word on stderr
local fresh = ssh.new(rig, { known_hosts = T .. "/fresh_known_hosts" })
local r0, m0 = fresh:run("echo first")
check(r0 and r0.out == "first\n" and r0.err == "", "a first connection: the key is recorded, stderr stays the command's",
	r0 and string.format("%q", r0.err) or tostring(m0))

-- stdout, stderr and exit status, separated
local r, m, k, p = sh:run("echo hello; echo oops >&2; exit 3")
check(r and r.out == "hello\n" and r.err == "oops\n" and r.rc == 3,
	"run(): stdout, stderr and exit status come back separately", show(r, m, k, p))
r, m, k, p = sh:run("printf '%s|' \"a b\" 'c'\"'\"'d' $((6*7))")
check(r and r.out == "a b|c'd|42|" and r.rc == 0, "run(): the command line reaches the DUT's shell as written", show(r, m, k, p))
-- SSH carries only the command's output: no kernel messages to strip, and a line of the
-- command's own that looks like one is kept (the console shell drops such lines)
r, m, k, p = sh:run("echo '[    1.234567] usb 1-1: new device'; echo done")
check(r and r.out == "[    1.234567] usb 1-1: new device\ndone\n", "run(): output is the command's, byte for byte", show(r, m, k, p))
-- a command's own 255 is its status, not an ssh failure
r, m, k, p = sh:run("exit 255")
check(r and r.rc == 255, "run(): a command exiting 255 is a result, not a connection error", show(r, m, k, p))
-- stdin is /dev/null unless input is given: a command reading it does not hang
r, m, k, p = sh:run("cat; echo end", { timeout_ms = 10000 })
check(r and r.out == "end\n", "run(): stdin is empty by default", show(r, m, k, p))
r, m, k, p = sh:run("tr a-z A-Z", { input = "abc\n" })
check(r and r.out == "ABC\n", "run(): opts.input is the command's stdin", show(r, m, k, p))

-- timeout: the client is killed, the call returns within the bound (generous: the machine
-- may be loaded, so 1.5 s asked and up to 8 s accepted, against a 30 s command)
t0 = core.now_ms()
r, m, k, p = sh:run("echo started; sleep 30", { timeout_ms = 1500 })
local took = core.now_ms() - t0
check(not r and k == "timeout" and took < 8000 and m:find("did not finish within 1500 ms", 1, true),
	"run(): timeout_ms ends a command that hangs, kind 'timeout'", show(r, m, k, p) .. " took " .. took)

-- the DUT going away mid-command (a reboot): its session dies, the call says so
r, m, k, p = sh:run("echo before; sleep 1; kill -9 $PPID; sleep 5", { timeout_ms = 15000 })
check(not r and k == "disconnected" and p and p.out:find("before", 1, true) and m:find("reboot", 1, true),
	"run(): a DUT that drops the session mid-command gives 'disconnected' and the output so far", show(r, m, k, p))
r, m, k, p = sh:run("echo after")
check(r and r.out == "after\n", "run(): the next call connects again", show(r, m, k, p))

-- files: binary data both ways, checked
local data = {}
for i = 0, 255 do data[#data + 1] = string.char(i) end
data = table.concat(data):rep(600)          -- 150 KiB with every byte value
ok, m, k = sh:put(T .. "/home/blob", data)
check(ok == true and slurp(T .. "/home/blob") == data, "put(): binary data lands on the DUT intact", tostring(m))
check(slurp(T .. "/home/blob.rigor-part") == nil, "put(): no temporary file left behind")
local got
got, m, k = sh:get(T .. "/home/blob")
check(got == data, "get(): binary data comes back intact", tostring(m))
got, m, k = sh:get(T .. "/home/no-such-file")
check(got == nil and k == "failed" and m:find("No such file", 1, true), "get(): a missing file is a clear error", tostring(m))
ok, m, k = sh:put(T .. "/no-such-dir/x", "x")
check(ok == nil and k == "failed" and m:find("put '", 1, true), "put(): an unwritable path is a clear error", tostring(m))
got, m, k = sh:get(T .. "/home/blob", { max_bytes = 1000 })
check(got == nil and k == "too_long", "get(): max_bytes bounds what is read", tostring(m))

-- a key the DUT does not have: refused, with what to check
local other = ssh.new(rig, { identity = T .. "/other" })
r, m, k = other:run("true")
check(not r and k == "auth" and m:find("Permission denied", 1, true) and m:find("os.sshKeys", 1, true),
	"a key the DUT does not know: kind 'auth', says which user and key and where keys go", tostring(m))
ok, m, k = other:wait({ timeout_ms = 20000 })
check(not ok and k == "auth", "wait(): an auth failure ends the wait at once", tostring(m))

-- a changed host key (a reflashed DUT): refused, named, and forget_host_key() clears it
local kh_path = core.state_dir() .. "/ssh-fake.known_hosts"
local f = assert(io.open(kh_path, "w"))
local otherpub = slurp(T .. "/other.pub"):match("^(%S+ %S+)")
f:write(string.format("[127.0.0.1]:%d %s\n", port, otherpub))
f:close()
r, m, k = sh:run("true")
check(not r and k == "host_key" and m:find("forget_host_key", 1, true), "a changed host key: kind 'host_key', says what to do", tostring(m))
check(sh:forget_host_key(), "forget_host_key() removes the old key")
r, m, k = sh:run("echo again")
check(r and r.out == "again\n", "after forget_host_key() the new key is accepted", tostring(m))
r, m, k = ssh.new(rig, { host_key = "strict", known_hosts = T .. "/empty_known_hosts" }):run("true")
check(not r and k == "host_key", "host_key = 'strict' refuses an unknown DUT", tostring(m))

-- the uplink: cut makes SSH fail, restore brings it back (here the server is stopped)
local quick = ssh.new(rig, { connect_timeout_ms = 2000 })
check(rig.network:cut() == true, "rig.network:cut()")
t0 = core.now_ms()
r, m, k = quick:run("true", { timeout_ms = 20000 })
check(not r and (k == "unreachable" or k == "timeout"), "with the uplink cut, SSH fails (kind " .. tostring(k) .. ")", tostring(m))
check(rig.network:restore() == true, "rig.network:restore()")
r, m, k = quick:run("echo back")
check(r and r.out == "back\n", "after restore, SSH works again", tostring(m))
-- rig:safe() restores an uplink this process cut
rig.network:cut()
rig:safe()
r, m, k = quick:run("echo safe")
check(r and r.out == "safe\n", "rig:safe() restores a cut uplink", tostring(m))

-- development mode (dropbear -B, as the test OS runs it with developmentMode): root's blank
-- password logs in without any key; the production server refuses the same client
local nokey = { host = "127.0.0.1", identity = T .. "/other", known_hosts = T .. "/dev_known_hosts" }
nokey.port = DEV
r, m, k = ssh.new(nil, nokey):run("echo dev")
check(r and r.out == "dev\n", "development mode: passwordless root without an authorized key", tostring(m))
nokey.port = port
r, m, k = ssh.new(nil, nokey):run("echo prod")
check(not r and k == "auth", "production mode: the same login is refused", tostring(m))

-- bad options are programmer errors
check(not pcall(ssh.new, rig, { host_key = "maybe" }), "ssh.new: a bad host_key option raises")
check(not pcall(ssh.new, rig, { colour = 1 }), "ssh.new: an unknown option raises")
check(not pcall(sh.run, sh, ""), "run(): an empty command raises")

os.exit(tc.failed == 0)
