-- SPDX-License-Identifier: MIT
-- rigor.shell: a shell on the DUT over the rig's serial console (docs/lua-api.md,
-- "rigor.shell"). Logs in when the console is at the login prompt, runs commands and
-- returns their output and exit status, and moves files both ways with base64 and a
-- SHA-256 check.
--
--   local shell = require "rigor.shell"
--   local sh = shell.console(rig)                  -- the test OS's defaults
--   local r = assert(sh:run("uname -r"))           -- { out = "6.1.0-...", rc = 0 }
--
-- How a command is framed: the line sent is
--   echo RIG''S<nonce>; { <cmd>
--   } </dev/null; echo RIG''E<nonce>:$?
-- The shell removes the quotes, so only what the shell prints has "RIGS<nonce>" and
-- "RIGE<nonce>:<status>"; the echoed command line never matches, and the nonce is new and
-- random for every call, so output that contains an earlier call's markers does not
-- either. The brace group makes the shell read the whole command before it runs any of
-- it, so all the echo comes before the begin marker.

local core = require "rigor.core"

local M = {}

--- Defaults of shell.console() options (the rigor test OS; docs/os-image.md).
M.DEFAULTS = {
	user = "root",
	password = nil,
	login_prompt = "[%w%-%.]+ login:",
	password_prompt = "[Pp]assword:",
	prompt = "root@[%w%-%.]+:[^\n]*#",
	-- a whole console line matching one of these while a command runs means the DUT
	-- restarted (the kernel log starting again at 0.000000, the kernel's restart lines)
	boot_patterns = { "^%[%s*0%.000000%] ", "reboot: Restarting system", "reboot: Power down" },
	timeout_ms = 10000,
	login_timeout_ms = 10000,
	max_out = 1024 * 1024,
	max_transfer = 1024 * 1024,
	settle_ms = 300,
}

-- put() sends this many bytes per command: 2736 base64 characters in 36 lines, so a
-- chunk with its framing stays under the 4 KiB a tty buffers for a shell that has not
-- read it yet.
local PUT_CHUNK = 2052

local Shell = {}
Shell.__index = Shell

-- ---- text helpers ----

-- Terminal control sequences: OSC (ESC ] ... BEL or ESC \), CSI (ESC [ params final),
-- charset selection (ESC ( B), and two-byte escapes (ESC 7, ESC =, ESC M ...).
local function strip_ansi(s)
	if not s:find("\27", 1, true) and not s:find("\7", 1, true) then return s end
	s = s:gsub("\27%][^\7\27]*\7", ""):gsub("\27%][^\7\27]*\27\\", "")
	s = s:gsub("\27%[[0-?]*[ -/]*[@-~]", ""):gsub("\27[%(%)][%w]", "")
	s = s:gsub("\27[%d=>@-Z\\%^_`a-z{|}~]", ""):gsub("\7", "")
	return s
end

-- A complete console line (without its "\n"): line-end CRs on either side removed
-- ("\r\n", "\r\r\n", "\n\r"), control sequences removed unless keep_ansi.
local function clean_line(line, keep_ansi)
	if not keep_ansi then line = strip_ansi(line) end
	return (line:gsub("^\r+", ""):gsub("\r+$", ""))
end

-- The line being written (no "\n" yet) as a terminal shows it: what follows the last CR.
local function screen_tail(partial)
	local s = strip_ansi(partial)
	local after = s:match("\r([^\r]*)$")
	if after and after ~= "" then s = after end
	return (s:gsub("%s+$", ""))
end

-- A kernel-log line as printk writes it with CONFIG_PRINTK_TIME: "[" seconds padded to
-- five columns, ".", six digits of microseconds, "] ", text.
local function is_kmsg(line)
	return line:find("^%[%s*%d+%.%d%d%d%d%d%d%] ") ~= nil
end

local function tail(s, n)
	n = n or 200
	s = s:gsub("\r", "")
	return #s > n and "..." .. s:sub(-n) or s
end

local function shell_quote(s)
	return "'" .. s:gsub("'", "'\\''") .. "'"
end
M.quote = shell_quote

-- ---- base64 and SHA-256 (the DUT checks with its own base64 and sha256sum) ----

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local B64_DEC = {}
for i = 1, 64 do B64_DEC[B64:byte(i)] = i - 1 end

local function b64_encode(data)
	local out, n = {}, 0
	for i = 1, #data, 3 do
		local a, b, c = data:byte(i, i + 2)
		local v = (a << 16) | ((b or 0) << 8) | (c or 0)
		local e1, e2, e3, e4 = (v >> 18) & 63, (v >> 12) & 63, (v >> 6) & 63, v & 63
		n = n + 1
		out[n] = B64:sub(e1 + 1, e1 + 1) .. B64:sub(e2 + 1, e2 + 1) ..
			(b and B64:sub(e3 + 1, e3 + 1) or "=") .. (c and B64:sub(e4 + 1, e4 + 1) or "=")
	end
	return table.concat(out)
end

-- nil for text that is not base64
local function b64_decode(text)
	text = text:gsub("%s", "")
	if #text % 4 ~= 0 then return nil end
	local out, n = {}, 0
	for i = 1, #text, 4 do
		local c1, c2, c3, c4 = text:byte(i, i + 3)
		local a, b = B64_DEC[c1], B64_DEC[c2]
		local c, d = B64_DEC[c3], B64_DEC[c4]
		if not a or not b then return nil end
		n = n + 1
		if c4 == 61 then                          -- '='
			if c3 == 61 then
				if i + 3 ~= #text then return nil end
				out[n] = string.char(((a << 2) | (b >> 4)) & 255)
			else
				if not c or i + 3 ~= #text then return nil end
				local v = (a << 10) | (b << 4) | (c >> 2)
				out[n] = string.char((v >> 8) & 255, v & 255)
			end
		else
			if not c or not d then return nil end
			local v = (a << 18) | (b << 12) | (c << 6) | d
			out[n] = string.char((v >> 16) & 255, (v >> 8) & 255, v & 255)
		end
	end
	return table.concat(out)
end

local K256 = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}

--- SHA-256 of `data` as 64 lower-case hex digits (pure Lua, about 1 MiB a second).
function M.sha256(data)
	local M32 = 0xffffffff
	local function rotr(x, n) return ((x >> n) | (x << (32 - n))) & M32 end
	local len = #data
	data = data .. "\128" .. string.rep("\0", (55 - len) % 64) .. string.pack(">I8", len * 8)
	local h0, h1, h2, h3 = 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a
	local h4, h5, h6, h7 = 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
	local w = {}
	for blk = 1, #data, 64 do
		for i = 1, 16 do w[i] = string.unpack(">I4", data, blk + (i - 1) * 4) end
		for i = 17, 64 do
			local a, b = w[i - 15], w[i - 2]
			local s0 = rotr(a, 7) ~ rotr(a, 18) ~ (a >> 3)
			local s1 = rotr(b, 17) ~ rotr(b, 19) ~ (b >> 10)
			w[i] = (w[i - 16] + s0 + w[i - 7] + s1) & M32
		end
		local a, b, c, d, e, f, g, h = h0, h1, h2, h3, h4, h5, h6, h7
		for i = 1, 64 do
			local S1 = rotr(e, 6) ~ rotr(e, 11) ~ rotr(e, 25)
			local ch = (e & f) ~ (~e & g)
			local t1 = (h + S1 + ch + K256[i] + w[i]) & M32
			local S0 = rotr(a, 2) ~ rotr(a, 13) ~ rotr(a, 22)
			local maj = (a & b) ~ (a & c) ~ (b & c)
			local t2 = (S0 + maj) & M32
			h, g, f, e, d, c, b, a = g, f, e, (d + t1) & M32, c, b, a, (t1 + t2) & M32
		end
		h0, h1, h2, h3 = (h0 + a) & M32, (h1 + b) & M32, (h2 + c) & M32, (h3 + d) & M32
		h4, h5, h6, h7 = (h4 + e) & M32, (h5 + f) & M32, (h6 + g) & M32, (h7 + h) & M32
	end
	return string.format("%08x%08x%08x%08x%08x%08x%08x%08x", h0, h1, h2, h3, h4, h5, h6, h7)
end

M.base64_encode, M.base64_decode = b64_encode, b64_decode

-- ---- the console shell ----

--- A shell on `rig`'s console. `opts` overrides M.DEFAULTS (see docs/lua-api.md).
function M.console(rig, opts)
	assert(type(rig) == "table" or type(rig) == "userdata", "shell.console: rig expected")
	assert(rig.console, "shell.console: the rig has no console")
	local o = {}
	for k, v in pairs(M.DEFAULTS) do o[k] = v end
	for k, v in pairs(opts or {}) do
		if M.DEFAULTS[k] == nil and k ~= "password" then
			error("shell.console: unknown option '" .. tostring(k) .. "'", 2)
		end
		o[k] = v
	end
	return setmetatable({ rig = rig, console = rig.console, o = o, state = "unknown",
		n = 0, logins = 0 }, Shell)
end

--- A shell on `rig`'s DUT over SSH, with the same run/put/get calls (rigor.ssh; the
--- address comes from the rig's network role).
function M.ssh(rig, opts)
	return require("rigor.ssh").new(rig, opts)
end

-- Reads the console until a callback returns a non-nil value or `deadline` passes.
-- `on_line(line, cut)` gets each complete, cleaned line (`cut`: the head of a line longer
-- than `max_partial`); `on_tail(partial, quiet_ms)` gets the line being written after every
-- chunk and every 100 ms of quiet. A callback stops the pump by returning a value (false,
-- msg, kind for a failure); pump returns what it returned, or nil on timeout. What was read
-- after the stopping line is left in self.rest. `initial`: text already read (a previous
-- pump's rest), handled first.
local function pump(self, deadline, on_line, on_tail, keep_ansi, max_partial, initial)
	local partial, last = "", core.now_ms()
	local data = initial ~= "" and initial or nil
	while true do
		local left = deadline - core.now_ms()
		if left <= 0 then
			self.rest = partial
			return nil
		end
		if not data then data = self.console:read(math.min(left, 100)) end
		if data then
			last = core.now_ms()
			partial = partial .. data
			local start = 1
			while true do
				local nl = partial:find("\n", start, true)
				if not nl then break end
				local line = partial:sub(start, nl - 1)
				start = nl + 1
				local r1, r2, r3 = on_line(clean_line(line, keep_ansi))
				if r1 ~= nil then
					self.rest = partial:sub(start)
					return r1, r2, r3
				end
			end
			partial = partial:sub(start)
			if max_partial and #partial > max_partial then
				-- a line longer than the output limit: its head goes on as a line, the
				-- last bytes stay (they may be the start of the end marker)
				local r1, r2, r3 = on_line(clean_line(partial:sub(1, -65), keep_ansi), true)
				partial = partial:sub(-64)
				if r1 ~= nil then
					self.rest = partial
					return r1, r2, r3
				end
			end
		end
		data = nil
		local r1, r2, r3 = on_tail(partial, core.now_ms() - last)
		if r1 ~= nil then
			self.rest = partial
			return r1, r2, r3
		end
	end
end

local function matches_end(s, pat)
	return pat and s:find(pat .. (pat:sub(-1) == "$" and "" or "$")) ~= nil
end

function Shell:_boot_line(line)
	for _, p in ipairs(self.o.boot_patterns) do
		if line:find(p) then return true end
	end
	return false
end

-- Waits for the shell prompt after a login or a typed line. Returns true, or nil, msg, kind.
function Shell:_after_login(deadline)
	local o = self.o
	local sent_password, last_line = false, ""
	return pump(self, deadline, function(line)
		if line ~= "" then last_line = line end
		if line:find("[Ll]ogin incorrect") then
			self.state = "unknown"
			return false, "login failed: the DUT says '" .. line .. "'", "login"
		end
	end, function(partial)
		local tl = screen_tail(partial)
		if matches_end(tl, o.prompt) then
			self.state, self.logins = "shell", self.logins + 1
			return true
		end
		if matches_end(tl, o.password_prompt) and not sent_password then
			if not o.password then
				self.state = "unknown"
				return false, "login failed: the DUT asks for a password and opts.password is not set", "login"
			end
			sent_password = true
			self.console:clear()
			assert(self.console:sendline(o.password))
		elseif sent_password and matches_end(tl, o.login_prompt) then
			self.state = "unknown"
			return false, "login failed: back at the login prompt after the password (" .. last_line .. ")", "login"
		end
	end)
end

--- Logs in at the login prompt (the caller has seen it, or the console shows it): sends
--- the user name, the password when asked, and waits for the shell prompt.
--- Returns true, or nil, msg, kind.
function Shell:login(opts)
	opts = opts or {}
	local ms = opts.timeout_ms or self.o.login_timeout_ms
	self.console:clear()
	assert(self.console:sendline(self.o.user))
	local ok, msg, kind = self:_after_login(core.now_ms() + ms)
	if ok then return true end
	self.state = "unknown"
	if ok == nil then
		msg, kind = string.format("login failed: no shell prompt within %d ms; last output: %s",
			ms, tail(self.rest or "")), "login"
	end
	return nil, msg, kind
end

--- Gets the console to a shell prompt from any state: types an empty line and waits for
--- the shell prompt, or for the login prompt and then logs in. Returns true, or nil, msg, kind.
function Shell:wait_prompt(opts)
	opts = opts or {}
	local o = self.o
	local ms = opts.timeout_ms or o.login_timeout_ms
	local deadline = core.now_ms() + ms
	local seen, pokes = "", 1
	self.console:clear()
	assert(self.console:send("\n"))
	local r = pump(self, deadline, function(line)
		seen = (seen .. line .. "\n"):sub(-400)
	end, function(partial, quiet)
		local tl = screen_tail(partial)
		if matches_end(tl, o.prompt) then self.state = "shell"; return true end
		if quiet >= o.settle_ms and matches_end(tl, o.login_prompt) then return "login" end
		if matches_end(tl, o.password_prompt) then
			-- a login half done: an empty password ends it at the login prompt
			self.console:clear()
			assert(self.console:send("\n"))
		elseif quiet >= 2000 * pokes then
			-- a board still booting may have eaten the first line
			pokes = pokes + 1
			assert(self.console:send("\n"))
		end
	end)
	if r == "login" then
		local left = math.max(deadline - core.now_ms(), 1000)
		return self:login({ timeout_ms = left })
	end
	if r then return true end
	self.state = "unknown"
	return nil, string.format("no shell on the console: no shell prompt or login prompt within %d ms; last output: %s",
		ms, tail(seen .. (self.rest or ""))), "no_shell"
end

local function new_nonce(self)
	self.n = self.n + 1
	return string.format("%08x%04x", math.random(0, 0xffffffff), self.n & 0xffff)
end

--- Runs `cmd` in the DUT's shell. Returns { out = "...", rc = N } or nil, msg, kind, partial.
function Shell:run(cmd, opts)
	if type(cmd) ~= "string" or not cmd:find("%S") then
		error("shell:run: a command (non-empty string) expected", 2)
	end
	opts = opts or {}
	local o = self.o
	local ms = opts.timeout_ms or o.timeout_ms
	local max_out = opts.max_out or o.max_out
	local keep_kmsg, keep_ansi = opts.keep_kmsg, opts.keep_ansi
	local t0 = core.now_ms()
	local deadline = t0 + ms
	if self.state ~= "shell" then
		local ok, msg, kind = self:wait_prompt({ timeout_ms = math.min(ms, o.login_timeout_ms) })
		if not ok then return nil, msg, kind, { out = "" } end
		deadline = core.now_ms() + ms
	end
	local nonce = new_nonce(self)
	local begin_m, end_m = "RIGS" .. nonce, "RIGE" .. nonce .. ":"
	self.console:clear()
	assert(self.console:send(string.format("echo RIG''S%s; { %s\n} </dev/null; echo RIG''E%s:$?\n",
		nonce, cmd, nonce)))
	self.last_markers = { begin_m, end_m }
	local phase, lines, size, too_long, got_lines = "echo", {}, 0, false, 0
	local before = {}    -- the last lines before the begin marker (a syntax error's message)
	local evidence
	local function rebooted(line)
		evidence = line
		return "reboot"
	end
	local r, rc = pump(self, deadline, function(line, cut)
		got_lines = got_lines + 1
		if phase == "echo" then
			if not cut and line:sub(-#begin_m) == begin_m then phase = "out"; return end
			if not keep_kmsg and self:_boot_line(line) then return rebooted(line) end
			if not is_kmsg(line) then before[#before % 2 + 1] = line end
			return
		end
		local head, status = line:match("^(.-)" .. end_m .. "(%d+)$")
		if status then
			if head ~= "" and not too_long then lines[#lines + 1] = head end
			return "done", tonumber(status)
		end
		if not keep_kmsg then
			if self:_boot_line(line) then return rebooted(line) end
			if is_kmsg(line) then return end
		end
		if too_long then return end
		size = size + #line + 1
		if size > max_out + 1 then too_long = true; return end
		lines[#lines + 1] = line
	end, function(partial, quiet)
		if quiet < o.settle_ms then return end
		local tl = screen_tail(partial)
		if matches_end(tl, o.login_prompt) then return rebooted(tl) end
		if got_lines > 0 and matches_end(tl, o.prompt) then return phase == "echo" and "not_run" or "abandoned" end
		if phase == "echo" and got_lines > 1 and tl:find("^>$") then return "incomplete" end
	end, keep_ansi, max_out + 4096)
	local out = table.concat(lines, "\n")
	if r == "done" then
		-- the prompt that follows: the shell is still there
		local ok = pump(self, core.now_ms() + math.max(deadline - core.now_ms(), 1000),
			function() end, function(partial)
				if matches_end(screen_tail(partial), o.prompt) then return true end
			end, nil, nil, self.rest)
		self.state = ok and "shell" or "unknown"
		if too_long then
			return nil, string.format("the output of '%s' exceeds %d bytes (rc %d)", cmd, max_out, rc),
				"too_long", { out = out, rc = rc }
		end
		return { out = out, rc = rc }
	end
	self.state = "unknown"
	if r == "reboot" then
		out = out:gsub("\n+$", "")
		return nil, string.format("the DUT rebooted while running '%s' (console: %s)", cmd, evidence),
			"rebooted", { out = out }
	end
	if r == "incomplete" then
		pcall(self.console.send, self.console, "\3")
		return nil, string.format("the shell did not run '%s': it waits for more input (an unbalanced quote?)", cmd),
			"not_run", { out = out }
	end
	if r == "abandoned" then
		self.state = "shell"
		return nil, string.format("the shell abandoned '%s' before its end (an error in a special built-in?): %s",
			cmd, tail(out)), "not_run", { out = out }
	end
	if r == "not_run" then
		return nil, string.format("the shell did not run '%s' (a syntax error?): %s", cmd,
			tail(table.concat(before, " / "))), "not_run", { out = out }
	end
	-- timeout: interrupt the command so the next call finds a prompt
	pcall(self.console.send, self.console, "\3")
	if got_lines == 0 and phase == "echo" then
		return nil, string.format("no shell on the console: '%s' got no answer within %d ms", cmd, ms),
			"no_shell", { out = out }
	end
	return nil, string.format("timeout: '%s' did not finish within %d ms; output so far: %s", cmd, ms,
		phase == "out" and tail(out) or "(it did not start)"), "timeout", { out = out }
end

-- ---- files ----

local function ok_run(self, what, cmd, opts)
	local r, msg, kind = self:run(cmd, opts)
	if not r then return nil, what .. ": " .. msg, kind end
	if r.rc ~= 0 then
		return nil, string.format("%s: '%s' failed (rc %d): %s", what, cmd, r.rc, tail(r.out)), "failed"
	end
	return r
end

--- Writes `data` to `path` on the DUT. Returns true, or nil, msg, kind.
function Shell:put(path, data, opts)
	assert(type(path) == "string" and path ~= "", "shell:put: a path expected")
	assert(type(data) == "string", "shell:put: data (a string) expected")
	opts = opts or {}
	local max = opts.max_bytes or self.o.max_transfer
	local what = "put '" .. path .. "'"
	if #data > max then
		return nil, string.format("%s: %d bytes, more than the limit of %d", what, #data, max), "too_long"
	end
	local tmp = shell_quote(path .. ".rigor-part")
	local ropts = { timeout_ms = opts.timeout_ms }
	local r, msg, kind = ok_run(self, what, "true > " .. tmp, ropts)
	if not r then return nil, msg, kind end
	for i = 1, #data, PUT_CHUNK do
		local b64 = b64_encode(data:sub(i, i + PUT_CHUNK - 1)):gsub(("."):rep(76), "%0\n"):gsub("\n$", "")
		r, msg, kind = ok_run(self, what, "base64 -d >> " .. tmp .. " <<'__RIGOR_EOF__'\n" .. b64 ..
			"\n__RIGOR_EOF__", ropts)
		if not r then return nil, msg, kind end
	end
	r, msg, kind = ok_run(self, what, "sha256sum " .. tmp, ropts)
	if not r then return nil, msg, kind end
	local want, got = M.sha256(data), r.out:match("(%x+)")
	if got ~= want then
		self:run("rm -f " .. tmp, ropts)
		return nil, string.format("%s: checksum mismatch on the DUT (sha256 %s, sent %s)", what,
			tostring(got), want), "checksum"
	end
	r, msg, kind = ok_run(self, what, "mv -f " .. tmp .. " " .. shell_quote(path), ropts)
	if not r then return nil, msg, kind end
	return true
end

--- Reads `path` from the DUT. Returns its contents, or nil, msg, kind.
function Shell:get(path, opts)
	assert(type(path) == "string" and path ~= "", "shell:get: a path expected")
	opts = opts or {}
	local max = opts.max_bytes or self.o.max_transfer
	local what = "get '" .. path .. "'"
	local q = shell_quote(path)
	local r, msg, kind = ok_run(self, what, "wc -c < " .. q .. " && sha256sum < " .. q,
		{ timeout_ms = opts.timeout_ms })
	if not r then return nil, msg, kind end
	local size, sum = r.out:match("^%s*(%d+)%s*\n(%x+)")
	size = tonumber(size)
	if not size then return nil, what .. ": cannot read its size and checksum: " .. tail(r.out), "failed" end
	if size > max then
		return nil, string.format("%s: %d bytes, more than the limit of %d", what, size, max), "too_long"
	end
	local b64_len = (size + 2) // 3 * 4
	-- room for the line breaks and for kernel lines landing mid-line (the checksum catches those)
	local ropts = { timeout_ms = opts.timeout_ms or (self.o.timeout_ms + size // 4), -- 4 KB/s at worst
		max_out = b64_len * 2 + 4096 }
	local data
	for _ = 1, 2 do    -- a second try when the first was garbled (a kernel line mid-line)
		r, msg, kind = ok_run(self, what, "base64 " .. q, ropts)
		if not r then return nil, msg, kind end
		data = b64_decode(r.out)
		if data and #data == size and M.sha256(data) == sum then return data end
	end
	return nil, string.format("%s: checksum mismatch (the DUT's sha256 %s, received %s)", what, sum,
		data and M.sha256(data) or "text that is not base64"), "checksum"
end

return M
