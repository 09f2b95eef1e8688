#!/bin/sh
# SPDX-License-Identifier: MIT
# rigor image inspect: every format rigor flash takes, the identity it reads (partitions,
# os-release with odd values, boot loader, balenaOS device type and config.json), JSON
# validity, clear refusals of missing, corrupt, truncated and foreign input with nothing
# written, no temporary file left; rigor flash printing what it flashed. Prints TAP.
# Needs: sfdisk mkfs.vfat mkfs.ext4 mtools gzip xz zstd bzip2 zip python3.
T=$(mktemp -d /tmp/rigor-image-test-XXXXXX)
. host/tests/tap.sh
export PATH="$PATH:/sbin:/usr/sbin" MTOOLS_SKIP_CHECK=1
export E2FSPROGS_FAKE_TIME=1700000000 SOURCE_DATE_EPOCH=1700000000
trap 'rm -rf "$T"' EXIT
# Every decode goes here: it must be empty after each command.
export TMPDIR=$T/tmp
mkdir -p "$T/tmp" "$T/root/etc" "$T/boot/EFI/BOOT"

# jq-less JSON checks: json FILE PYTHON-EXPR (d is the document) prints the value
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); v=($2); print(repr(v) if isinstance(v, (tuple, list)) else v)" "$1" 2>&1; }
# jcheck FILE PYTHON-EXPR EXPECTED DESCRIPTION
jcheck() {
	got=$(json "$1" "$2")
	if [ "$got" = "$3" ]; then ok "$4"; else echo "# $2: got '$got', want '$3'"; nok "$4"; fi
}
tmp_empty() {
	if [ -z "$(ls -A "$T/tmp")" ]; then ok "$1: no temporary file left"; else ls -la "$T/tmp" | sed 's/^/# /'; nok "$1: no temporary file left"; fi
}

# --- fixture: a 12 MiB GPT image shaped like balenaOS, GRUB EFI, odd strings ---------------
# os-release with quotes, backslashes, a value over two lines and a byte that is not UTF-8.
printf '%s\n' 'ID=fixture-os' 'NAME="Fixture \"OS\" \\ slash"' "PRETTY_NAME='two" "lines'" \
	'VERSION="2.0.1 (odd \"rev\")"' 'VERSION_ID=2.0.1' '# a comment' 'SLUG=genericx86-64' \
	>"$T/root/etc/os-release"
printf 'BAD=\377x\n' >>"$T/root/etc/os-release"
printf 'MZ fake EFI binary: GNU GRUB  version 2.06\n' >"$T/boot/EFI/BOOT/BOOTX64.EFI"
printf '{"slug":"generic\\"x86\\\\64","name":"Generic"}\n' >"$T/boot/device-type.json"
printf '{"uuid":"abc"}\n' >"$T/boot/config.json"
mkimg() { # OUT: GPT, p1 FAT "resin-boot", p2 ext4 "resin-rootA" with an odd file-system label
	truncate -s 12M "$1"
	sfdisk -q "$1" <<EOF
label: gpt
start=1MiB, size=4MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="resin-boot"
size=6MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="resin-rootA"
EOF
	mkfs.vfat -n RESIN-BOOT --offset=2048 "$1" 4096 >/dev/null 2>&1 &&
	mcopy -s -i "$1@@1M" "$T/boot/EFI" "$T/boot/device-type.json" "$T/boot/config.json" ::/ &&
	mkfs.ext4 -q -F -L 'a"b\c' -d "$T/root" -E offset=$((5 * 1048576)) "$1" 6M
}
if ! mkimg "$T/img.img" >"$T/mk.log" 2>&1; then
	echo "1..1"; echo "not ok 1 - build the fixture image"; sed 's/^/# /' "$T/mk.log"; exit 1
fi
cd "$T" || exit 1
gzip -k -n img.img && xz -k -T1 img.img && zstd -q -k img.img && bzip2 -k img.img &&
	zip -q -X img.zip img.img
cd - >/dev/null || exit 1
for f in img.img.gz img.img.xz img.img.zst img.img.bz2 img.zip; do
	cp "$T/$f" "$T/trunc.$f"
	truncate -s $(($(stat -c %s "$T/$f") / 2)) "$T/trunc.$f"
	cp "$T/$f" "$T/bad.$f"
	python3 -c "
import sys
p=sys.argv[1]; b=bytearray(open(p,'rb').read()); i=len(b)//2
for k in range(i, i + 64): b[k]^=0x55
open(p,'wb').write(b)" "$T/bad.$f"
done
RAW=$(stat -c %s "$T/img.img")

