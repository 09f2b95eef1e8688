#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds the pieces of the rigor test OS without root or loop devices (docs/os-image.md).
# Called by testcases/os/os.mk:
#   build.sh kernel CACHE OUT         fetch linux-image-6.1*-amd64, chrony and udev (apt-get
#                                     download, cached) and extract OUT/vmlinuz,
#                                     OUT/modules/*.ko, OUT/chrony/usr/{sbin/chronyd,bin/chronyc}
#                                     and OUT/udev/{bin/udevadm,lib/udev/rules.d/*}
#   build.sh initrd KERNEL OUT.img    busybox-static + e2fsck-static + modules + initramfs/init
#   build.sh image OUT.img VERSION KERNEL INITRD AGENT [flasher PAYLOAD.img]
#                                     a UEFI A/B disk image: GRUB (grub-mkstandalone) as
#                                     /EFI/BOOT/BOOTX64.EFI on resin-boot, grub.cfg + grubenv
#                                     choose the root slot, kernel and initrd in the slot's
#                                     /boot; an OS image also gives its host OS update
#                                     payload OUT-rootfs.img.gz (+ .sha256; docs/hup.md)
# Image settings come from the environment: OS_SLUG, OS_MACHINE, OS_API_ENDPOINT,
# OS_APP_ID, OS_USER_ID, OS_PROVISIONING_KEY, OS_HOSTNAME, OS_REPORT_INTERVAL, OS_SIZE_MIB.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
export MTOOLS_SKIP_CHECK=1

# Dependency order (the .deb has no modules.dep; checked with the modules' depends= tags).
MODULES="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk
failover net_failover virtio_net fat vfat nls_cp437 nls_ascii crc16 mbcache jbd2
crc32c_generic ext4 zsmalloc zram"

die() {
	echo "build.sh: $*" >&2
	exit 1
}

# fetch_deb CACHE GLOB PACKAGE: the newest CACHE/GLOB, downloaded with apt-get once
# (FETCH-FAILED in CACHE tells the image tests to skip: no network).
fetch_deb() {
	deb=$(ls "$1"/$2 2>/dev/null | sort -V | tail -n 1 || true)
	if [ -z "$deb" ]; then
		echo "build.sh: apt-get download $3 into $1" >&2
		if ! (cd "$1" && apt-get download "$3" >download.log 2>&1); then
			cat "$1/download.log" >&2
			touch "$1/FETCH-FAILED"
			die "cannot download $3 (no network?)"
		fi
		rm -f "$1/FETCH-FAILED"
		deb=$(ls "$1"/$2 | sort -V | tail -n 1)
	fi
	echo "$deb"
}

cmd_kernel() {
	cache=$1 out=$2
	mkdir -p "$cache"
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-6\.1[^ ]*-amd64\)$/\1/p' | head -n 1)
	[ -n "$pkg" ] || pkg=linux-image-6.1.0-56-amd64
	deb=$(fetch_deb "$cache" 'linux-image-6.1*-amd64_*.deb' "$pkg")
	# chrony, balenaOS's NTP client (config.json ntpServers): only its programs are used,
	# the libraries come from the build machine (add_debian)
	chrony=$(fetch_deb "$cache" 'chrony_*_amd64.deb' chrony)
	# udev, for device links and config.json os.udevRules: udevadm (also systemd-udevd) and
	# the rules for block devices; not the network-naming rules (eth0 stays eth0)
	udev=$(fetch_deb "$cache" 'udev_*_amd64.deb' udev)
	rm -rf "$out.tmp" && mkdir -p "$out.tmp/x" "$out.tmp/modules"
	pats=
	for m in $MODULES; do pats="$pats */$m.ko"; done
	# shellcheck disable=SC2086
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$out.tmp/x" --wildcards './boot/vmlinuz-*' $pats
	cp "$out.tmp"/x/boot/vmlinuz-* "$out.tmp/vmlinuz"
	: >"$out.tmp/modules/order"
	for m in $MODULES; do
		f=$(find "$out.tmp/x/lib/modules" -name "$m.ko" | head -n 1)
		[ -n "$f" ] || die "module $m not in $deb"
		cp "$f" "$out.tmp/modules/"
		echo "$m" >>"$out.tmp/modules/order"
	done
	basename "$out.tmp"/x/boot/vmlinuz-* | sed 's/^vmlinuz-//' >"$out.tmp/release"
	mkdir -p "$out.tmp/chrony"
	dpkg-deb --fsys-tarfile "$chrony" | tar -x -C "$out.tmp/chrony" ./usr/sbin/chronyd ./usr/bin/chronyc
	[ -x "$out.tmp/chrony/usr/sbin/chronyd" ] || die "no chronyd in $chrony"
	mkdir -p "$out.tmp/udev"
	dpkg-deb --fsys-tarfile "$udev" | tar -x -C "$out.tmp/udev" ./bin/udevadm \
		./lib/udev/rules.d/50-udev-default.rules ./lib/udev/rules.d/60-block.rules \
		./lib/udev/rules.d/60-persistent-storage.rules
	[ -x "$out.tmp/udev/bin/udevadm" ] || die "no udevadm in $udev"
	rm -rf "$out.tmp/x" "$out"
	mv "$out.tmp" "$out"
	echo "build.sh: kernel $(cat "$out/release") from $(basename "$deb"), chrony from $(basename "$chrony")"
}

