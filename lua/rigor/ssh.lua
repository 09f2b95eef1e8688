-- SPDX-License-Identifier: MIT
-- rigor.ssh: a shell on the DUT over SSH, with the call shape of the console shell
-- (rigor.shell; docs/lua-api.md, "rigor.ssh"). The DUT's address, port and login come
-- from the rig's network role (docs/rig-files.md, "network"); options override them.
--
--   local ssh = require "rigor.ssh"
--   local sh = ssh.new(rig)                         -- or shell.ssh(rig)
--   assert(sh:wait({ timeout_ms = 60000 }))         -- until the DUT's SSH server answers
--   local r = assert(sh:run("uname -r"))           -- { out = "6.1.0-...\n", err = "", rc = 0 }
--
-- Each call runs OpenSSH's client (`ssh`, Debian's openssh-client) as a child process,
-- without a shell on the host side: BatchMode (never a prompt), a known_hosts file per
-- rig in the state directory, ConnectTimeout and ServerAlive so a dead link ends the call,
-- and the call's timeout kills the client. Why the client rather than libssh: the client
-- is what lab users already configure and debug (`ssh -v` reproduces any failure by hand),
-- it needs no new library in rigor's C code, and a process per call keeps a stuck
-- connection from blocking rigor itself. Files go through `cat` on the DUT (no scp or
-- sftp-server needed there) and are checked with sha256sum, as the console shell does.

local core = require "rigor.core"

local M = {}

--- Defaults of ssh.new() options.
M.DEFAULTS = {
	host = nil,            -- the rig's rig.network:address() when nil
	port = nil,
	user = nil,            -- rig.network:login(), else "root"
	identity = nil,
	host_key = "accept-new", -- "accept-new" | "strict" | "ignore"
	known_hosts = nil,     -- <state dir>/<rig name>.known_hosts
	ssh_config = "none",   -- no ~/.ssh/config: the same behaviour for every user
	timeout_ms = 30000,
	connect_timeout_ms = 10000,
	max_out = 16 * 1024 * 1024,
	program = "ssh",
	options = nil,         -- extra { "Name=value", ... } for -o
}

local Ssh = {}
Ssh.__index = Ssh

local function quote(s)
	return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function tail(s, n)
	n = n or 300
	s = s:gsub("\r", ""):gsub("%s+$", "")
	return #s > n and "..." .. s:sub(-n) or s
end

--- An SSH shell on `rig`'s DUT (rig may be nil when opts give host and port).
function M.new(rig, opts)
	local o = {}
	for k, v in pairs(M.DEFAULTS) do o[k] = v end
	for k, v in pairs(opts or {}) do
		if M.DEFAULTS[k] == nil and not ({ host = 1, port = 1, user = 1, identity = 1,
			known_hosts = 1, options = 1 })[k] then
			error("ssh.new: unknown option '" .. tostring(k) .. "'", 2)
		end
		o[k] = v
	end
	if not ({ ["accept-new"] = 1, strict = 1, ignore = 1 })[o.host_key] then
		error("ssh.new: host_key must be \"accept-new\", \"strict\" or \"ignore\", not '" ..
			tostring(o.host_key) .. "'", 2)
	end
	if not o.host and not (rig and rig.network) then
		error("ssh.new: the rig has no network role (add network = ... to its rig file, " ..
			"docs/rig-files.md) and no host option was given", 2)
	end
	if rig and rig.network then
		local user, identity = rig.network:login()
		o.user = o.user or user
		o.identity = o.identity or identity
	end
	o.user = o.user or "root"
	if not o.known_hosts then
		o.known_hosts = core.state_dir() .. "/" ..
			((rig and rig.name or "ssh"):gsub("[^%w%-_.]", "_")) .. ".known_hosts"
	end
	return setmetatable({ rig = rig, o = o }, Ssh)
end

--- The host and port calls go to: the options', else the network role's.
function Ssh:target()
	local o = self.o
	if o.host then return o.host, o.port or 22222 end
	local host, port = self.rig.network:address()
	if not host then return nil, port end
	return host, o.port or port
end

