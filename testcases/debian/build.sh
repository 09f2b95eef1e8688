#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds a small Debian 12 system image, an image rigor did not design (docs/os-image.md,
# "A Debian image"), from Debian packages with mmdebstrap, without loop devices or mounts
# of our own. Called by testcases/debian/debian.mk:
#   build.sh image OUT.img CACHE
# OUT.img: a GPT disk, partition 1 an EFI system partition (FAT16, label DEBIAN-EFI) with
# GRUB as /EFI/BOOT/BOOTX64.EFI (grub-mkstandalone; its built-in grub.cfg loads the kernel
# and initrd from partition 2), partition 2 ext4 labelled debian-root: Debian bookworm,
# systemd, the distribution kernel and initramfs-tools, udev, openssh-server. Root logs
# in on the serial console without a password. CACHE keeps the downloaded .debs so a
# rebuild fetches only the package lists. mmdebstrap runs in root mode (its own mounts of
# /proc, /sys and /dev in the tree while the packages install): run as root.
# Settings from the environment: DEBIAN_SUITE (bookworm), DEBIAN_MIRROR
# (http://deb.debian.org/debian), DEBIAN_HOSTNAME (debian).
set -eu
export MTOOLS_SKIP_CHECK=1
LC_ALL=C
export LC_ALL

die() {
	echo "debian/build.sh: $*" >&2
	exit 1
}

# The packages beyond the minbase variant (Essential: yes and apt).
PKGS="systemd-sysv udev kmod linux-image-amd64 initramfs-tools zstd openssh-server procps
iproute2 curl"