# --- every format --------------------------------------------------------------------------
for p in "img.img raw in-place" "img.img.gz gzip temporary-file" "img.img.xz xz temporary-file" \
	"img.img.zst zstd temporary-file" "img.img.bz2 bzip2 temporary-file" "img.zip zip temporary-file"; do
	set -- $p
	f=$1
	run 0 "inspect $f --json" $RIGOR image inspect "$T/$f" --json
	cp "$T/out" "$T/$f.json"
	jcheck "$T/$f.json" 'd["schema"], d["format"], d["decoded"]' "('rigor.image/1', '$2', '$3')" \
		"$f: schema, format $2, decoded $3"
	jcheck "$T/$f.json" 'd["sha256"], d["size"], d["raw_size"]' \
		"('$(sha256sum "$T/$f" | cut -c1-64)', $(stat -c %s "$T/$f"), $RAW)" \
		"$f: sha256 of the file as given, its size and the raw size"
	jcheck "$T/$f.json" 'd["version"], d["os_release"]["partition"], d["bootloader"]["kind"]' \
		"('2.0.1 (odd \"rev\")', 2, 'grub-efi')" "$f: version from os-release of resin-rootA, GRUB EFI"
	jcheck "$T/$f.json" 'd["balena"]["device_type"], d["balena"]["device_type_from"], d["balena"]["config_json"]' \
		"('generic\"x86\\\\64', 'device-type.json', True)" "$f: balena device type and config.json"
	tmp_empty "$f"
done
J=$T/img.img.json
jcheck "$J" '[(p["number"], p["name"], p["fs"], p["type_name"]) for p in d["partition_table"]["partitions"]]' \
	"[(1, 'resin-boot', 'vfat', 'EFI System'), (2, 'resin-rootA', 'ext4', 'Linux filesystem')]" \
	"partitions: numbers, GPT names, file systems, type names"
jcheck "$J" 'd["partition_table"]["type"], d["partition_table"]["partitions"][1]["label"]' \
	"('gpt', 'a\"b\\\\c')" "GPT, and an ext4 label with a quote and a backslash"
jcheck "$J" 'd["os_release"]["fields"]["NAME"]' 'Fixture "OS" \ slash' "os-release: escaped quotes and backslash"
jcheck "$J" 'repr(d["os_release"]["fields"]["PRETTY_NAME"])' "'two\\nlines'" "os-release: a quoted value over two lines"
jcheck "$J" 'd["os_release"]["fields"]["BAD"]' '\xFFx' "os-release: a byte that is not UTF-8 shows as \\xFF"
jcheck "$J" '"VERSION_ID" in d["os_release"]["fields"], "#" in str(d["os_release"]["fields"])' \
	"(True, False)" "os-release: comments skipped"
run 0 "inspect (human)" $RIGOR image inspect "$T/img.img"
has "$T/out" '^version +2\.0\.1 \(odd "rev"\)' "human: version"
has "$T/out" '^bootloader +grub-efi' "human: boot loader"
has "$T/out" 'label a"b\\c' "human: partition label"
has "$T/out" "^sha256 +$(sha256sum "$T/img.img" | cut -c1-64)" "human: sha256"

# --- other shapes ----------------------------------------------------------------------------
# Raspberry Pi firmware on MBR, not balenaOS-shaped, no os-release
truncate -s 8M "$T/rpi.img"
printf 'label: dos\nstart=1MiB, size=6MiB, type=c, bootable\n' | sfdisk -q "$T/rpi.img"
mkfs.vfat -n BOOT --offset=2048 "$T/rpi.img" 6144 >/dev/null 2>&1
printf 'enable_uart=1\n' >"$T/config.txt"
printf 'firmware\n' >"$T/start4.elf"
mcopy -i "$T/rpi.img@@1M" "$T/config.txt" "$T/start4.elf" ::/
run 0 "inspect a Raspberry Pi image" $RIGOR image inspect "$T/rpi.img" --json
cp "$T/out" "$T/rpi.json"
jcheck "$T/rpi.json" 'd["bootloader"]["kind"], d["balena"], d["os_release"], d["version"], d["partition_table"]["type"]' \
	"('raspberrypi', None, None, None, 'dos')" "config.txt + start4.elf: raspberrypi; no balena, no os-release"
