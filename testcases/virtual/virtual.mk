# SPDX-License-Identifier: MIT
# The virtual rig: rigfw-sim (rig board) + testcases/virtual/rigor-vboard (a QEMU DUT that
# powers on into OVMF, which boots the virtual SD card's or the internal disk's GRUB) + the
# `socket` console back-end. docs/virtual-rig.md. The tests boot $(BUILD)/os/rigor-os-1.0.img
# and rigor-os-flasher-1.0.img, so they need the OS images (testcases/os/os.mk); they SKIP
# when they could not be built (no kernel download), without qemu-system-x86_64 or OVMF.
#   test-vboard-fake.sh the board's own logic with a fake QEMU (no QEMU, OVMF or OS image):
#                     power cycles while QEMU starts, the mux interlock, unread console
#                     input, QMP RESET events, the watchdog (--watchdog-ms), signals
#   test-vboard.sh    the board with the OS: interlock, blank card, power cut mid-boot,
#                     strap and disk serials, GRUB slot A/B flipped in the guest, reboot is
#                     a reset, power-off halts, console reconnect, the watchdog resetting a
#                     hung guest, the unattended rollback (altboot), SIGTERM
#   test-console-pty.sh `rigor console` under a pseudo-terminal while `rigor --wait 5 power
#                     cycle` runs in another process: the board boots the card to its login
#                     prompt on the pty, a login and a command there, Ctrl-] quits
#   test-two-rigs.sh  rigs/virtual.lua and rigs/virtual-2.lua at once (scripts/virtual-rig),
#                     testcases/flasher.lua on both concurrently
#   test-ssh.sh       testcases/ssh.lua on rigs/virtual.lua: SSH in production and development
#                     mode (config.json os.sshKeys, developmentMode), uplink cut and restore
TESTS += testcases/virtual/test-vboard-fake.sh testcases/virtual/test-vboard.sh \
	testcases/virtual/test-two-rigs.sh testcases/virtual/test-console-pty.sh \
	testcases/virtual/test-ssh.sh
# os-image-for-test runs `make os-image`, tolerating only a failed kernel download.
TEST_DEPS += $(BUILD)/rigor $(FW_SIM) $(if $(OS_IMAGES),os-image-for-test)