cmd_initrd() {
	kdir=$1 out=$2
	bb=/bin/busybox
	[ -x "$bb" ] || die "busybox (busybox-static) not installed"
	LC_ALL=C ldd "$bb" 2>&1 | grep -q 'not a dynamic' || die "$bb is not static: install busybox-static"
	st=$out.d
	rm -rf "$st" && mkdir -p "$st/bin" "$st/lib/modules" "$st/proc" "$st/sys" "$st/dev" "$st/newroot"
	cp "$bb" "$st/bin/busybox"
	# the initramfs checks the ext4 partitions before it mounts them, as balenaOS does
	[ -x /sbin/e2fsck.static ] || die "/sbin/e2fsck.static not installed (e2fsck-static)"
	cp /sbin/e2fsck.static "$st/bin/e2fsck"
	cp "$kdir"/modules/*.ko "$kdir/modules/order" "$st/lib/modules/"
	cp "$HERE/initramfs/init" "$st/init"
	chmod 755 "$st/init" "$st/bin/busybox"
	(cd "$st" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -9n) >"$out.tmp"
	mv "$out.tmp" "$out"
	rm -rf "$st"
}

# rootfs DIR VERSION AGENT KERNELDIR: resin-rootA contents.
make_rootfs() {
	r=$1 ver=$2 agent=$3 kd=$4
	rm -rf "$r" && mkdir -p "$r"
	(cd "$HERE/rootfs" && tar -cf - .) | (cd "$r" && tar -xf - --no-same-owner)
	mkdir -p "$r/bin" "$r/sbin" "$r/usr/bin" "$r/usr/sbin" "$r/dev" "$r/proc" "$r/sys" \
		"$r/tmp" "$r/run" "$r/root" "$r/mnt/boot" "$r/mnt/state" "$r/mnt/data" "$r/var"
	bb=/bin/busybox
	cp "$bb" "$r/bin/busybox"
	for a in $("$bb" --list-full); do
		[ -e "$r/$a" ] || ln -s /bin/busybox "$r/$a"
	done
	install -m 755 "$agent" "$r/usr/bin/rigor-agent"
	add_debian "$r" /usr/sbin/dropbear /usr/bin/dropbearkey /sbin/tune2fs \
		"$kd/chrony/usr/sbin/chronyd:/usr/sbin/chronyd" "$kd/chrony/usr/bin/chronyc:/usr/bin/chronyc" \
		"$kd/udev/bin/udevadm:/bin/udevadm"
	mkdir -p "$r/lib/udev/rules.d" "$r/lib/systemd"
	cp "$kd"/udev/lib/udev/rules.d/*.rules "$r/lib/udev/rules.d/"
	ln -s /bin/udevadm "$r/lib/systemd/systemd-udevd"
	# what config.json sets at boot lives in /run (the root is read-only): rigor-init
	# writes the hostname and the resolver's servers there; /var/log is /run/log, or
	# resin-state's log directory with persistentLogging (docs/os-image.md)
	ln -s /run/hostname "$r/etc/hostname"
	ln -s /run/resolv.conf "$r/etc/resolv.conf"
	ln -s /run/log "$r/var/log"
	cat >"$r/etc/os-release" <<EOF
ID="rigor-os"
NAME="Rigor OS"
VERSION="$ver"
VERSION_ID="$ver"
PRETTY_NAME="Rigor OS $ver"
MACHINE="$OS_MACHINE"
SLUG="$OS_SLUG"
META_BALENA_VERSION="$ver"
RIGOR_AGENT_VERSION="rigor-agent 0.1"
EOF
	# as balenaOS: NAME and VERSION, and getty's hostname/line escapes in /etc/issue
	printf 'Rigor OS %s \\n \\l\n\n' "$ver" >"$r/etc/issue"
	printf 'Rigor OS %s\n' "$ver" >"$r/etc/issue.net"
}

# add_debian ROOTDIR PROGRAM[:PATH]...: Debian's programs (at PATH in the image, default
# where they are) with the shared libraries they load, at the paths the host's loader found
# them (ldd), so the image's /lib64/ld-linux-x86-64.so.2 finds them the same way: the
# dropbear SSH server (dropbear-bin; rigor-init starts it, docs/os-image.md "SSH"),
# tune2fs (e2fsprogs; balena's fsck check reads the file systems' state with it), chrony
# (config.json ntpServers) and udevadm (udev).
add_debian() {
	dst=$1
	shift
	for spec in "$@"; do
		b=${spec%%:*} to=${spec#*:}
		[ -x "$b" ] || die "$b not installed (dropbear-bin, e2fsprogs)"
		install -D -m 755 "$b" "$dst$to"
		# "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
		for lib in $(LC_ALL=C ldd "$b" | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) .*/\1/p'); do
			# 755: the loader (ld-linux) must be executable for the kernel to map it
			[ -e "$dst$lib" ] || install -D -m 755 "$(readlink -f "$lib")" "$dst$lib"
		done
	done
	# the password database through the files back-end (built into glibc 2.36 libc, kept
	# for older ones)
	for lib in /lib/x86_64-linux-gnu/libnss_files.so.2; do
		[ ! -e "$lib" ] || [ -e "$dst$lib" ] || install -D -m 644 "$(readlink -f "$lib")" "$dst$lib"
	done
}