local function argv(self, host, port, cmd)
	local o = self.o
	local known = o.host_key == "ignore" and "/dev/null" or o.known_hosts
	if known ~= "/dev/null" then
		core.mkdir_p((known:gsub("/[^/]*$", "")))
	end
	local a = { o.program, "-F", o.ssh_config, "-T",
		"-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=" .. (({ ["accept-new"] = "accept-new", strict = "yes",
			ignore = "no" })[o.host_key]),
		"-o", "UserKnownHostsFile=" .. known,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "ConnectTimeout=" .. math.max(1, (o.connect_timeout_ms + 999) // 1000),
		"-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3",
		-- INFO, not ERROR: "Timeout, server not responding" (a DUT that vanished under a
		-- command) is an INFO message, and without it that exit 255 would look like the
		-- command's own
		"-o", "LogLevel=INFO",
		"-p", tostring(port), "-l", o.user }
	if o.identity then
		for _, v in ipairs({ "-i", o.identity, "-o", "IdentitiesOnly=yes" }) do a[#a + 1] = v end
	end
	for _, opt in ipairs(o.options or {}) do
		a[#a + 1] = "-o"
		a[#a + 1] = opt
	end
	a[#a + 1] = host
	a[#a + 1] = "--"
	a[#a + 1] = cmd
	return a
end

-- What ssh itself says on stderr when it, not the command, failed (exit status 255).
local SSH_ERRORS = {
	{ "REMOTE HOST IDENTIFICATION HAS CHANGED", "host_key" },
	{ "Host key verification failed", "host_key" },
	{ "Permission denied", "auth" },
	{ "Too many authentication failures", "auth" },
	{ "Connection refused", "unreachable" },
	{ "Connection timed out", "unreachable" },
	{ "No route to host", "unreachable" },
	{ "Network is unreachable", "unreachable" },
	{ "Could not resolve hostname", "unreachable" },
	{ "kex_exchange_identification", "unreachable" },
	{ "Connection reset", "disconnected" },
	{ "closed by remote host", "disconnected" },
	{ "Connection closed by", "disconnected" },
	{ "Broken pipe", "disconnected" },
	{ "Timeout, server", "disconnected" },
	{ "not responding", "disconnected" },
	{ "Load key", "auth" },
	{ "no such identity", "auth" },
}

local function ssh_failure(self, host, port, what, r)
	for _, e in ipairs(SSH_ERRORS) do
		if r.err:find(e[1], 1, true) then
			local kind, why = e[2], tail(r.err)
			local hint = ""
			if kind == "host_key" then
				hint = string.format(" (the DUT's host key is not the one in %s: a reflashed DUT has a new one; " ..
					"call sh:forget_host_key() after flashing, or use host_key = \"ignore\")", self.o.known_hosts)
			elseif kind == "auth" then
				hint = string.format(" (user '%s', key %s: is its public key in the DUT's authorized keys, " ..
					"config.json os.sshKeys on balenaOS and the rigor test OS?)", self.o.user,
					self.o.identity or "the SSH client's own")
			elseif kind == "unreachable" then
				hint = " (is the DUT up, its SSH server running, the uplink not cut?)"
			elseif kind == "disconnected" then
				hint = " (did the DUT reboot or lose its network?)"
			end
			return string.format("ssh %s@%s port %d: %s: %s%s", self.o.user, host, port, what, why, hint), kind
		end
	end
	return nil
end

--- Runs `cmd` on the DUT. Returns { out = stdout, err = stderr, rc = N }, or nil, msg,
--- kind, partial (kind: "timeout", "auth", "host_key", "unreachable", "disconnected",
--- "failed"; partial: { out, err } so far).
function Ssh:run(cmd, opts)
	if type(cmd) ~= "string" or not cmd:find("%S") then
		error("ssh:run: a command (non-empty string) expected", 2)
	end
	opts = opts or {}
	local ms = opts.timeout_ms or self.o.timeout_ms
	local host, port = self:target()
	if not host then return nil, "ssh: no address for the DUT: " .. tostring(port), "unreachable", { out = "", err = "" } end
	local r = core.exec(argv(self, host, port, cmd), { timeout_ms = ms, input = opts.input,
		max_out = opts.max_out or self.o.max_out })
	-- the one INFO line that is not about a failure (accept-new recording the key)
	r.err = r.err:gsub("Warning: Permanently added [^\n]* to the list of known hosts%.\r?\n", "")
	local partial = { out = r.out, err = r.err }
	if r.how == "timeout" then
		return nil, string.format("timeout: '%s' on %s port %d did not finish within %d ms; output so far: %s",
			cmd, host, port, ms, tail(r.out .. r.err)), "timeout", partial
	end
	if r.how == "signal" then
		return nil, string.format("ssh: '%s': the client died of signal %d", cmd, r.code), "failed", partial
	end
	if r.code == 255 then
		local msg, kind = ssh_failure(self, host, port, "'" .. cmd .. "'", r)
		if msg then return nil, msg, kind, partial end
		if r.code == 255 and r.out == "" and r.err:find("^ssh: ") then
			return nil, string.format("ssh %s port %d: %s", host, port, tail(r.err)), "failed", partial
		end
	end
	if r.cut then
		return nil, string.format("the output of '%s' exceeds %d bytes (rc %d)", cmd,
			opts.max_out or self.o.max_out, r.code), "too_long", { out = r.out, err = r.err, rc = r.code }
	end
	return { out = r.out, err = r.err, rc = r.code }
end

--- Waits until the DUT's SSH server runs commands (after a boot), trying every second
--- within opts.timeout_ms (default 60000). Returns true, or nil, msg, kind (the last
--- failure). An authentication or host-key failure ends the wait at once: waiting does
--- not fix it.
function Ssh:wait(opts)
	opts = opts or {}
	local ms = opts.timeout_ms or 60000
	local deadline = core.now_ms() + ms
	local msg, kind
	repeat
		local left = deadline - core.now_ms()
		local r
		r, msg, kind = self:run("true", { timeout_ms = math.max(1000, math.min(left, self.o.connect_timeout_ms + 5000)) })
		if r and r.rc == 0 then return true end
		if kind == "auth" or kind == "host_key" then return nil, msg, kind end
		if core.now_ms() + 1000 < deadline then core.sleep(1000) end
	until core.now_ms() >= deadline
	return nil, string.format("no SSH on the DUT within %d ms; last: %s", ms, tostring(msg)), kind or "timeout"
end

--- Removes the DUT's host key from the rig's known_hosts file (after a reflash the DUT
--- has a new one). Returns true, or nil, msg.
function Ssh:forget_host_key()
	local host, port = self:target()
	if not host then return nil, "ssh: no address for the DUT: " .. tostring(port) end
	local f = io.open(self.o.known_hosts, "r")
	if not f then return true end
	f:close()
	local name = port == 22 and host or string.format("[%s]:%d", host, port)
	local r = core.exec({ "ssh-keygen", "-R", name, "-f", self.o.known_hosts }, { timeout_ms = 10000 })
	if r.how ~= "exit" or r.code ~= 0 then
		return nil, string.format("ssh-keygen -R %s -f %s failed: %s", name, self.o.known_hosts, tail(r.err))
	end
	os.remove(self.o.known_hosts .. ".old")
	return true
end

local function ok_run(self, what, cmd, opts)
	local r, msg, kind = self:run(cmd, opts)
	if not r then return nil, what .. ": " .. msg, kind end
	if r.rc ~= 0 then
		return nil, string.format("%s: '%s' failed (rc %d): %s", what, cmd, r.rc, tail(r.err ~= "" and r.err or r.out)), "failed"
	end
	return r
end

--- Writes `data` to `path` on the DUT (through a temporary file next to it, checked with
--- sha256sum, then renamed). Returns true, or nil, msg, kind.
function Ssh:put(path, data, opts)
	assert(type(path) == "string" and path ~= "", "ssh:put: a path expected")
	assert(type(data) == "string", "ssh:put: data (a string) expected")
	opts = opts or {}
	local what = "put '" .. path .. "'"
	local tmp = quote(path .. ".rigor-part")
	local r, msg, kind = ok_run(self, what, "cat > " .. tmp .. " && sha256sum " .. tmp,
		{ timeout_ms = opts.timeout_ms, input = data })
	if not r then return nil, msg, kind end
	local want, got = require("rigor.shell").sha256(data), r.out:match("^(%x+)")
	if got ~= want then
		self:run("rm -f " .. tmp, opts)
		return nil, string.format("%s: checksum mismatch on the DUT (sha256 %s, sent %s)", what,
			tostring(got), want), "checksum"
	end
	r, msg, kind = ok_run(self, what, "mv -f " .. tmp .. " " .. quote(path), { timeout_ms = opts.timeout_ms })
	if not r then return nil, msg, kind end
	return true
end

--- Reads `path` from the DUT. Returns its contents, or nil, msg, kind.
function Ssh:get(path, opts)
	assert(type(path) == "string" and path ~= "", "ssh:get: a path expected")
	opts = opts or {}
	local r, msg, kind = ok_run(self, "get '" .. path .. "'", "cat " .. quote(path),
		{ timeout_ms = opts.timeout_ms, max_out = opts.max_bytes })
	if not r then return nil, msg, kind end
	return r.out
end

return M
