#!/bin/sh
# SPDX-License-Identifier: MIT
# libblkid reads every image the hand-written partition parser read, the same way: runs
# part_compare (both parsers) over the fuzz seed corpus (each padded to the 64 MiB disk the
# fuzz target makes of it), the images test-flash.sh and `make bench` build
# (bench-flash-mkimage, sfdisk GPT, no table, corrupt GPT headers) and the OS images of
# `make os-image` in $BUILD/os when they are there. Prints TAP.
set -u
BUILD=${BUILD:-build}
CMP=$PWD/$BUILD/tests/flash/part_compare
MKIMAGE=$PWD/scripts/bench-flash-mkimage
T=$(mktemp -d /tmp/rigor-part-blkid-XXXXXX)
trap 'rm -rf "$T"' EXIT
export PATH="$PATH:/sbin:/usr/sbin"

set --
for f in host/tests/fuzz/corpus/part/*; do
	cp "$f" "$T/fuzz-${f##*/}"
	truncate -s 64M "$T/fuzz-${f##*/}"
	set -- "$@" "$T/fuzz-${f##*/}"
done
# the test and bench image (balenaOS-like: MBR, FAT16 resin-boot, ext4 resin-rootA/state)
if "$MKIMAGE" 12 "$T/bench-12M.img" host/tests >"$T/mk.log" 2>&1; then
	set -- "$@" "$T/bench-12M.img"
fi
if "$MKIMAGE" 1024 "$T/bench-1G.img" host/tests >"$T/mk.log" 2>&1; then
	set -- "$@" "$T/bench-1G.img"
fi
# test-flash.sh's GPT, table-less and corrupt images
truncate -s 4M "$T/gpt.img"
printf 'label: gpt\nstart=1MiB, size=1MiB, name="resin-boot"\nsize=1MiB, name=resin-rootA\n' |
	sfdisk -q "$T/gpt.img" >/dev/null 2>&1
head -c 1M /dev/zero >"$T/nopt.img"
cp "$T/gpt.img" "$T/badgpt-primary.img"
printf 'XX' | dd of="$T/badgpt-primary.img" bs=1 seek=$((512 + 40)) conv=notrunc status=none
cp "$T/badgpt-primary.img" "$T/badgpt-both.img"
printf 'XX' | dd of="$T/badgpt-both.img" bs=1 seek=$((4 * 1024 * 1024 - 512 + 40)) conv=notrunc status=none
# an MBR with a bad boot flag, and one with logical partitions
truncate -s 8M "$T/mbr-logical.img"
printf 'start=2048, size=2048, type=c\nstart=4096, size=8192, type=5\nstart=6144, size=2048, type=83\nstart=10240, size=2048, type=83\n' |
	sfdisk -q "$T/mbr-logical.img" >/dev/null 2>&1
cp "$T/mbr-logical.img" "$T/mbr-badflag.img"
printf '\001' | dd of="$T/mbr-badflag.img" bs=1 seek=446 conv=notrunc status=none
set -- "$@" "$T/gpt.img" "$T/nopt.img" "$T/badgpt-primary.img" "$T/badgpt-both.img" \
	"$T/mbr-logical.img" "$T/mbr-badflag.img"
# the hand-made disks of test_flash_unit.c: MBR with logical partitions and a FAT16 boot
# sector, with and without a BPB, and with an EBR chain that points back into itself
python3 - "$T/unit" <<'PY'
import struct, sys
d = bytearray(4096 * 512)
def ent(sect, i, boot, typ, start, n):
    o = sect + 446 + 16 * i
    d[o] = boot; d[o + 4] = typ
    d[o + 8:o + 16] = struct.pack('<II', start, n)
    d[sect + 510:sect + 512] = b'\x55\xaa'
ent(0, 0, 0x80, 0x0c, 64, 512); ent(0, 1, 0, 0x83, 576, 512); ent(0, 2, 0, 5, 1088, 2048)
ent(1088 * 512, 0, 0, 0x83, 32, 256); ent(1088 * 512, 1, 0, 5, 1024, 1024)
ent((1088 + 1024) * 512, 0, 0, 0x83, 32, 512)
f = 64 * 512
d[f + 0x2B:f + 0x3E] = b'RESIN-BOOT FAT16   '
d[f + 510:f + 512] = b'\x55\xaa'
open(sys.argv[1] + '-fat-no-bpb.img', 'wb').write(d)
d[f:f + 11] = b'\xeb\x3c\x90mkfs.fat'
d[f + 0x0B:f + 0x1C] = struct.pack('<HBHBHHBHHH', 512, 1, 1, 2, 16, 512, 0xF8, 2, 32, 2)
d[f + 0x26] = 0x29
open(sys.argv[1] + '-fat.img', 'wb').write(d)
e = (1088 + 1024) * 512
ent(e, 1, 0, 5, 1, 10)
open(sys.argv[1] + '-ebr-loop.img', 'wb').write(d)
PY
set -- "$@" "$T/unit-fat.img" "$T/unit-ebr-loop.img" --differs "a FAT boot sector without a BPB (only the label and 'FAT16' at 0x2B-0x3D, as test_flash_unit.c used to make it) is no FAT to libblkid, nor to mtools ('non DOS media'), so the flash engine could not read or write its files either" "$T/unit-fat-no-bpb.img"
for f in "$BUILD"/os/rigor-os*.img; do
	[ -f "$f" ] && set -- "$@" "$f"
done
exec "$CMP" "$@"
