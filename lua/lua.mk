# SPDX-License-Identifier: MIT
# The Lua test framework (lua/rigor/) and its own tests (lua/tests/).
#
# The tests run under RIGOR_LUA (default: the real runtime, build/rigor lua), or plain lua5.4 with the pure-Lua stand-in for rigor.core
# (lua/tests/fake_core.lua), or the real runtime once it exists, e.g.
#   make test RIGOR_LUA="$(BUILD)/rigor lua"

RIGOR_LUA ?= $(BUILD)/rigor lua
export RIGOR_LUA

TESTS += lua/tests/run-lua-tests

.PHONY: lua-test
lua-test:
	@lua/tests/run-lua-tests
