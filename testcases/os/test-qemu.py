#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""TAP: boot the rigor test OS under qemu-system-x86_64 (TCG) in OVMF, as the virtual board
does (read-only pflash code, a copy of the variable store, disks with serial numbers, the
boot disk first): GRUB boots the slot. Against the balena API emulator: first boot
registers and reports, the console has a login prompt and a shell, a second boot does not
register again, the flasher writes the internal disk and powers off, and the flashed disk
boots and registers. SKIPs without QEMU, OVMF or images. See docs/os-image.md."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

BUILD = os.environ.get("BUILD", "build")
OS_DIR = os.path.join(BUILD, "os")
CACHE = os.environ.get("OS_CACHE", "build/os-cache")
IMG = os.path.join(OS_DIR, "rigor-os-1.0.img")
FLASHER = os.path.join(OS_DIR, "rigor-os-flasher-1.0.img")
BACKEND = "testcases/backend/rigor-backend"
USERKEY = "rigorUserApiKey0000000000000000000"
QEMU = shutil.which("qemu-system-x86_64")
OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
BOOT_TIMEOUT = float(os.environ.get("RIGOR_OS_BOOT_TIMEOUT", "90"))
ENV = dict(os.environ, MTOOLS_SKIP_CHECK="1")
PLAN = 13
n = 0
failed = 0


def tap(ok, desc, diag=""):
    global n, failed
    n += 1
    failed += not ok
    print("%s %d - %s" % ("ok" if ok else "not ok", n, desc))
    if not ok and diag:
        for line in str(diag).splitlines()[-40:]:
            print("# " + line)
    sys.stdout.flush()
    return ok


def skip_all(why):
    print("1..1")
    print("ok 1 # SKIP " + why)
    sys.exit(0)


def run(*cmd, **kw):
    return subprocess.run(cmd, check=True, env=ENV, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, **kw).stdout


def part_start(img, num):
    pt = json.loads(run("sfdisk", "-J", img))["partitiontable"]["partitions"]
    return [p["start"] for p in pt if p["node"].endswith(str(num))][0] * 512


def fat(img):
    return "%s@@%d" % (img, part_start(img, 1))


class Console:
    """qemu-system-x86_64 in OVMF with the serial console on stdin/stdout; `drives` are
    (image, serial) pairs, the boot disk first. -no-reboot: an unexpected reboot ends the
    run instead of looping."""

    def __init__(self, vars_, drives, log):
        args = [QEMU, "-accel", "tcg", "-M", "q35", "-m", "512", "-display", "none",
                "-monitor", "none", "-nodefaults", "-serial", "stdio", "-no-reboot",
                "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + OVMF_CODE,
                "-drive", "if=pflash,format=raw,unit=1,file=" + vars_,
                "-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,romfile="]
        for i, (d, serial) in enumerate(drives):
            args += ["-drive", "file=%s,if=none,id=disk%d,format=raw" % (d, i),
                     "-device", "virtio-blk-pci,drive=disk%d,serial=%s,bootindex=%d" % (
                         i, serial, i)]
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        self.buf = b""
        self.pos = 0
        self.lock = threading.Lock()
        self.log = open(log, "wb")
        self.t = threading.Thread(target=self._reader, daemon=True)
        self.t.start()

    def _reader(self):
        while True:
            b = self.p.stdout.read1(4096)
            if not b:
                break
            self.log.write(b)
            self.log.flush()
            with self.lock:
                self.buf += b

    def text(self):
        with self.lock:
            return self.buf.decode("utf-8", "replace")

    def expect(self, regex, timeout):
        """Wait for regex in the output after the last match; returns the match or None."""
        end = time.time() + timeout
        r = re.compile(regex)
        while time.time() < end:
            with self.lock:
                s = self.buf[self.pos:].decode("utf-8", "replace")
            m = r.search(s)
            if m:
                with self.lock:
                    self.pos += len(s[:m.end()].encode("utf-8"))
                return m
            if self.p.poll() is not None and not self.t.is_alive():
                return None
            time.sleep(0.05)
        return None

    def send(self, s):
        self.p.stdin.write(s.encode())
        self.p.stdin.flush()

    def wait(self, timeout):
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.t.join(2)
        self.log.close()