# no boot loader at all
truncate -s 4M "$T/plain.img"
printf 'label: dos\nstart=1MiB, type=83\n' | sfdisk -q "$T/plain.img"
run 0 "inspect an image with an empty partition" $RIGOR image inspect "$T/plain.img" --json
jcheck "$T/out" 'd["bootloader"]["kind"], len(d["partition_table"]["partitions"])' "('none', 1)" "no boot code, no loader: none"
if [ -f build/os/rigor-os-1.0.img ]; then
	run 0 "inspect build/os/rigor-os-1.0.img" $RIGOR image inspect build/os/rigor-os-1.0.img --json
	jcheck "$T/out" 'd["bootloader"]["kind"], d["version"], d["os_release"]["fields"]["ID"], d["balena"]["config_json"]' \
		"('grub-efi', '1.0', 'rigor-os', True)" "the test OS: GRUB EFI, version 1.0, rigor-os"
	jcheck "$T/out" '[p["label"] for p in d["partition_table"]["partitions"] if p["label"].startswith("resin-")]' \
		"['resin-boot', 'resin-rootA', 'resin-rootB', 'resin-state', 'resin-data']" "the test OS: resin-* labels"
else
	ok "inspect build/os/rigor-os-1.0.img # SKIP not built (make os-image)"
fi

# --- refusals: clear message, exit 2, nothing written ------------------------------------------
(cd "$T" && sha256sum img.img* img.zip trunc.* bad.* >sums)
for f in img.img.gz img.img.xz img.img.zst img.img.bz2 img.zip; do
	run 2 "truncated $f is refused" $RIGOR image inspect "$T/trunc.$f"
	has "$T/err" "truncated|corrupt|unexpected end" "truncated $f: the message says so"
	tmp_empty "truncated $f"
	run 2 "corrupt $f is refused" $RIGOR image inspect "$T/bad.$f"
	has "$T/err" "corrupt|truncated|invalid|mismatch|damaged" "corrupt $f: the message says so"
	tmp_empty "corrupt $f"
done
if (cd "$T" && sha256sum -c --quiet sums); then ok "the inputs are unchanged"; else nok "the inputs are unchanged"; fi
run 2 "a missing file" $RIGOR image inspect "$T/nosuch.img"
has "$T/err" "'$T/nosuch.img' does not exist" "missing: named"
head -c 2048 /dev/zero | tr '\0' 'a' >"$T/text.img"
run 2 "a text file" $RIGOR image inspect "$T/text.img"
has "$T/err" "looks like a text file" "text: says so"
cp /bin/ls "$T/elf.img" && truncate -s %512 "$T/elf.img"
run 2 "an ELF file" $RIGOR image inspect "$T/elf.img"
has "$T/err" "is an ELF executable, not a disk image" "ELF: says so"
{ printf 'QFI\373\000\000\000\003'; head -c 4088 /dev/zero; } >"$T/q.qcow2"
run 2 "a qcow2 image" $RIGOR image inspect "$T/q.qcow2"
has "$T/err" "QEMU qcow image.*qemu-img convert" "qcow2: says so, and what to do"
head -c 4096 "$T/text.img" | gzip -c >"$T/text.img.gz"
run 2 "text inside gzip" $RIGOR image inspect "$T/text.img.gz"
has "$T/err" "text file \(inside its gzip stream\)" "gzip of text: says so"
tmp_empty "text inside gzip"
truncate -s 1M "$T/zero.img"
run 2 "no partition table" $RIGOR image inspect "$T/zero.img"
has "$T/err" "has no partition table" "no table: says so"
mkfs.ext4 -q -F "$T/bare.img" 2M >/dev/null 2>&1
run 2 "a bare file system" $RIGOR image inspect "$T/bare.img"
has "$T/err" "no partition table: it is a bare ext4 file system" "bare ext4: says what it is"
run 2 "no image given" $RIGOR image inspect
run 2 "unknown action" $RIGOR image frob "$T/img.img"
run 0 "image --help" $RIGOR image --help
has "$T/out" "usage: rigor .*image inspect IMAGE" "help shows the usage"
ls -A "$T" >"$T/after" 2>/dev/null

# --- rigor flash records what it flashed --------------------------------------------------------
truncate -s 16M "$T/card.img"
run 0 "flash --target prints the image" $RIGOR flash "$T/img.img.xz" --target "$T/card.img" --force
has "$T/out" "^image img\.img\.xz: version 2\.0\.1 \(odd \"rev\"\), sha256 $(sha256sum "$T/img.img.xz" | cut -c1-64)" \
	"flash: the image's name, version and sha256"
run 0 "flash --target --json" $RIGOR flash "$T/img.img.zst" --target "$T/card.img" --force --json
jcheck "$T/out" 'd["image"]["format"], d["image"]["decoded"], d["image"]["os_release"]["fields"]["ID"]' \
	"('zstd', 'given', 'fixture-os')" "flash --json: the identity, read from the card written"
tmp_empty "flash"

tap_done
