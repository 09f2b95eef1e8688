-- SPDX-License-Identifier: MIT
-- Helpers for rigor's own Lua tests: a tiny TAP producer and a way to run the runner on
-- testcase sources written to a temporary directory.

local core = require "fake_core" -- the real rigor.core when available
local fake_rig = require "fake_rig"

local H = { core = core }

local n, failed = 0, 0

--- Emits one TAP test point. `diag` (string) is shown as comments when not ok.
function H.ok(cond, name, diag)
	n = n + 1
	if cond then
		print(string.format("ok %d - %s", n, name))
	else
		failed = failed + 1
		print(string.format("not ok %d - %s", n, name))
		if diag then
			print("# " .. tostring(diag):gsub("\n", "\n# "))
		end
	end
	return cond
end

function H.eq(actual, expected, name)
	local ok = actual == expected
	return H.ok(ok, name, not ok and string.format("expected: %s\n  actual: %s",
		tostring(expected), tostring(actual)) or nil)
end

--- Checks that `s` contains every plain string in `list`.
function H.has(s, list, name)
	s = tostring(s)
	for _, want in ipairs(type(list) == "table" and list or { list }) do
		if not s:find(want, 1, true) then
			return H.ok(false, name, "missing: " .. want .. "\nin:\n" .. s)
		end
	end
	return H.ok(true, name)
end

function H.skip(name, reason)
	n = n + 1
	print(string.format("ok %d - %s # SKIP %s", n, name, reason))
end

function H.done()
	print("1.." .. n)
	os.exit(failed == 0 and 0 or 1)
end

--- Runs `fn`, turning a Lua error into a failed test point instead of a crash.
function H.test(name, fn)
	local ok, err = xpcall(fn, debug.traceback)
	if not ok then
		H.ok(false, name .. " (raised)", err)
	end
end

local tmpdir
--- A fresh temporary directory for this test program (removed at exit by the launcher's
--- trap is not possible from Lua; we clean up in H.cleanup()).
function H.tmpdir()
	if not tmpdir then
		local p = os.tmpname()
		os.remove(p)
		assert(core.mkdir_p(p))
		tmpdir = p
	end
	return tmpdir
end

function H.cleanup()
	if tmpdir and not os.getenv("RIGOR_KEEP_TMP") then
		os.execute("rm -rf '" .. tmpdir .. "'")
	end
end

local counter = 0
--- Writes a testcase file with `src` and returns its path.
function H.testcase(src, name)
	counter = counter + 1
	local path = string.format("%s/%s.lua", H.tmpdir(), name or ("tc" .. counter))
	local f = assert(io.open(path, "w"))
	f:write(src)
	f:close()
	return path
end

H.read = require("rigor.util").read_file

--- Runs runner.main with captured output. `args.files` may hold sources (strings with a
--- newline) instead of paths. Returns code, out, err, rig.
function H.run(args)
	local runner = require "rigor.runner"
	local out, err = {}, {}
	local files = {}
	for _, f in ipairs(args.files or {}) do
		files[#files + 1] = f:find("\n") and H.testcase(f) or f
	end
	local rig = args.rig or fake_rig.new(args.rig_opts)
	local a = {
		files = files,
		rig = rig,
		case = args.case,
		tags = args.tags,
		reporters = args.reporters or { human = true },
		artifacts = args.artifacts,
		color = args.color,
		out = function(s) out[#out + 1] = s end,
		err = function(s) err[#err + 1] = s end,
	}
	if core._reset then
		core._reset()
	end
	local code = runner.main(a)
	return code, table.concat(out), table.concat(err), rig
end

--- Runs a shell command; returns exit status (number) and its combined output.
function H.sh(cmd)
	local p = io.popen(cmd .. " 2>&1")
	local outp = p:read("a")
	local _, _, status = p:close()
	return status, outp
end

--- A trace shared between testcases and the test program (testcases run in this process).
H.trace = {}
_G.TRACE = function(s)
	H.trace[#H.trace + 1] = s
end
function H.take_trace()
	local s = table.concat(H.trace, ",")
	H.trace = {}
	return s
end

return H
