#!/bin/sh
# SPDX-License-Identifier: MIT
# TAP: layout of the rigor test OS images built by `make os-image` (docs/os-image.md):
# MBR partitions and labels, boot-partition files, os-release, flasher payload, settings.
set -u
BUILD=${BUILD:-build}
OS=$BUILD/os
CACHE=${OS_CACHE:-build/os-cache}
export MTOOLS_SKIP_CHECK=1
IMG10=$OS/rigor-os-1.0.img IMG11=$OS/rigor-os-1.1.img FL=$OS/rigor-os-flasher-1.0.img
T=$(mktemp -d "${TMPDIR:-/tmp}/rigor-os-image.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM

if [ ! -f "$IMG10" ] || [ ! -f "$IMG11" ] || [ ! -f "$FL" ]; then
	if [ -e "$CACHE/FETCH-FAILED" ]; then
		echo "1..1"
		echo "ok 1 # SKIP kernel package could not be downloaded (no network); no OS images"
		exit 0
	fi
	echo "1..1"
	echo "not ok 1 - OS images missing: run make os-image"
	exit 1
fi

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; [ $# -gt 1 ] && printf '%s\n' "$2" | sed 's/^/# /'; }
check() {
	d=$1; shift
	if "$@" >"$T/out.check" 2>&1; then ok "$d"; else nok "$d" "$(cat "$T/out.check")"; fi
}
# start IMG N: byte offset of partition N
start() { sfdisk -J "$1" | python3 -c "import json,sys; p=json.load(sys.stdin)['partitiontable']['partitions']; print([x['start'] for x in p if x['node'].endswith('$2')][0] * 512)"; }
ext_cat() { debugfs -R "cat $3" "$1?offset=$(start "$1" "$2")" 2>/dev/null; }
fat() { echo "$1@@$(start "$1" 1)"; }

echo "1..35"

# Partition table: dos, 1 FAT16 bootable, 2/3 Linux, 4 extended, 5/6 Linux.
sfdisk -J "$IMG10" >"$T/pt.json"
check "MBR with 6 partitions: 1 FAT16 bootable, 2 3 5 6 Linux, 4 extended" python3 -c '
import json, sys
t = json.load(open(sys.argv[1]))["partitiontable"]
assert t["label"] == "dos", t["label"]
p = {x["node"][-1]: x for x in t["partitions"]}
assert sorted(p) == list("123456"), sorted(p)
assert p["1"]["type"] == "e" and p["1"].get("bootable"), p["1"]
for k in "2356": assert p[k]["type"] == "83", p[k]
assert p["4"]["type"] == "5"
' "$T/pt.json"

labels() { # IMG -> "1=label 2=label ..."
	if [ -x "$BUILD/rigor-flash-tool" ]; then
		"$BUILD/rigor-flash-tool" part list "$1" | sed -n 's/^\([0-9]\) .*label=\([^ ]*\).*/\1=\2/p' | tr '\n' ' '
	else
		for i in 1 2 3 5 6; do
			if [ $i = 1 ]; then
				printf '1=%s ' "$(mlabel -s -i "$(fat "$1")" :: | sed 's/^ *Volume label is //; s/ *$//')"
			else
				printf '%s=%s ' $i "$(dumpe2fs -h "$1?offset=$(start "$1" $i)" 2>/dev/null | sed -n 's/^Filesystem volume name: *//p')"
			fi
		done
	fi
}
want="1=resin-boot 2=resin-rootA 3=resin-rootB 4=- 5=resin-state 6=resin-data "
[ -x "$BUILD/rigor-flash-tool" ] || want="1=resin-boot 2=resin-rootA 3=resin-rootB 5=resin-state 6=resin-data "
got=$(labels "$IMG10")
check "labels of 1.0: resin-boot resin-rootA resin-rootB resin-state resin-data" test "$got" = "$want"
got=$(labels "$IMG11")
check "labels of 1.1 the same" test "$got" = "$want"
wantf=$(echo "$want" | sed 's/resin-/flash-/g')
got=$(labels "$FL")
check "flasher labels flash-* (like balena's flasher)" test "$got" = "$wantf"

mdir -b -i "$(fat "$IMG10")" ::/ | sed 's|^::/||' | sort | tr '\n' ' ' >"$T/files"
check "resin-boot files: GRUB in EFI/, no kernel (it is in the root slot)" test "$(cat "$T/files")" = \
	"EFI/ balena-image config.json config.txt device-type.json image-version-info os-release "
mdir -b -i "$(fat "$IMG10")" ::/EFI/BOOT | sed 's|^::/EFI/BOOT/||' | sort | tr '\n' ' ' >"$T/efi"
check "EFI/BOOT: BOOTX64.EFI (the removable-media path the firmware boots), grub.cfg, grubenv" \
	test "$(cat "$T/efi")" = "BOOTX64.EFI grub.cfg grubenv "
mcopy -n -i "$(fat "$IMG10")" ::/EFI/BOOT/BOOTX64.EFI "$T/bootx64"
check "BOOTX64.EFI is an x86-64 PE image (MZ, PE, machine 0x8664)" sh -c "
	test \"\$(head -c 2 '$T/bootx64')\" = MZ &&
	off=\$(od -An -tu4 -j 60 -N 4 '$T/bootx64' | tr -d ' ') &&
	test \"\$(od -An -c -j \$off -N 4 '$T/bootx64' | tr -d ' ')\" = 'PE\\0\\0' &&
	test \"\$(od -An -tx2 -j \$((off + 4)) -N 2 '$T/bootx64' | tr -d ' ')\" = 8664"
mcopy -n -i "$(fat "$IMG10")" ::/EFI/BOOT/grubenv "$T/grubenv"
check "grubenv: a 1024-byte block grub-editenv reads: slot A, no trial" sh -c "
	test \$(wc -c <'$T/grubenv') = 1024 &&
	grub-editenv '$T/grubenv' list | sort | tr '\n' ' ' | grep -qx 'bootcount=0 resin_root_part=A upgrade_available=0 '"
mtype -i "$(fat "$IMG10")" ::/EFI/BOOT/grub.cfg >"$T/grub.cfg"
check "grub.cfg boots root=LABEL=resin-root<slot> with the serial console, card /dev/vda, not a flasher" sh -c "
	grep -q 'root=LABEL=resin-root\$resin_root_part' '$T/grub.cfg' && grep -q 'console=ttyS0' '$T/grub.cfg' &&
	grep -q 'rigor.card=/dev/vda' '$T/grub.cfg' && ! grep -q 'rigor.flasher' '$T/grub.cfg' && ! grep -q '@' '$T/grub.cfg'"
debugfs -R "dump /boot/vmlinuz $T/vmlinuz" "$IMG10?offset=$(start "$IMG10" 2)" >/dev/null 2>&1
check "vmlinuz in resin-rootA/boot is an x86 bzImage" sh -c "od -An -c -j 514 -N 4 '$T/vmlinuz' | tr -d ' ' | grep -qx 'HdrS'"
debugfs -R "dump /boot/initrd.img $T/initrd.img" "$IMG10?offset=$(start "$IMG10" 2)" >/dev/null 2>&1
check "initrd: gzip newc cpio with /init, static busybox, 20 modules in order (virtio, ext4, vfat, zram)" sh -c "
	gzip -dc '$T/initrd.img' | cpio -t --quiet >'$T/initrd.list' &&
	grep -qx init '$T/initrd.list' && grep -qx bin/busybox '$T/initrd.list' &&
	test \$(grep -c '^lib/modules/.*\\.ko\$' '$T/initrd.list') = 20 && grep -qx lib/modules/order '$T/initrd.list'"
mtype -i "$(fat "$IMG10")" ::/config.json >"$T/config.json"
check "config.json: provisioning fields for the emulator" python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))
assert c["deviceType"] == "qemux86-64" and c["applicationId"] == 1, c
assert c["apiKey"] and c["apiEndpoint"].startswith("http://"), c
assert "uuid" not in c and "deviceApiKey" not in c, c
' "$T/config.json"

