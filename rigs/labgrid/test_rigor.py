# SPDX-License-Identifier: MIT
"""labgrid drives a rigor rig: power through rigor, the login prompt and a shell on
rigor's console (env.yaml, conftest.py; docs/labgrid.md).

  pytest --lg-env rigs/labgrid/env.yaml rigs/labgrid/test_rigor.py

LG_RIGOR_BOOT_S bounds power-on to login prompt (default 120 s: a QEMU board under load
takes far longer than the sim rig's half second).
"""
import os
import secrets

import pytest

BOOT_S = float(os.environ.get("LG_RIGOR_BOOT_S", "120"))
LOGIN = rb"[\w.-]+ login: "
PROMPT = rb"# "


def test_boot_login_command(board):
    power = board.get_driver("PowerProtocol")
    console = board.get_driver("ConsoleProtocol")
    power.cycle()
    console.expect(LOGIN, timeout=BOOT_S)
    console.sendline("root")
    console.expect(PROMPT, timeout=30)
    # the command's output on a line of its own: the echoed command line has "echo " first
    word = "labgrid-" + secrets.token_hex(4)
    console.sendline("echo " + word)
    console.expect(rb"\n" + word.encode() + rb"\r?\n", timeout=30)
    console.expect(PROMPT, timeout=30)
    console.sendline("hostname")
    _, _, m, _ = console.expect(rb"hostname\r?\n([\w.-]+)\r?\n", timeout=30)
    assert m.group(1)
    console.expect(PROMPT, timeout=30)
    power.off()


def test_shell_driver(board):
    """labgrid's ShellDriver on rigor's console: needs a POSIX shell on the board."""
    if os.environ["LG_RIGOR_RIG"] in ("sim", "sim.lua") or os.environ["LG_RIGOR_RIG"].endswith("/sim.lua"):
        pytest.skip("the sim rig's board has no POSIX shell (it answers echo and hostname only)")
    board.get_driver("PowerProtocol").cycle()
    shell = board.get_driver("CommandProtocol")
    out = shell.run_check("echo rigor-$((6 * 7)); cat /proc/sys/kernel/hostname")
    assert out[0] == "rigor-42"
    assert out[1]
    code = shell.run("exit_status() { return 3; }; exit_status")[2]
    assert code == 3