cmd_image() {
	img=$1 ver=$2 kdir=$3 initrd=$4 agent=$5 mode=${6:-normal} payload=${7:-}
	: "${OS_SLUG:=qemux86-64}" "${OS_MACHINE:=$OS_SLUG}"
	: "${OS_API_ENDPOINT:=http://10.0.2.2:48484}" "${OS_APP_ID:=1}" "${OS_USER_ID:=1}"
	: "${OS_PROVISIONING_KEY:=rigorProvisioningKey00000000000000}"
	: "${OS_HOSTNAME:=}" "${OS_REPORT_INTERVAL:=5}" "${OS_SIZE_MIB:=192}"
	# each root slot carries its kernel and initrd (24 + 10 MB of boot files)
	rootsize=40
	if [ "$mode" = flasher ]; then
		lb=flash
		args="rigor.flasher=1 rigor.target=/dev/vdb"
	else
		lb=resin
		args=
	fi
	work=$img.d
	rm -rf "$work" "$img.tmp" && mkdir -p "$work/boot" "$work/state" "$work/data" "$work/empty"
	make_rootfs "$work/root" "$ver" "$agent" "$kdir"

	# resin-boot contents: GRUB, its grub.cfg and grubenv; the kernel is in the root slot.
	b=$work/boot
	make_efi_boot "$b" "$work/root" "$kdir" "$initrd" "$lb" "$args"
	cp "$work/root/etc/os-release" "$b/os-release"
	host=
	[ -n "$OS_HOSTNAME" ] && host="  \"hostname\": \"$OS_HOSTNAME\","
	cat >"$b/config.json" <<EOF
{
  "applicationId": $OS_APP_ID,
  "deviceType": "$OS_SLUG",
  "userId": $OS_USER_ID,
  "apiEndpoint": "$OS_API_ENDPOINT",
  "apiKey": "$OS_PROVISIONING_KEY",$host
  "listenPort": 48484,
  "appUpdatePollInterval": 600000,
  "rigorReportInterval": $OS_REPORT_INTERVAL,
  "persistentLogging": false
}
EOF
	cat >"$b/device-type.json" <<EOF
{"slug": "$OS_SLUG", "name": "rigor test OS on $OS_SLUG", "arch": "amd64",
 "yocto": {"machine": "$OS_MACHINE", "fstype": "balenaos-img", "deployArtifact": "$(basename "$img")"},
 "configuration": {"config": {"partition": 1, "path": "/config.json"}}}
EOF
	echo "$(basename "$img" .img)" >"$b/image-version-info"
	if [ "$mode" = flasher ]; then : >"$b/balena-image-flasher"; else : >"$b/balena-image"; fi
	if [ -n "$payload" ]; then
		gzip -1nc "$payload" >"$work/data/$(basename "$payload").gz"
	fi

	# balenaOS's reset flags (purge-data: a partition without its flag is emptied at boot)
	: >"$work/state/remove_me_to_reset"
	: >"$work/data/remove_me_to_reset"
	# balenaOS's /balenaos.fingerprint: the md5 of every file of the read-only root, which
	# `md5sum -c` checks on the device (balena os suite "fingerprint")
	(cd "$work/root" && find . -type f ! -name balenaos.fingerprint | LC_ALL=C sort |
		sed 's|^\./||' | xargs md5sum | sed 's|  |  /|') >"$work/fingerprint"
	mv "$work/fingerprint" "$work/root/balenaos.fingerprint"

	# The root file system once, as a file: it goes into slot A and, for an OS image, is
	# the host OS update payload (IMG without .img, + -rootfs.img.gz; docs/hup.md).
	: >"$work/rootfs.img"
	mkext "$work/rootfs.img" 0 $((rootsize * 2048)) "$lb-rootA" "$work/root"

	# MBR like balenaOS: 1 boot (FAT16, bootable), 2 rootA, 3 rootB, 4 extended, 5 state, 6 data.
	truncate -s "${OS_SIZE_MIB}M" "$img.tmp"
	sfdisk -q --no-tell-kernel --no-reread "$img.tmp" >/dev/null <<EOF
label: dos
unit: sectors
start=2048, size=40MiB, type=e, bootable
size=${rootsize}MiB, type=83
size=${rootsize}MiB, type=83
type=5
size=8MiB, type=83
type=83
EOF
	# "IMG.tmp5 : start= 231424, size= 16384, type=83" -> "5 231424 16384"
	sfdisk -d "$img.tmp" | sed -n 's/^[^ ]*[^0-9]\([0-9]\+\) : start= *\([0-9]\+\), size= *\([0-9]\+\).*/\1 \2 \3/p' >"$work/parts"
	while read -r n start size; do
		case $n in
		1) mkfs.vfat --offset "$start" -F 16 -n "$lb-boot" "$img.tmp" $((size / 2)) >/dev/null 2>&1 ||
			die "mkfs.vfat failed"
		   mcopy -s -i "$img.tmp@@$((start * 512))" "$b"/* ::/ ;;
		2) dd if="$work/rootfs.img" of="$img.tmp" bs=512 seek="$start" conv=notrunc status=none ||
			die "writing $lb-rootA failed" ;;
		3) mkext "$img.tmp" "$start" "$size" "$lb-rootB" "$work/empty" ;;
		5) mkext "$img.tmp" "$start" "$size" "$lb-state" "$work/state" journal ;;
		6) mkext "$img.tmp" "$start" "$size" "$lb-data" "$work/data" journal ;;
		esac
	done <"$work/parts"
	if [ "$mode" != flasher ]; then
		p=${img%.img}-rootfs.img.gz
		gzip -6nc "$work/rootfs.img" >"$p.tmp" && mv "$p.tmp" "$p"
		(cd "$(dirname "$p")" && sha256sum "$(basename "$p")") >"$p.sha256"
	fi
	rm -rf "$work"
	mv "$img.tmp" "$img"
}

# make_efi_boot BOOTDIR ROOTDIR KERNEL INITRD LABELPREFIX ARGS: the boot files. The kernel
# and initrd go into the root slot (ROOTDIR/boot), as on balenaOS's x86 images; the boot
# partition holds GRUB (standalone: its modules are built in), its grub.cfg and the
# environment (grubenv) that picks the slot and counts boots. The root slots are
# LABELPREFIX-rootA/B; ARGS go on the kernel command line (the flasher's).
make_efi_boot() {
	eb=$1 er=$2
	command -v grub-mkstandalone >/dev/null || die "grub-mkstandalone not installed (grub-common)"
	command -v grub-editenv >/dev/null || die "grub-editenv not installed (grub-common)"
	[ -d /usr/lib/grub/x86_64-efi ] || die "no /usr/lib/grub/x86_64-efi (grub-efi-amd64-bin)"
	mkdir -p "$er/boot" "$eb/EFI/BOOT"
	cp "$3/vmlinuz" "$er/boot/vmlinuz"
	cp "$4" "$er/boot/initrd.img"
	# GRUB's built-in config only hands over to the one next to BOOTX64.EFI on the disk
	# the firmware loaded it from ($cmdpath, for example (hd0,msdos1)/EFI/BOOT).
	printf '%s\n' 'set bootdir=$cmdpath' 'export bootdir' 'configfile $bootdir/grub.cfg' \
		>"$work/embedded.cfg"
	mods="part_msdos fat ext2 loadenv regexp test linux echo configfile normal sleep reboot"
	grub-mkstandalone -O x86_64-efi -o "$eb/EFI/BOOT/BOOTX64.EFI" \
		--modules="$mods" --install-modules="$mods" --locales= --fonts= --themes= \
		"boot/grub/grub.cfg=$work/embedded.cfg" || die "grub-mkstandalone failed"
	sed -e "s|@LABEL@|$5|g" -e "s|@ARGS@|${6:+ $6}|g" "$HERE/efi/grub.cfg" >"$eb/EFI/BOOT/grub.cfg"
	grub-editenv "$eb/EFI/BOOT/grubenv" create
	grub-editenv "$eb/EFI/BOOT/grubenv" set resin_root_part=A upgrade_available=0 bootcount=0
	printf '# rigor test OS %s (%s), UEFI A/B: firmware -> /EFI/BOOT/BOOTX64.EFI (GRUB) -> grub.cfg + grubenv\n' \
		"$ver" "$OS_SLUG" >"$eb/config.txt"
}

# mkext IMG START SECTORS LABEL DIR [journal]
mkext() {
	# -E root_owner: files as root even when built by a user; no loop device needed.
	# No metadata_csum: rigor-hup rewrites the label of the root slot it wrote (an update
	# payload is labelled for slot A) with dd, which a superblock checksum would forbid.
	# The read-only root slots need no journal; state and data are written at run time and
	# have one, as on balenaOS: a power cut costs a journal replay, and a mounted one
	# reads "clean" (without a journal the kernel marks it not clean while mounted).
	feat=^has_journal,^metadata_csum
	[ "${6:-}" = journal ] && feat=has_journal,^metadata_csum
	mkfs.ext4 -q -F -E offset=$(($2 * 512)),root_owner=0:0 -L "$4" -d "$5" \
		-O "$feat" -T small -m 0 "$1" $(($3 / 2))k || die "mkfs.ext4 $4 failed"
}

sub=${1:-}
[ $# -gt 0 ] && shift
case $sub in
kernel) cmd_kernel "$@" ;;
initrd) cmd_initrd "$@" ;;
image) cmd_image "$@" ;;
*) die "usage: build.sh kernel|initrd|image ..." ;;
esac
