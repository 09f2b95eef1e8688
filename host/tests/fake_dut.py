#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A fake DUT on the far end of a `socket` console, for host/tests/shell.sh.

    fake_dut.py SOCKET CTL [--style rigor|debian] [--start login|shell] [--log FILE]

Listens on the unix stream socket SOCKET (the rig file's `console = socket { path = ... }`)
and plays a board's serial console: a login prompt, then a real interactive shell on a
pty (busybox ash with line editing for --style rigor, like the test OS; bash with
readline, bracketed paste and a coloured prompt for --style debian), so the echo, the
prompts, $? and the DUT's tools (base64, sha256sum) are the real ones.

  rigor:  "\\r\\nrigor-os login: ", any line starts `busybox sh` (as testcases/os/rootfs/sbin/rigor-init)
  debian: "debian login: ", then "Password: " (no echo); root/secret starts bash, anything
          else is "Login incorrect"

CTL is a file of KEY=VALUE lines, read again whenever input arrives, so a test changes
the DUT's behaviour before it types a command:

  kmsg_every=N      after every Nth line of output, a whole kernel-log line "[ 1.000000] ..."
  kmsg_after=WORD   once WORD is in the output, a kernel line right after it (mid-line);
                    once per value of kmsg_after
  slow_ms=M         output leaves one byte at a time, M ms apart
  eol=crlf|lf|crcrlf|lfcr   how output line ends look on the wire (the pty makes crlf)
  reboot_on=WORD    input containing WORD reboots the board reboot_delay_ms (300) later:
                    the shell is killed, then "reboot: Restarting system" and a boot log
                    with kernel lines (unless reboot_quiet=1: only a banner), then the login prompt
  mute=1            input is swallowed and nothing is printed (a hung board)

Every input byte is appended to --log FILE. Exits on SIGTERM.
"""
import argparse
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time

BOOT_LOG = [
    "[    0.000000] Linux version 6.1.0-fake (rigor@test) #1 SMP",
    "[    0.000000] Command line: console=ttyS0,115200 root=LABEL=resin-rootA",
    "[    0.412345] Run /init as init process",
]


class Dut:
    def __init__(self, args):
        self.a = args
        self.ctl = {}
        self.client = None
        self.out = bytearray()       # bytes waiting to leave (slow mode drains them)
        self.next_byte = 0.0
        self.state = "login"
        self.line = bytearray()      # login/password input
        self.child = None
        self.master = None
        self.lines_out = 0
        self.kmsg_n = 0
        self.kmsg_after_done = False
        self.after_window = b""
        self.eol_cr = False          # a CR held back by the eol transform
        self.reboot_at = None
        self.inbuf = b""
        self.log = open(args.log, "ab") if args.log else None

    # ---- control ----
    def read_ctl(self):
        c = {}
        try:
            with open(self.a.ctl) as f:
                for ln in f:
                    if "=" in ln:
                        k, v = ln.strip().split("=", 1)
                        c[k] = v
        except FileNotFoundError:
            pass
        if c.get("kmsg_after") != self.ctl.get("kmsg_after"):
            self.kmsg_after_done = False
        self.ctl = c

    def ci(self, k, d=0):
        try:
            return int(self.ctl.get(k, d))
        except ValueError:
            return d

    # ---- output ----
    def emit(self, data):
        """Raw bytes to the console (prompts, kernel lines): no transforms."""
        if self.ci("mute"):
            return
        self.out += data

    def kline(self, text):
        self.kmsg_n += 1
        return ("[%5d.%06d] %s\r\n" % (100 + self.kmsg_n, self.kmsg_n, text)).encode()

    def shell_output(self, data):
        """Bytes from the shell's pty: line ends, then kernel noise."""
        if self.ci("mute"):
            return
        eol = self.ctl.get("eol", "crlf")
        if self.eol_cr:
            data = b"\r" + data
            self.eol_cr = False
        if data.endswith(b"\r"):
            data = data[:-1]
            self.eol_cr = True
        if eol == "lf":
            data = data.replace(b"\r\n", b"\n")
        elif eol == "crcrlf":
            data = data.replace(b"\r\n", b"\r\r\n")
        elif eol == "lfcr":
            data = data.replace(b"\r\n", b"\n\r")
        every = self.ci("kmsg_every")
        word = self.ctl.get("kmsg_after", "").encode()
        res = bytearray()
        for i in range(len(data)):
            b = data[i:i + 1]
            res += b
            if word and not self.kmsg_after_done:
                self.after_window = (self.after_window + b)[-len(word):]
                if self.after_window == word:
                    self.kmsg_after_done = True
                    res += self.kline("fake: a kernel line in the middle of a line")
            if b == b"\n":
                self.lines_out += 1
                if every and self.lines_out % every == 0:
                    res += self.kline("fake: kernel noise between lines")
        self.out += res

    def flush(self):
        if not self.client or not self.out:
            return
        slow = self.ci("slow_ms")
        try:
            if slow:
                now = time.monotonic()
                if now >= self.next_byte:
                    self.client.sendall(self.out[:1])
                    del self.out[:1]
                    self.next_byte = now + slow / 1000.0
            else:
                n = self.client.send(self.out)
                del self.out[:n]
        except OSError:
            self.drop_client()

    def drop_client(self):
        if self.client:
            self.client.close()
        self.client = None

    # ---- login ----
    def login_prompt(self):
        self.state = "login"
        self.line = bytearray()
        if self.a.style == "debian":
            self.emit(b"\r\nDebian GNU/Linux 12 debian ttyS0\r\n\r\ndebian login: ")
        else:
            self.emit(b"\r\nRigor OS 1.0 rigor-os ttyS0\r\n\r\nrigor-os login: ")

    def login_input(self, data):
        for ch in data:
            c = bytes([ch])
            if c in (b"\r", b"\n"):
                if c == b"\n" and self.line == b"" and self.inbuf.endswith(b"\r"):
                    continue
                line = self.line.decode(errors="replace")
                self.line = bytearray()
                if self.state == "password":
                    self.emit(b"\r\n")
                    if line == "secret":
                        self.start_shell()
                    else:
                        self.emit(b"\r\nLogin incorrect\r\n")
                        self.login_prompt()
                    continue
                self.emit(b"\r\n")
                if self.a.style == "debian":
                    if line == "":
                        self.login_prompt()
                    else:
                        self.user = line
                        self.state = "password"
                        self.emit(b"Password: ")
                else:
                    self.start_shell()
            elif c in (b"\x7f", b"\x08"):
                self.line = self.line[:-1]
            else:
                self.line += c
                if self.state == "login":
                    self.emit(c)     # getty echoes the user name, login not the password
            self.inbuf = (self.inbuf + c)[-1:]

    # ---- shell ----
    def start_shell(self):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "xterm",
               "HOME": os.getcwd(), "LANG": "C"}
        if self.a.style == "debian":
            env["PS1"] = "\\[\\e[01;32m\\]root@debian\\[\\e[00m\\]:\\[\\e[01;34m\\]\\w\\[\\e[00m\\]# "
            argv = ["bash", "--norc", "--noprofile", "-i"]
        else:
            env["PS1"] = "root@fakedut:\\w# "
            argv = ["busybox", "sh", "-i"]
        pid, fd = pty.fork()
        if pid == 0:
            try:
                # started with & from a script, we inherit SIGINT ignored: a board's
                # shell has it at its default, so Ctrl-C stops commands
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGQUIT, signal.SIG_DFL)
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        self.child, self.master = pid, fd
        self.state = "shell"

    def kill_shell(self):
        if self.child:
            try:
                os.kill(self.child, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(self.child, 0)
            except ChildProcessError:
                pass
        if self.master is not None:
            os.close(self.master)
        self.child = self.master = None

    def reboot(self):
        self.reboot_at = None
        self.kill_shell()
        if not self.ci("reboot_quiet"):
            self.emit(b"\r\n" + self.kline("reboot: Restarting system"))
            for ln in BOOT_LOG:
                self.emit(ln.encode() + b"\r\n")
        self.login_prompt()

    def input(self, data):
        if self.log:
            self.log.write(data)
            self.log.flush()
        self.read_ctl()
        if self.ci("mute"):
            return
        word = self.ctl.get("reboot_on")
        if word and word.encode() in data and self.reboot_at is None:
            self.reboot_at = time.monotonic() + self.ci("reboot_delay_ms", 300) / 1000.0
        if self.state == "shell":
            os.write(self.master, data)
        else:
            self.login_input(data)

    # ---- main loop ----
    def run(self, lsock):
        if self.a.start == "shell":
            self.start_shell()
        else:
            self.login_prompt()
        while True:
            rl = [lsock]
            if self.client:
                rl.append(self.client)
            if self.master is not None:
                rl.append(self.master)
            timeout = 0.5
            if self.out and self.client:
                timeout = max(0.0, self.next_byte - time.monotonic()) if self.ci("slow_ms") else 0.0
            if self.reboot_at is not None:
                timeout = min(timeout, max(0.0, self.reboot_at - time.monotonic()))
            wl = [self.client] if self.client and self.out and not self.ci("slow_ms") else []
            r, w, _ = select.select(rl, wl, [], timeout)
            if lsock in r:
                c, _ = lsock.accept()
                self.drop_client()
                self.client = c
            if self.client and self.client in r:
                try:
                    data = self.client.recv(65536)
                except OSError:
                    data = b""
                if data:
                    self.input(data)
                else:
                    self.drop_client()
            if self.master is not None and self.master in r:
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    data = b""
                if data:
                    self.shell_output(data)
                else:                      # the shell exited: back to the login prompt
                    self.kill_shell()
                    self.login_prompt()
            if self.reboot_at is not None and time.monotonic() >= self.reboot_at:
                self.reboot()
            self.flush()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("socket")
    p.add_argument("ctl")
    p.add_argument("--style", choices=["rigor", "debian"], default="rigor")
    p.add_argument("--start", choices=["login", "shell"], default="login")
    p.add_argument("--log")
    a = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        os.unlink(a.socket)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(a.socket)
    s.listen(1)
    d = Dut(a)
    d.read_ctl()
    try:
        d.run(s)
    finally:
        d.kill_shell()
        try:
            os.unlink(a.socket)
        except OSError:
            pass


if __name__ == "__main__":
    main()
