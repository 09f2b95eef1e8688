-- SPDX-License-Identifier: MIT
-- Checks for the host tests' Lua scripts, which print unnumbered TAP lines ("ok - NAME",
-- "not ok - NAME" and "# " diagnostics) that the shell script running them numbers
-- (host/tests/tap.sh, tap_lua):
--
--   local tc = dofile("host/tests/tapcheck.lua")("backend")   -- optional name prefix
--   tc.check(cond, "whoami", msg)                              -- returns cond
--   os.exit(tc.status())                                       -- 0, or 1 when one failed
return function(prefix)
	local tc = { failed = 0 }
	local pre = prefix and (prefix .. ": ") or ""

	function tc.check(cond, name, detail)
		if cond then
			print("ok - " .. pre .. name)
		else
			tc.failed = tc.failed + 1
			print("not ok - " .. pre .. name)
			if detail ~= nil then print("# " .. tostring(detail):gsub("\n", "\n# ")) end
		end
		return cond
	end

	function tc.status()
		return tc.failed == 0 and 0 or 1
	end
	return tc
end
