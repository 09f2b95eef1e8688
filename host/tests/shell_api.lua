-- SPDX-License-Identifier: MIT
-- rigor.shell through the rig's real console (a `socket` console) against the fake DUT
-- host/tests/fake_dut.py, which runs a real shell on a pty and injects kernel noise,
-- slowness, line-end variants and reboots on demand:
--   rigor --rig RIGFILE lua host/tests/shell_api.lua SCENARIO CTL INPUT_LOG TMPDIR
-- SCENARIO: login (test-OS style, at the login prompt), shell (already in a shell),
-- debian (login:/Password:, bash with a coloured prompt and bracketed paste).
-- Prints unnumbered TAP lines without a plan (host/tests/shell.sh adds it).
local core = require "rigor.core"
local shell = require "rigor.shell"

local scenario, CTL, INLOG, TMP = arg[1], arg[2], arg[3], arg[4]
assert(TMP, "usage: shell_api.lua SCENARIO CTL INPUT_LOG TMPDIR")

local tc = dofile("host/tests/tapcheck.lua")()
local check = tc.check
local function show(r, msg, kind, part)
	if r then return string.format("rc=%s out=%q", tostring(r.rc), tostring(r.out):sub(1, 300)) end
	return string.format("nil, %s, %s, out=%q", tostring(msg), tostring(kind),
		part and tostring(part.out):sub(1, 300) or "")
end
local function ctl(text)
	local f = assert(io.open(CTL, "w"))
	f:write(text or "")
	f:close()
end
local function slurp(path)
	local f = io.open(path, "rb")
	if not f then return "" end
	local s = f:read("a")
	f:close()
	return s
end
local function run_ok(sh, cmd, want, name, opts)
	local r, msg, kind, part = sh:run(cmd, opts)
	check(r and r.out == want and r.rc == 0, name, show(r, msg, kind, part))
	return r
end
-- the rig's console log: what really crossed the wire
local LOG = TMP .. "/console-" .. scenario .. ".log"
assert(rig:log_to(LOG))

