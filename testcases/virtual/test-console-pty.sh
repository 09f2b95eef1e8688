#!/bin/sh
# SPDX-License-Identifier: MIT
# A person's console on the virtual board: `rigor console` under a pseudo-terminal
# (script(1), as in a terminal window, a tmux pane or a scheduler's connection command)
# stays attached while `rigor --wait 5 power cycle` runs in another process; the board boots
# the card (mux on the DUT side, boot strap held: `rigor button boot --down`) to its login
# prompt on that pty; typing there logs in and runs a command; Ctrl-] quits. The console's
# timestamped log (--log) gives how long each stage took, printed as TAP comments, so a slow
# boot is told apart from a stuck one (RIGOR_BOOT_TIMEOUT_MS bounds the boot, default
# 300000). Prints TAP; SKIPs without qemu-system-x86_64, script
# or the OS image (make os-image). RIGOR_VBOARD_KEEP=1 keeps the scratch directory.
T=$(mktemp -d /tmp/rigor-conpty-XXXXXX)
. host/tests/tap.sh
V=$T/rig
IMG=$BUILD/os/rigor-os-1.0.img
con=
cleanup() {
	exec 3>&- 2>/dev/null
	[ -n "$con" ] && kill "$con" 2>/dev/null && wait "$con" 2>/dev/null
	[ -f "$V/env" ] && BUILD=$BUILD scripts/virtual-rig stop "$V" >/dev/null 2>&1
	if [ "$fail" = 0 ] && [ -z "$RIGOR_VBOARD_KEEP" ]; then rm -rf "$T"; else echo "# logs kept in $T"; fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT

skip() { echo "ok 1 # SKIP $1"; echo "1..1"; exit 0; }
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"
command -v script >/dev/null || skip "script (util-linux) not installed"
[ -f "$IMG" ] || skip "no OS image $IMG (make os-image; kernel download unavailable?)"

R=$(pwd)/$RIGOR
# in_rig CMD...: CMD with the virtual rig's environment (its DIR/env)
in_rig() { (. "$V/env" && exec "$@"); }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# wait_text FILE TEXT SECONDS: until FILE holds TEXT (a fixed string)
wait_text() {
	end=$(($(now_ms) + $3 * 1000))
	until grep -aqF -- "$2" "$1" 2>/dev/null; do
		[ "$(now_ms)" -ge "$end" ] && return 1
		sleep 0.2
	done
}

run 0 "virtual-rig start" env BUILD="$BUILD" scripts/virtual-rig start "$V" virtual
run 0 "flash the test OS to the card" in_rig "$R" flash "$IMG"
run 0 "card to the DUT side" in_rig "$R" sdmux dut
run 0 "boot strap held (the board boots the card only then)" in_rig "$R" button boot --down
run 0 "power off" in_rig "$R" power off

# The console on a pty: script(1) reads what "the person" types from a fifo (fd 3 here).
mkfifo "$T/keys"
in_rig script -qfec "$R console --log $T/con.log" /dev/null <"$T/keys" >"$T/pty.out" 2>&1 &
con=$!
exec 3>"$T/keys"
i=0; until in_rig "$R" who 2>/dev/null | grep -q 'console +held'; do
	[ $i -ge 100 ] && break
	sleep 0.1; i=$((i + 1))
done
run 0 "who while the console is attached" in_rig "$R" who
has "$T/out" "^  console +held by pid [0-9]+ \(rigor console --log " "who names the console holder"
cpid=$(sed -n 's/^  console *held by pid \([0-9]*\) .*/\1/p' "$T/out")
tty=$(readlink "/proc/$cpid/fd/0" 2>/dev/null)
case "$tty" in
/dev/pts/*) ok "the console's stdin is a pseudo-terminal ($tty)" ;;
*) echo "# pid '$cpid' stdin '$tty'"; nok "the console's stdin is a pseudo-terminal" ;;
esac

t0=$(now_ms)
run 0 "rigor --wait 5 power cycle in another process, console attached" in_rig "$R" --wait 5 power cycle
# Why 300 s: the board is QEMU without KVM (TCG) on a machine whose 2 cores are shared with
# builds and sanitizer runs. Power-on to prompt took 17-22 s at load 6 here, most of it
# OVMF and the kernel, which slow down in proportion to the load; 60 s (testcases/os.lua's
# default) leaves too little room on a busier machine. The stage times below say where a
# boot that ran out of time had got to.
# RIGOR_BOOT_TIMEOUT_MS overrides it.
bound=$(( ${RIGOR_BOOT_TIMEOUT_MS:-300000} / 1000 ))
if wait_text "$T/pty.out" "rigor-os login: " $bound; then
	ok "the login prompt on the pty console $(( ($(now_ms) - t0) / 1000 )) s after the power cycle"
else
	tail -c 2000 "$T/pty.out" | tr -d '\033' >"$T/out"
	nok "the login prompt on the pty console within $bound s of the power cycle"
fi
# stage times from the console log's timestamps ([HH:MM:SS.mmm] console: TEXT)
/usr/bin/python3 - "$T/con.log" <<'EOF'
import re, sys
stages = [("board power on", "rigor-vboard: power on (OVMF)"), ("GRUB", "Welcome to GRUB!"),
          ("Linux userspace", "rigor-os: Rigor OS"), ("network", "rigor-os: eth0"),
          ("agent reported", "rigor-agent: state reported"), ("login prompt", "rigor-os login:")]
def secs(ts):
    h, m, s = ts.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)
seen = {}
with open(sys.argv[1], "rb") as f:
    for raw in f:
        m = re.match(rb"\[(\d\d:\d\d:\d\d\.\d+)\] console: (.*)", raw)
        if not m:
            continue
        text = m.group(2).decode("utf-8", "replace")
        for name, needle in stages:
            if needle in text:
                if name == "board power on":
                    seen.clear()  # the last power-on counts
                seen.setdefault(name, secs(m.group(1).decode()))
t0 = seen.get("board power on")
for name, _ in stages:
    if name in seen and t0 is not None:
        print("# %-16s %6.1f s after power-on" % (name, seen[name] - t0))
    else:
        print("# %-16s not seen" % name)
EOF

# the person logs in and runs a command on the pty (Enter is CR on a terminal)
printf 'root\r' >&3
if wait_text "$T/pty.out" "root@" 60; then ok "logged in on the pty console"; else tail -c 1000 "$T/pty.out" >"$T/out"; nok "logged in on the pty console"; fi
printf 'echo pty-says-$((6 * 7))\r' >&3
if wait_text "$T/pty.out" "pty-says-42" 60; then ok "a command's output on the pty console"; else tail -c 1000 "$T/pty.out" >"$T/out"; nok "a command's output on the pty console"; fi
printf '\035' >&3
exec 3>&-
i=0; while kill -0 "$con" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 "$con" 2>/dev/null; then
	nok "Ctrl-] ends the console"
else
	wait "$con"; rc=$?; con=
	if [ $rc = 0 ]; then ok "Ctrl-] ends the console (exit 0)"; else echo "# exit $rc"; nok "Ctrl-] ends the console"; fi
fi
run 0 "the rig is free again" in_rig "$R" who
has "$T/out" "is free" "who: free after the console quit"
run 0 "power off" in_rig "$R" power off
run 0 "virtual-rig stop" env BUILD="$BUILD" scripts/virtual-rig stop "$V"
tap_done