ext_cat "$IMG10" 2 /etc/os-release >"$T/osr10"
ext_cat "$IMG11" 2 /etc/os-release >"$T/osr11"
check "1.0 os-release: NAME VERSION VERSION_ID SLUG MACHINE META_BALENA_VERSION" sh -c "
	grep -qx 'NAME=\"Rigor OS\"' '$T/osr10' && grep -qx 'VERSION=\"1.0\"' '$T/osr10' &&
	grep -qx 'VERSION_ID=\"1.0\"' '$T/osr10' && grep -qx 'SLUG=\"qemux86-64\"' '$T/osr10' &&
	grep -qx 'MACHINE=\"qemux86-64\"' '$T/osr10' && grep -qx 'META_BALENA_VERSION=\"1.0\"' '$T/osr10'"
check "1.1 os-release: VERSION 1.1" grep -qx 'VERSION="1.1"' "$T/osr11"
check "the two versions' os-release files differ" sh -c "! cmp -s '$T/osr10' '$T/osr11'"
mtype -i "$(fat "$IMG11")" ::/os-release >"$T/osr11b"
check "resin-boot carries a copy of os-release" cmp "$T/osr11" "$T/osr11b"
check "rootA: agent, stage-2 init, update and rollback tools, busybox, udhcpc script" sh -c "
	for f in /usr/bin/rigor-agent /sbin/rigor-init /sbin/rigor-flasher /usr/sbin/rigor-hup /usr/sbin/rigor-rollback /usr/sbin/rigor-bootenv /bin/busybox /etc/udhcpc.sh; do
		debugfs -R \"stat \$f\" '$IMG10?offset=$(start "$IMG10" 2)' 2>/dev/null | grep -q 'Type: regular' || { echo missing \$f; exit 1; }
	done"
