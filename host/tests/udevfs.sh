# SPDX-License-Identifier: MIT
# Shared by the shell tests that match devices by USB identity: a fake /sys that libudev
# accepts (a uevent file and a subsystem link in each device directory, as the kernel
# lays them out), read through umockdev's preload. Source it after tap.sh.
#
#   udev_usbdev DIR [UEVENT...]      DIR is a USB device (idVendor... are the caller's files)
#   udev_usbif DIR NUM               DIR is USB interface NUM
#   udev_node ROOT CLASS NAME DEVDIR [UEVENT...]
#                                    /sys/class/CLASS/NAME -> DEVDIR, a class device
#   $(udev_env ROOT) CMD...          run CMD with libudev reading ROOT/sys
# ASan (make test SAN=1) accepts the preload ahead of its runtime only with
# verify_asan_link_order=0.
udev_dev() {
	dir=$1 sub=$2
	shift 2
	mkdir -p "$dir"
	: >"$dir/uevent"
	for l in "$@"; do printf '%s\n' "$l" >>"$dir/uevent"; done
	ln -sfn "/sys/$sub" "$dir/subsystem"
}
udev_usbdev() { d=$1; shift; udev_dev "$d" bus/usb DEVTYPE=usb_device "$@"; }
udev_usbif() { udev_dev "$1" bus/usb DEVTYPE=usb_interface; printf '%s\n' "$2" >"$1/bInterfaceNumber"; }
udev_node() {
	r=$1 cls=$2 name=$3 devdir=$4
	shift 4
	mkdir -p "$r/sys/class/$cls"
	udev_dev "$r/sys/devices/$devdir" "class/$cls" "$@"
	ln -sfn "../../devices/$devdir" "$r/sys/class/$cls/$name"
}
udev_env() {
	echo "env LD_PRELOAD=libumockdev-preload.so.0${LD_PRELOAD:+:$LD_PRELOAD} UMOCKDEV_DIR=$1" \
		"ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
}
