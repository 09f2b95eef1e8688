# SPDX-License-Identifier: MIT
# The virtual rig: rigfw-sim (rig board) + testcases/virtual/rigor-vboard (a QEMU DUT that
# boots the virtual SD card, or its internal disk, when powered) + the `socket` console
# back-end. docs/virtual-rig.md. The tests boot $(BUILD)/os/rigor-os-1.0.img and
# rigor-os-flasher-1.0.img, so they need the OS images (testcases/os/os.mk); they SKIP
# when they could not be built (no kernel download) or without qemu-system-x86_64.
#   test-vboard.sh    the board alone: ROM errors, boot, power cut mid-boot, console, SIGTERM
#   test-two-rigs.sh  rigs/virtual.lua and rigs/virtual-2.lua at once (scripts/virtual-rig),
#                     testcases/flasher.lua on both concurrently
#   test-vboard-rom.sh the board's own logic with a fake QEMU (no OS image needed): power
#                     cycles during the ROM read, unread console input, signals
#   test-vboard-efi.sh --firmware ovmf with rigor-os-efi-1.0.img (make os-image-efi): OVMF,
#                     GRUB, grubenv slot A/B, a guest reboot is a reset, the trial fallback;
#                     SKIPs without OVMF or the EFI image
TESTS += testcases/virtual/test-vboard-rom.sh testcases/virtual/test-vboard.sh \
	testcases/virtual/test-two-rigs.sh testcases/virtual/test-vboard-efi.sh
# os-image-for-test runs `make os-image`, tolerating only a failed kernel download.
TEST_DEPS += $(BUILD)/rigor $(FW_SIM) $(if $(OS_IMAGES),os-image-for-test)
