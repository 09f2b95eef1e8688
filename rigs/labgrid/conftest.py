# SPDX-License-Identifier: MIT
"""pytest set-up for env.yaml: rigor as labgrid's power and console (docs/labgrid.md).

Loaded by pytest before the labgrid plugin reads env.yaml, so the defaults below reach it.
  LG_RIGOR       the rigor program (default: rigor, from PATH)
  LG_RIGOR_RIG   the rig: a name or a rig file (default: sim)
  LG_RIGOR_STRAP a button of the rig to hold down while the board is powered (a boot-mode
                 strap: "boot" on the virtual rig, whose board boots the card only then);
                 unset: none
"""
import inspect
import os
import shlex
import subprocess

import pexpect
import pytest
from labgrid.driver import ExternalConsoleDriver
from labgrid.driver.exception import ExecutionError

os.environ.setdefault("LG_RIGOR", "rigor")
os.environ.setdefault("LG_RIGOR_RIG", "sim")


def _read_unbuffered(self, size=1024, timeout=0):
    # labgrid PR #1440 (in labgrid 24.1): read the pipe itself, not through Python's buffer
    if self._child.poll() is not None:
        raise ExecutionError("child has vanished")
    if self._poll.poll(timeout):
        return os.read(self._child.stdout.fileno(), size)
    return b""


# labgrid before 24.1 reads the console command's stdout through an 8 KiB BufferedReader
# one byte at a time, then poll()s the pipe: bytes already in the buffer, such as a login
# prompt with no newline after it, are never seen and expect() times out. Only those
# versions lack bufsize= in open(); later ones are left alone.
if "bufsize" not in inspect.getsource(ExternalConsoleDriver.open):
    ExternalConsoleDriver._read = _read_unbuffered


def rigor(*args, timeout=120):
    """Runs LG_RIGOR --rig LG_RIGOR_RIG ARGS...; fails the test with rigor's message on error."""
    cmd = shlex.split(os.environ["LG_RIGOR"]) + ["--rig", os.environ["LG_RIGOR_RIG"], *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        pytest.fail(f"{shlex.join(cmd)}: exit {p.returncode}: {p.stderr.strip()}")
    return p.stdout


@pytest.fixture
def board(target):
    """The board powered off, its card on its side (and its strap held, if LG_RIGOR_STRAP):
    what labgrid has no driver for is done with rigor itself. Afterwards the board is off
    and the strap released."""
    power = target.get_driver("PowerProtocol")
    console = target.get_driver("ConsoleProtocol")
    strap = os.environ.get("LG_RIGOR_STRAP")
    power.off()
    # The console driver lives as long as the session and keeps what it read: drop what an
    # earlier test left unread (a shell prompt would fool ShellDriver into thinking the
    # next boot was already logged in).
    while console.expect([rb"[\s\S]+", pexpect.TIMEOUT], timeout=0.5)[0] == 0:
        pass
    rigor("--wait", "30", "sdmux", "dut")
    if strap:
        rigor("--wait", "30", "button", strap, "--down")
    yield target
    power.off()
    if strap:
        rigor("--wait", "30", "button", strap, "--up")