def main():
    if not QEMU:
        skip_all("qemu-system-x86_64 not installed (scripts/install-deps: qemu-system-x86)")
    if not (os.path.isfile(OVMF_CODE) and os.path.isfile(OVMF_VARS)):
        skip_all("no OVMF (%s; Debian package ovmf)" % OVMF_CODE)
    if not (os.path.exists(IMG) and os.path.exists(FLASHER)):
        if os.path.exists(os.path.join(CACHE, "FETCH-FAILED")):
            skip_all("kernel package could not be downloaded (no network); no OS images")
        print("1..1")
        print("not ok 1 - OS images missing: run make os-image")
        sys.exit(1)

    tmp = tempfile.mkdtemp(prefix="rigor-os-qemu.")
    backend = subprocess.Popen(
        [BACKEND, "--port", "0", "--port-file", os.path.join(tmp, "port"),
         "--state", os.path.join(tmp, "state.json"), "-v"],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "backend.log"), "wb"))
    consoles = []
    try:
        for _ in range(200):
            if os.path.exists(os.path.join(tmp, "port")):
                break
            time.sleep(0.05)
        port = int(open(os.path.join(tmp, "port")).read())
        api = "http://127.0.0.1:%d" % port

        def api_get(path):
            req = urllib.request.Request(api + path, headers={"Authorization": "Bearer " + USERKEY})
            with urllib.request.urlopen(req, timeout=5) as r:
                return json.load(r)

        def registers():
            return open(os.path.join(tmp, "backend.log")).read().count("POST /device/register")

        def prepare(src, name):
            """Sparse copy of an image with config.json pointing at this emulator."""
            dst = os.path.join(tmp, name)
            run("cp", "--sparse=always", src, dst)
            cfg = json.loads(run("mtype", "-i", fat(dst), "::/config.json"))
            cfg["apiEndpoint"] = "http://10.0.2.2:%d" % port  # QEMU slirp: host loopback
            cfg["rigorReportInterval"] = 2
            p = os.path.join(tmp, "config.json")
            with open(p, "w") as f:
                json.dump(cfg, f, indent=2)
            run("mcopy", "-o", "-i", fat(dst), p, "::/config.json")
            return dst

        vars_ = os.path.join(tmp, "OVMF_VARS.fd")   # NVRAM, kept across the boots
        shutil.copyfile(OVMF_VARS, vars_)

        def boot(img, tag, extra=()):
            """Power on with `img` as the boot disk (serial rigor-card, or rigor-internal
            for the internal disk) and `extra` disks after it."""
            serial = "rigor-internal" if img.endswith("internal.img") else "rigor-card"
            con = Console(vars_, [(img, serial)] + [(d, "rigor-internal") for d in extra],
                          os.path.join(tmp, tag + ".log"))
            consoles.append(con)
            return con

        print("1..%d" % PLAN)
        sys.stdout.flush()

        # --- first boot -----------------------------------------------------------------
        card = prepare(IMG, "card.img")
        t0 = time.time()
        con = boot(card, "boot1")
        m = con.expect(r"rigor-agent: registered uuid=([0-9a-f]{32})", BOOT_TIMEOUT)
        uuid = m.group(1) if m else ""
        tap(bool(m), "first boot: agent prints 'registered uuid=...' (%.1f s)" % (time.time() - t0),
            con.text())
        tap(bool(con.expect(r"rigor-agent: state reported", 20)), "first boot: 'state reported'",
            con.text())
        tap(bool(con.expect(r"rigor-os login: ", 20)), "login prompt 'rigor-os login: '", con.text())
        con.send("root\n")
        con.expect(r"root@\S+:/# ", 20)
        con.send("cat /etc/os-release; hostname; echo END-$((40+2))\n")
        m = con.expect(r"END-42", 20)
        out = con.text()
        tap(bool(m) and 'VERSION="1.0"' in out and 'SLUG="qemux86-64"' in out,
            "shell: cat /etc/os-release shows VERSION 1.0 and SLUG", out)
        tap(bool(uuid) and re.search(r"\n%s\r?\n" % uuid[:7], out) is not None,
            "shell: hostname is the uuid prefix %s" % uuid[:7], out)
        try:
            dev = api_get("/v7/device?$filter=uuid%%20eq%%20'%s'&$select=os_version,"
                          "supervisor_version,api_heartbeat_state,ip_address" % uuid)["d"]
        except Exception as e:  # noqa: BLE001
            dev = [str(e)]
        tap(len(dev) == 1 and isinstance(dev[0], dict) and dev[0]["os_version"] == "1.0"
            and dev[0]["supervisor_version"] == "rigor-agent 0.1"
            and dev[0]["api_heartbeat_state"] == "online" and dev[0]["ip_address"] == "10.0.2.15",
            "emulator: device online with os_version 1.0 from 10.0.2.15", dev)
        con.send("poweroff -f\n")
        rc = con.wait(30)
        tap(rc == 0, "poweroff -f ends QEMU with status 0", "rc=%s\n%s" % (rc, con.text()))
        con.kill()
        cfg = json.loads(run("mtype", "-i", fat(card), "::/config.json"))
        tap(cfg.get("uuid") == uuid and "apiKey" not in cfg and cfg.get("deviceApiKey")
            and cfg.get("registered_at"),
            "config.json on the card: uuid/deviceApiKey/registered_at written, apiKey gone", cfg)

        # --- second boot of the same card: no registration --------------------------------
        con = boot(card, "boot2")
        ok = con.expect(r"rigor-agent: state reported", BOOT_TIMEOUT)
        con.expect(r"rigor-os login: ", 20)
        out = con.text()
        tap(bool(ok) and "registered" not in out and registers() == 1,
            "second boot: state reported, no new registration (1 POST /device/register)",
            out + "\nregisters=%d" % registers())
        con.send("root\npoweroff -f\n")
        con.wait(30)
        con.kill()

        # --- flasher -----------------------------------------------------------------------
        fl = prepare(FLASHER, "flasher.img")
        internal = os.path.join(tmp, "internal.img")
        with open(internal, "wb") as f:
            f.truncate(256 << 20)
        t0 = time.time()
        con = boot(fl, "flasher", [internal])
        ok = con.expect(r"rigor-flasher: power down", BOOT_TIMEOUT + 60)
        rc = con.wait(30)
        tap(bool(ok) and rc == 0 and "reboot: Power down" in con.text(),
            "flasher: writes the internal disk, prints 'rigor-flasher: power down', powers off "
            "(%.1f s)" % (time.time() - t0), "rc=%s\n%s" % (rc, con.text()))
        con.kill()
        try:
            osr = run("debugfs", "-R", "cat /etc/os-release",
                      "%s?offset=%d" % (internal, part_start(internal, 2))).decode()
            icfg = json.loads(run("mtype", "-i", fat(internal), "::/config.json"))
        except Exception as e:  # noqa: BLE001
            osr, icfg = str(e), {}
        tap('VERSION="1.0"' in osr and icfg.get("apiEndpoint") == "http://10.0.2.2:%d" % port,
            "internal disk: rigor-os 1.0 with the flasher's config.json", "%s\n%s" % (osr, icfg))

        # --- boot the flashed internal disk ----------------------------------------------
        before = registers()
        con = boot(internal, "internal")
        ok = con.expect(r"rigor-agent: registered uuid=", BOOT_TIMEOUT)
        tap(bool(ok) and registers() == before + 1, "flashed disk boots and registers",
            con.text())
        ok = con.expect(r"rigor-os login: ", 20)
        tap(bool(ok), "flashed disk: login prompt", con.text())
        con.send("root\npoweroff -f\n")
        con.wait(30)
        con.kill()
    finally:
        for c in consoles:
            c.kill()
        backend.send_signal(signal.SIGTERM)
        try:
            backend.wait(10)
        except subprocess.TimeoutExpired:
            backend.kill()
        if failed or n != PLAN or os.environ.get("RIGOR_OS_KEEP"):
            print("# logs kept in " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