# The kernel modules of hardware a virtio machine does not have (about half the kernel's
# 400 MB). dpkg matches the package's own paths (/lib/modules in bookworm's packages).
# Documentation and translations stay: with /usr/share/doc/* left out, dpkg still writes
# the changelog.Debian.amd64.gz of Multi-Arch: same packages (libcom-err2) and fails.
EXCLUDES="/lib/modules/*/kernel/drivers/gpu/* /lib/modules/*/kernel/sound/*
/lib/modules/*/kernel/drivers/net/wireless/* /lib/modules/*/kernel/drivers/media/*
/lib/modules/*/kernel/drivers/infiniband/* /lib/modules/*/kernel/drivers/staging/*
/lib/modules/*/kernel/drivers/net/ethernet/* /lib/modules/*/kernel/drivers/isdn/*
/lib/modules/*/kernel/drivers/bluetooth/* /lib/modules/*/kernel/net/bluetooth/*
/lib/modules/*/kernel/drivers/iio/* /lib/modules/*/kernel/drivers/hid/*
/lib/modules/*/kernel/drivers/input/* /lib/modules/*/kernel/drivers/usb/*
/lib/modules/*/kernel/drivers/scsi/* /lib/modules/*/kernel/fs/*
/lib/modules/*/kernel/net/wireless/* /lib/modules/*/kernel/net/mac80211/*"
# ... but keep the file systems the image uses (fs/ext4, its jbd2 and mbcache; fat, nls)
INCLUDES="/lib/modules/*/kernel/fs/ext4/* /lib/modules/*/kernel/fs/jbd2/*
/lib/modules/*/kernel/fs/mbcache.ko /lib/modules/*/kernel/fs/fat/* /lib/modules/*/kernel/fs/nls/*"

# The initramfs holds only what finds and mounts the root partition on a virtio disk
# (MODULES=most would put 1500 modules in it; MODULES=dep cannot look at a tree).
INITRAMFS_HOOK='#!/bin/sh
# rigor debian image: the modules that find and mount debian-root on a virtio disk
[ "$1" = prereqs ] && exit 0
. /usr/share/initramfs-tools/hook-functions
manual_add_modules virtio_pci virtio_blk ext4 crc32c_generic
'

cmd_image() {
	img=$1 cache=$2
	: "${DEBIAN_SUITE:=bookworm}" "${DEBIAN_MIRROR:=http://deb.debian.org/debian}"
	: "${DEBIAN_HOSTNAME:=debian}"
	[ "$(id -u)" = 0 ] || die "run as root: mmdebstrap installs the packages in root mode"
	command -v mmdebstrap >/dev/null || die "mmdebstrap not installed (scripts/install-deps)"
	command -v grub-mkstandalone >/dev/null || die "grub-mkstandalone not installed (grub-common)"
	[ -d /usr/lib/grub/x86_64-efi ] || die "no /usr/lib/grub/x86_64-efi (grub-efi-amd64-bin)"
	command -v mcopy >/dev/null || die "mcopy not installed (mtools)"

	mkdir -p "$cache"
	cache=$(cd "$cache" && pwd)
	work=$img.d
	root=$work/root
	# mmdebstrap unmounts /proc, /sys and /dev in the tree when it ends, also on failure;
	# a tree left mounted by a killed run must not be deleted through its mounts
	if [ -d "$work" ] && awk -v w="$(cd "$work" && pwd -P)/" 'index($2, w) == 1 { f = 1 } END { exit !f }' /proc/mounts; then
		die "file systems still mounted under $work (a killed build?): umount them, then rebuild"
	fi
	rm -rf "$work" "$img.tmp" && mkdir -p "$work/esp/EFI/BOOT"

	set --
	for p in $EXCLUDES; do set -- "$@" --dpkgopt="path-exclude=$p"; done
	for p in $INCLUDES; do set -- "$@" --dpkgopt="path-include=$p"; done
	pkgs=$(echo $PKGS | tr ' ' ,)
	# The .debs come from and go back to CACHE (mmdebstrap(1), "sync-in"/"sync-out").
	# The fstab and initramfs settings go in before the packages so that the
	# kernel's postinst builds the small initramfs once.
	mmdebstrap --mode=root --variant=minbase --include="$pkgs" \
		--aptopt='Acquire::Retries "3"' "$@" \
		--skip=download/empty --skip=essential/unlink \
		--setup-hook='mkdir -p "$1/var/cache/apt/archives"' \
		--setup-hook="sync-in '$cache' /var/cache/apt/archives/" \
		--essential-hook='printf "LABEL=debian-root / ext4 errors=remount-ro 0 1\n" >"$1/etc/fstab"' \
		--essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/etc/initramfs-tools/hooks"' \
		--essential-hook='printf "MODULES=list\nCOMPRESS=zstd\n" >"$1/etc/initramfs-tools/conf.d/rigor.conf"' \
		--essential-hook="printf '%s' '$INITRAMFS_HOOK' >\"\$1/etc/initramfs-tools/hooks/rigor-virtio\"" \
		--essential-hook='chmod 755 "$1/etc/initramfs-tools/hooks/rigor-virtio"' \
		--customize-hook="sync-out /var/cache/apt/archives '$cache'" \
		--customize-hook='chroot "$1" passwd -d root' \
		--customize-hook="echo '$DEBIAN_HOSTNAME' >\"\$1/etc/hostname\"" \
		--customize-hook="printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' '$DEBIAN_HOSTNAME' >\"\$1/etc/hosts\"" \
		--customize-hook='mkdir -p "$1/etc/systemd/network"' \
		--customize-hook='printf "[Match]\nName=en*\n\n[Network]\nDHCP=yes\n" >"$1/etc/systemd/network/20-wired.network"' \
		--customize-hook='chroot "$1" systemctl enable systemd-networkd.service' \
		--customize-hook='rm -f "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*_Packages*' \
		"$DEBIAN_SUITE" "$root" "$DEBIAN_MIRROR" ||
		die "mmdebstrap failed (no network? see its output above)"

	kver=$(cd "$root/boot" && ls vmlinuz-* | sed 's/^vmlinuz-//' | sort -V | tail -n 1)
	[ -n "$kver" ] || die "no kernel in $root/boot"
	[ -s "$root/boot/initrd.img-$kver" ] || die "no initrd for $kver in $root/boot"

	# GRUB reads its config from inside the binary: the kernel and initrd of partition 2 of
	# the disk it was loaded from ($cmdpath, e.g. (hd0,gpt1)/EFI/BOOT), so no other disk
	# (the board's internal one) can be picked by mistake.
	cat >"$work/grub.cfg" <<EOF
set timeout=0
regexp --set=1:bootdisk '^\\(([^,)]+)' "\$cmdpath"
set root=(\$bootdisk,gpt2)
echo "debian-grub: booting \$root"
linux /boot/vmlinuz-$kver root=LABEL=debian-root ro console=ttyS0,115200 panic=-1
initrd /boot/initrd.img-$kver
boot
EOF
	mods="part_gpt fat ext2 regexp linux echo normal test"
	grub-mkstandalone -O x86_64-efi -o "$work/esp/EFI/BOOT/BOOTX64.EFI" \
		--modules="$mods" --install-modules="$mods" --locales= --fonts= --themes= \
		"boot/grub/grub.cfg=$work/grub.cfg" || die "grub-mkstandalone failed"

	# root: what the tree holds, a quarter more and 128 MiB to write in (logs, apt)
	used=$(du -sm "$root" | cut -f1)
	rootmib=$((used + used / 4 + 128))
	# The layout is fixed, so the offsets are known without reading the table back: the
	# ESP at 1 MiB, the root right after it, 1 MiB at the end for GPT's backup copy.
	espmib=32
	esp=2048 rootstart=$((2048 + espmib * 2048))
	total=$((1 + espmib + rootmib + 1))
	truncate -s "${total}M" "$img.tmp"
	sfdisk -q --no-tell-kernel --no-reread "$img.tmp" >/dev/null <<EOF || die "sfdisk failed"
label: gpt
unit: sectors
start=$esp, size=${espmib}MiB, type=U, name="EFI system"
start=$rootstart, size=${rootmib}MiB, type=L, name="debian-root"
EOF
	# the table must say what the file systems below assume
	sfdisk -d "$img.tmp" | grep -q "start= *$rootstart, size= *$((rootmib * 2048))," ||
		die "partition 2 is not at sector $rootstart with $rootmib MiB: $(sfdisk -d "$img.tmp")"
	# (mkfs.vfat warns that the file is larger than the file system it makes)
	mkfs.vfat --offset "$esp" -F 16 -n DEBIAN-EFI "$img.tmp" $((espmib * 1024)) >/dev/null 2>&1 ||
		die "mkfs.vfat failed"
	mcopy -s -i "$img.tmp@@$((esp * 512))" "$work/esp/EFI" ::/ || die "mcopy failed"
	mkfs.ext4 -q -F -E offset=$((rootstart * 512)) -L debian-root -d "$root" \
		"$img.tmp" $((rootmib * 1024))k || die "mkfs.ext4 debian-root failed"
	dver=$(cat "$root/etc/debian_version")
	rm -rf "$work"
	mv "$img.tmp" "$img"
	echo "debian/build.sh: $img: Debian $dver, kernel $kver, $total MiB (root: $used MiB used of $rootmib)"
}

sub=${1:-}
[ $# -gt 0 ] && shift
case $sub in
image) cmd_image "$@" ;;
*) die "usage: build.sh image OUT.img CACHE" ;;
esac
