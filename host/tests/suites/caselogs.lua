-- SPDX-License-Identifier: MIT
-- Per-case logs on the sim rig (run.sh): the first case boots the board without reading
-- the console, so its boot output and login prompt are still unread when it ends; the
-- second logs in, leaving a shell prompt ("# ", no newline) before its own log lines, and
-- ends with the prompt of its last command unread; the third must not start with it.
local t = require "rigor.test"
local core = require "rigor.core"
local s = t.suite("case logs", { timeout = 10000, safe_state = false })

s:case("boots without reading the console", function(rig)
  assert(rig.power:off())
  assert(rig.sdmux:set("dut"))
  assert(rig.power:on())
  core.sleep(600)   -- 10 boot lines, 20 ms apart: the prompt is out well before the end
end)

s:case("logs in", function(rig)
  assert(rig.console:expect("login: ", 5000))
  assert(rig.console:sendline("echo first"))
  assert(rig.console:expect("first\r\n", 2000))    -- "# " stays in the log, mid-line
  t.log("at the shell prompt")
  assert(rig.console:sendline("echo second"))
  assert(rig.console:expect("second\r\n", 2000))
  t.log("done")
  core.sleep(300)   -- the next prompt "# " arrives, unread
end)

s:case("after a prompt", function(rig)
  t.log("third")
end)

s:after_all(function(rig)
  assert(rig:safe())
end)

return s