if scenario == "login" then
	local sh = shell.console(rig)
	ctl("")
	-- a DUT at the login prompt: the first run logs in
	run_ok(sh, "echo $((6*7))", "42", "at the login prompt: run() logs in first and answers")
	-- the test OS starts a shell for any line at its login prompt: wait_prompt's empty line
	check(sh.state == "shell" and slurp(INLOG):sub(1, 1) == "\n", "the login prompt was answered with a line")
	check(slurp(LOG):find("rigor-os login: ", 1, true), "the console did show the login prompt")

	-- exit status, output without a final newline, empty lines, stderr
	local r = sh:run("false")
	check(r and r.rc == 1 and r.out == "", "rc of false is 1", show(r))
	r = sh:run("f() { echo a; echo; echo b; return 3; }; f")
	check(r and r.rc == 3 and r.out == "a\n\nb", "rc 3 and empty lines kept", show(r))
	run_ok(sh, "printf foo", "foo", "output without a final newline")
	run_ok(sh, "echo err >&2", "err", "stderr is part of the output")
	run_ok(sh, "cd /tmp && pwd", "/tmp", "a cd changes the prompt's cwd: still recognised")
	run_ok(sh, "cd " .. shell.quote(TMP) .. " && printf 'x\\ny\\n' | wc -l", "2", "back, pipes work")
	run_ok(sh, "cat <<'EOF'\nline 1\n  line 2\nEOF", "line 1\n  line 2", "a multi-line command with a here-document")

	-- an echoing console: the command line comes back first; only the shell's own markers count
	local t0 = core.now_ms()
	r = sh:run("sleep 1; echo done")
	local el = core.now_ms() - t0
	check(r and r.out == "done" and el >= 1000, "echo: the echoed command line never ends the command",
		show(r) .. " after " .. el .. " ms")
	check(slurp(LOG):find("echo RIG''S" .. sh.last_markers[1]:sub(5), 1, true),
		"the console did echo the command line, markers in their quoted form")

	-- a command that prints marker text: the previous call's markers and the marker prefixes
	local m = sh.last_markers
	r = sh:run(string.format("echo '%s'; echo '%s0'; echo 'RIGE:0 RIGS'; echo two", m[1], m[2]))
	check(r and r.rc == 0 and r.out == m[1] .. "\n" .. m[2] .. "0\nRIGE:0 RIGS\ntwo",
		"output with an earlier call's begin and end markers does not end the command", show(r))
	check(sh.last_markers[1] ~= m[1], "every call has new markers")

	-- kernel messages between lines are stripped; only whole kernel-log lines
	ctl("kmsg_every=2\n")
	local want = {}
	for i = 1, 20 do want[i] = tostring(i) end
	run_ok(sh, "seq 1 20", table.concat(want, "\n"), "kernel lines between output lines are stripped")
	local noise = select(2, slurp(LOG):gsub("fake: kernel noise between lines", ""))
	check(noise >= 8, "the console did carry kernel lines mid-output (" .. noise .. ")")
	run_ok(sh, "printf '[x] not a kernel line\\n[   1.5]no space\\n'", "[x] not a kernel line\n[   1.5]no space",
		"lines that only look a bit like kernel lines are kept")
	-- a kernel line that starts mid-line is not a whole line: it stays in the output
	ctl("kmsg_after=MIDWORD\n")
	r = sh:run('echo "MID""WORD tail"; echo next')
	check(r and r.out:find("^MIDWORD%[%s*%d+%.%d+%] fake: a kernel line in the middle of a line\n tail\nnext$"),
		"a kernel message in the middle of a line is kept (documented)", show(r))
	-- keep_kmsg: dmesg-like output is the command's own
	ctl("")
	r = sh:run("printf '[    0.000000] Linux version 6.1\\n[    1.000000] usb 1-1: new device\\n'",
		{ keep_kmsg = true })
	check(r and r.rc == 0 and r.out == "[    0.000000] Linux version 6.1\n[    1.000000] usb 1-1: new device",
		"keep_kmsg = true keeps kernel-log lines and does not take them for a reboot", show(r))

	-- CR/LF variants on the wire
	for _, eol in ipairs { "lf", "crcrlf", "lfcr" } do
		ctl("eol=" .. eol .. "\n")
		run_ok(sh, "printf 'a\\nb\\n\\nc\\n'", "a\nb\n\nc", "line ends " .. eol)
	end
	ctl("")
	-- terminal control sequences
	run_ok(sh, "printf '\\033[1;31mred\\033[0m plain\\033]0;title\\007\\033(B!\\n'", "red plain!",
		"colours, a window title and charset selection are stripped")
	r = sh:run("printf '\\033[1;31mred\\033[0m\\n'", { keep_ansi = true })
	check(r and r.out == "\27[1;31mred\27[0m", "keep_ansi = true keeps them", show(r))
	check(slurp(LOG):find("\27[6n", 1, true), "the shell did send a control sequence after its prompt (ESC[6n)")

	-- a slow console: every byte alone, 2 ms apart
	ctl("slow_ms=2\n")
	t0 = core.now_ms()
	run_ok(sh, "echo slow; echo ly", "slow\nly", "a console that delivers byte by byte")
	check(core.now_ms() - t0 > 100, "it was slow (" .. (core.now_ms() - t0) .. " ms)")
	ctl("slow_ms=1\nkmsg_every=1\n")
	run_ok(sh, "seq 1 5", "1\n2\n3\n4\n5", "byte by byte with kernel lines between every line")
	ctl("")

	-- very long output: up to max_out (1 MiB by default) returned whole, beyond it an error
	r = sh:run("seq 1 100000", { timeout_ms = 30000 })
	local n, last = 0, nil
	if r then for l in r.out:gmatch("[^\n]+") do n = n + 1; last = l end end
	check(r and r.rc == 0 and n == 100000 and last == "100000" and #r.out == 588894,
		"588894 bytes of output arrive whole", r and (n .. " lines, " .. #r.out .. " bytes") or show(r))
	local msg, kind, part
	r, msg, kind, part = sh:run("seq 1 100000", { max_out = 100000, timeout_ms = 30000 })
	check(not r and kind == "too_long" and msg:find("exceeds 100000 bytes") and part.rc == 0
		and #part.out <= 100000 and part.out:find("^1\n2\n"),
		"beyond max_out: nil, 'exceeds N bytes', the head and the rc", show(r, msg, kind, part))
	run_ok(sh, "echo in-sync", "in-sync", "after a too-long output the next command is in step")

	-- syntax errors and unbalanced quotes are reported, not waited for
	r, msg, kind = sh:run("if then fi", { timeout_ms = 5000 })
	check(not r and kind == "not_run" and msg:find("syntax error"), "a syntax error: not_run", show(r, msg, kind))
	t0 = core.now_ms()
	r, msg, kind = sh:run("echo 'unbalanced", { timeout_ms = 5000 })
	check(not r and kind == "not_run" and core.now_ms() - t0 < 3000, "an unbalanced quote: not_run at once",
		show(r, msg, kind))
	run_ok(sh, "echo fine", "fine", "the shell is usable afterwards")

	-- timeout: the output so far, the command interrupted, the next one runs
	t0 = core.now_ms()
	r, msg, kind, part = sh:run("echo started; tail -f /dev/null", { timeout_ms = 800 })
	el = core.now_ms() - t0
	check(not r and kind == "timeout" and msg:find("did not finish within 800 ms; output so far: started", 1, true)
		and part.out == "started" and el < 1500, "timeout: nil, message with the output so far",
		show(r, msg, kind, part) .. " after " .. el .. " ms")
	t0 = core.now_ms()
	run_ok(sh, "echo recovered", "recovered", "after a timeout the command was interrupted (Ctrl-C)")
	check(core.now_ms() - t0 < 3000, "and the next command did not wait for it")

	-- a reboot mid-command: kernel restart and boot log, then the login prompt
	ctl("reboot_on=sleep 7\n")
	t0 = core.now_ms()
	r, msg, kind, part = sh:run("echo before; sleep 7", { timeout_ms = 6000 })
	el = core.now_ms() - t0
	check(not r and kind == "rebooted" and msg:find("the DUT rebooted while running 'echo before; sleep 7'", 1, true)
		and part.out == "before" and el < 3000, "reboot mid-command is reported at once",
		show(r, msg, kind, part) .. " after " .. el .. " ms")
	ctl("")
	run_ok(sh, "echo back", "back", "after the reboot the next run logs in again")
	-- a reboot that shows only the login prompt (no kernel lines)
	ctl("reboot_on=sleep 8\nreboot_quiet=1\n")
	r, msg, kind = sh:run("sleep 8", { timeout_ms = 6000 })
	check(not r and kind == "rebooted" and msg:find("login:", 1, true), "a quiet reboot: the login prompt tells",
		show(r, msg, kind))
	ctl("")
	-- a reboot while the console is slow
	ctl("reboot_on=sleep 9\nslow_ms=1\n")
	r, msg, kind = sh:run("sleep 9", { timeout_ms = 8000 })
	check(not r and kind == "rebooted", "a reboot on a byte-by-byte console", show(r, msg, kind))
	ctl("")

	-- no shell: a board that answers nothing
	run_ok(sh, "echo alive", "alive", "logged in again")
	ctl("mute=1\n")
	t0 = core.now_ms()
	r, msg, kind = sh:run("echo hello", { timeout_ms = 1000 })
	check(not r and kind == "no_shell" and msg:find("no shell", 1, true), "a silent console: no_shell",
		show(r, msg, kind))
	local sh2 = shell.console(rig, { login_timeout_ms = 1500 })
	r, msg, kind = sh2:wait_prompt()
	check(not r and kind == "no_shell" and msg:find("no shell prompt or login prompt within 1500 ms", 1, true),
		"wait_prompt on a silent console: no_shell", show(r, msg, kind))
	ctl("")
	check(sh:wait_prompt(), "wait_prompt once the board answers again")

	-- files
	local bytes = {}
	for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
	local data = table.concat(bytes):rep(23) .. "tail"     -- 5892 bytes: three chunks
	local path = TMP .. "/put dir's file.bin"
	local ok, pm = sh:put(path, data)
	check(ok == true, "put: 5892 bytes with every byte value", pm)
	check(slurp(path) == data, "put: the file on the DUT is byte for byte the same")
	local got, gm = sh:get(path)
	check(got == data, "get: the same bytes come back", gm)
	ok, pm = sh:put(TMP .. "/empty", "")
	check(ok == true and slurp(TMP .. "/empty") == "" and sh:get(TMP .. "/empty") == "", "put/get of an empty file", pm)
	ctl("kmsg_every=3\n")
	got, gm = sh:get(path)
	check(got == data, "get with kernel lines between the base64 lines", gm)
	ok, pm = sh:put(TMP .. "/noisy", data)
	check(ok == true and slurp(TMP .. "/noisy") == data, "put with kernel noise", pm)
	-- a kernel line in the middle of a base64 line garbles the first transfer: the checksum
	-- catches it and the second try succeeds
	local z = shell.base64_decode(("ZZZZ"):rep(40))
	assert(sh:put(TMP .. "/z", z))
	ctl("kmsg_after=ZZZZZZZZ\n")
	got, gm = sh:get(TMP .. "/z")
	check(got == z, "get: a garbled transfer is detected and retried", gm)
	check(slurp(LOG):find("ZZZZZZZZ%[%s*%d+%.%d+%] fake: a kernel line in the middle"), "the first transfer was garbled")
	ctl("slow_ms=1\n")
	ok, pm = sh:put(TMP .. "/slow", "slow bytes\n\0\1\2")
	check(ok == true and sh:get(TMP .. "/slow") == "slow bytes\n\0\1\2", "put/get on a byte-by-byte console", pm)
	ctl("")
	ok, pm, kind = sh:put(TMP .. "/big", ("x"):rep(2000), { max_bytes = 1000 })
	check(not ok and kind == "too_long" and pm:find("2000 bytes, more than the limit of 1000", 1, true)
		and slurp(TMP .. "/big") == "", "put over the limit is refused before sending", pm)
	got, gm, kind = sh:get(path, { max_bytes = 1000 })
	check(not got and kind == "too_long" and gm:find("5892 bytes, more than the limit of 1000", 1, true),
		"get over the limit is refused before reading", gm)
	got, gm, kind = sh:get(TMP .. "/no-such-file")
	check(not got and kind == "failed" and gm:find("No such file", 1, true) or gm:find("can't open", 1, true),
		"get of a missing file fails with the shell's message", gm)
	ok, pm, kind = sh:put(TMP .. "/no-such-dir/f", "x")
	check(not ok and kind == "failed", "put into a missing directory fails", pm)

	-- rigor.testos keeps its signatures on top of rigor.shell
	local testos = require "rigor.testos"
	check(testos.sh(rig, "echo $((6*7))") == "42", "testos.sh returns the output")
	check(testos.sh(rig, "false; echo RC=$?", 5000) == "RC=1", "testos.sh with a timeout (hup.lua's sh_rc form)")
	ctl("kmsg_every=1\n")
	check(testos.sh(rig, "seq 1 3") == "1\n2\n3", "testos.sh strips kernel lines")
	ctl("")
	assert(rig.console:sendline("exit"))
	check(rig.console:expect(testos.LOGIN, 5000, true), "back at the login prompt")
	testos.login(rig)
	check(testos.sh(rig, "echo logged-in") == "logged-in", "testos.login at the login prompt, then testos.sh")
elseif scenario == "shell" then
	-- a DUT already in a shell: no login
	local sh = shell.console(rig)
	run_ok(sh, "echo hi", "hi", "already in a shell: run() answers")
	check(sh.logins == 0 and not slurp(INLOG):find("root", 1, true), "no user name was typed",
		"logins " .. sh.logins)
	check(sh:wait_prompt() == true, "wait_prompt at a shell prompt")
elseif scenario == "debian" then
	local DEB = { login_prompt = "debian login:", password_prompt = "Password:", prompt = "root@debian:[^\n]*#" }
	local function opts(extra)
		local o = {}
		for k, v in pairs(DEB) do o[k] = v end
		for k, v in pairs(extra or {}) do o[k] = v end
		return o
	end
	local r, msg, kind = shell.console(rig, opts()):run("echo x")
	check(not r and kind == "login" and msg:find("asks for a password and opts.password is not set", 1, true),
		"a password prompt without opts.password", show(r, msg, kind))
	r, msg, kind = shell.console(rig, opts { password = "wrong" }):run("echo x")
	check(not r and kind == "login" and msg:find("Login incorrect", 1, true), "a wrong password", show(r, msg, kind))
	local sh = shell.console(rig, opts { password = "secret" })
	run_ok(sh, "echo $((6*7))", "42", "login:/Password: and a bash prompt with colours")
	check(sh.logins == 1, "logged in once")
	check(slurp(LOG):find("\27[?2004h", 1, true), "bash did use bracketed paste (ESC[?2004h)")
	check(not slurp(INLOG):find("secret\nsecret", 1, true), "the password was typed once")
	run_ok(sh, "cd ~ && echo $?", "0", "the prompt with ~ as cwd")
	local r2 = sh:run("f() { return 7; }; f")
	check(r2 and r2.rc == 7, "rc under bash", show(r2))
	local data = "debian\0bytes\255"
	check(sh:put(TMP .. "/deb", data) == true and sh:get(TMP .. "/deb") == data, "put/get with coreutils")
else
	error("unknown scenario " .. tostring(scenario))
end

rig:log_to(nil)
os.exit(tc.status())
