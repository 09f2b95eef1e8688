# SPDX-License-Identifier: MIT
# The virtual rig: rigfw-sim (rig board) + testcases/virtual/rigor-vboard (a QEMU DUT that
# boots the virtual SD card when powered) + the `socket` console back-end. The test boots
# $(BUILD)/os/rigor-os-1.0.img, so it needs the OS images (testcases/os/os.mk); it SKIPs
# when they could not be built (no kernel download) or without qemu-system-x86_64.
TESTS += testcases/virtual/test-vboard.sh
# os-image-for-test runs `make os-image`, tolerating only a failed kernel download.
TEST_DEPS += $(BUILD)/rigor $(FW_SIM) $(if $(OS_IMAGES),os-image-for-test)