debugfs -R 'dump /usr/bin/rigor-agent '"$T/agent" "$IMG10?offset=$(start "$IMG10" 2)" >/dev/null 2>&1
check "the agent on rootA is static (runs in the initramfs-less root)" sh -c "LC_ALL=C ldd '$T/agent' 2>&1 | grep -q 'not a dynamic'"
# Debian programs copied with their libraries (build.sh add_debian): every library they
# name (DT_NEEDED) is in the image where the loader looks
R2="$IMG10?offset=$(start "$IMG10" 2)"
check "rootA: tune2fs, chronyd, chronyc, udevadm, dropbear and every library they need" sh -c "
	for f in /sbin/tune2fs /usr/sbin/chronyd /usr/bin/chronyc /bin/udevadm /usr/sbin/dropbear /usr/bin/dropbearkey; do
		debugfs -R \"dump \$f $T/prog\" '$R2' >/dev/null 2>&1 && test -s '$T/prog' || { echo missing \$f; exit 1; }
		for lib in \$(readelf -d '$T/prog' | sed -n 's/.*(NEEDED).*\\[\\(.*\\)\\]/\\1/p'); do
			# the loader itself (udevadm names it) is at /lib64, where PT_INTERP points
			case \$lib in ld-linux-*) d=/lib64 ;; *) d=/lib/x86_64-linux-gnu ;; esac
			debugfs -R \"stat \$d/\$lib\" '$R2' 2>/dev/null | grep -q 'Type: regular' ||
				{ echo \"\$f needs \$lib, not in the image\"; exit 1; }
		done
		rm -f '$T/prog'
	done"
check "rootA: /etc/hostname, /etc/resolv.conf and /var/log are links into /run (set at boot)" sh -c "
	for l in /etc/hostname:/run/hostname /etc/resolv.conf:/run/resolv.conf /var/log:/run/log; do
		debugfs -R \"stat \${l%%:*}\" '$R2' 2>/dev/null | grep -q \"Fast link dest: \\\"\${l#*:}\\\"\" ||
			{ echo \"\${l%%:*} is not a link to \${l#*:}\"; exit 1; }
	done"
check "rootA: udev's block-device rules, systemd-udevd a link to udevadm, no network-naming rules" sh -c "
	debugfs -R 'ls -p /lib/udev/rules.d' '$R2' 2>/dev/null | cut -d/ -f6 | grep 'rules\$' | sort | tr '\n' ' ' >'$T/rules' &&
	test \"\$(cat '$T/rules')\" = '50-udev-default.rules 60-block.rules 60-persistent-storage.rules ' &&
	debugfs -R 'stat /lib/systemd/systemd-udevd' '$R2' 2>/dev/null | grep -q 'Fast link dest: \"/bin/udevadm\"'" 
(cd "$T" && mkdir -p ird && cd ird && gzip -dc "$T/initrd.img" | cpio -i -d --quiet bin/e2fsck 2>/dev/null)
check "initrd: a static e2fsck (the initramfs checks the ext partitions before mounting them)" sh -c "
	test -x '$T/ird/bin/e2fsck' && LC_ALL=C ldd '$T/ird/bin/e2fsck' 2>&1 | grep -q 'not a dynamic'"
jr=
for i in 2 3 5 6; do
	dumpe2fs -h "$IMG10?offset=$(start "$IMG10" $i)" 2>/dev/null | grep -q '^Filesystem features:.*has_journal' &&
		jr="$jr $i"
done
check "state and data have a journal, the root slots none (with one:${jr:- none})" test "$jr" = " 5 6"
fsck=
for i in 2 3 5 6; do
	e2fsck -fn "$IMG10?offset=$(start "$IMG10" $i)" >/dev/null 2>&1 || fsck="$fsck $i"
done
check "ext4 partitions pass e2fsck -fn" test -z "$fsck"
check "images are sparse (<= 48 MiB allocated each for 1.0/1.1)" sh -c \
	"test \$(du -k '$IMG10' | cut -f1) -le 49152 && test \$(du -k '$IMG11' | cut -f1) -le 49152"
check "image sizes 192 MiB" sh -c \
	"test \$(stat -c %s '$IMG10') = 201326592 && test \$(stat -c %s '$FL') = 201326592"
check "resin-rootB is an empty file system (no payload written yet)" sh -c "
	debugfs -R 'ls -p /' '$IMG10?offset=$(start "$IMG10" 3)' 2>/dev/null | cut -d/ -f6 >'$T/rootb' &&
	grep -qx lost+found '$T/rootb' && test -z \"\$(grep -vx -e . -e .. -e lost+found -e '' '$T/rootb')\""
for v in 1.0 1.1; do
	P=$OS/rigor-os-$v-rootfs.img.gz
	gzip -dc "$P" >"$T/payload$v" 2>/dev/null
	check "update payload $v: sha256 file matches, a resin-rootA file system of the slot's size (40 MiB)" sh -c "
		(cd '$OS' && sha256sum -c --quiet 'rigor-os-$v-rootfs.img.gz.sha256') &&
		test \$(wc -c <'$T/payload$v') = 41943040 &&
		dumpe2fs -h '$T/payload$v' 2>/dev/null | grep -Eq '^Filesystem volume name: +resin-rootA\$'"
done
check "payload 1.0 is byte for byte resin-rootA of rigor-os-1.0.img" sh -c "
	dd if='$IMG10' bs=512 skip=\$(($(start "$IMG10" 2) / 512)) count=81920 status=none | cmp - '$T/payload1.0'"
check "root slots have no metadata_csum (rigor-hup rewrites a slot's label)" sh -c "
	! dumpe2fs -h '$T/payload1.1' 2>/dev/null | grep -q metadata_csum"

# Flasher.
mtype -i "$(fat "$FL")" ::/EFI/BOOT/grub.cfg >"$T/fcmdline"
check "flasher grub.cfg: root=LABEL=flash-root<slot> rigor.flasher=1 rigor.target=/dev/vdb" sh -c \
	"grep -q 'root=LABEL=flash-root\$resin_root_part rigor.flasher=1 rigor.target=/dev/vdb' '$T/fcmdline'"
check "flasher boot has the balena-image-flasher flag file" mtype -i "$(fat "$FL")" ::/balena-image-flasher
debugfs -R "dump /rigor-os-1.0.img.gz $T/payload.gz" "$FL?offset=$(start "$FL" 6)" >/dev/null 2>&1
check "flasher resin-data payload is exactly rigor-os-1.0.img" sh -c "gzip -dc '$T/payload.gz' | cmp - '$IMG10'"

# Settings: slug, hostname, endpoint (build.sh directly, into the temp dir).
OS_SLUG=genericx86-64-ext OS_HOSTNAME=dut7 OS_API_ENDPOINT=http://10.0.2.100 OS_SIZE_MIB=224 \
	testcases/os/build.sh image "$T/custom.img" 2.5 "$OS/kernel" "$OS/initrd.img" "$OS/rigor-agent" >"$T/build.log" 2>&1
ext_cat "$T/custom.img" 2 /etc/os-release >"$T/osr25"
mtype -i "$(fat "$T/custom.img")" ::/config.json >"$T/config25.json"
check "settable slug/hostname/endpoint/size (OS_SLUG=genericx86-64-ext, 224 MiB)" sh -c "
	grep -qx 'SLUG=\"genericx86-64-ext\"' '$T/osr25' && grep -qx 'VERSION=\"2.5\"' '$T/osr25' &&
	grep -q '\"hostname\": \"dut7\"' '$T/config25.json' && grep -q '\"deviceType\": \"genericx86-64-ext\"' '$T/config25.json' &&
	grep -q 'http://10.0.2.100' '$T/config25.json' && test \$(stat -c %s '$T/custom.img') = 234881024" 
