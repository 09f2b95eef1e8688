# SPDX-License-Identifier: MIT
# A Debian 12 image, one rigor did not design (docs/os-image.md, "A Debian image").
#
#   make debian-image  $(DEBIAN_IMAGE): Debian bookworm from Debian packages (mmdebstrap,
#                      as root), systemd, the distribution kernel, GRUB EFI, openssh-server
#   make demo-debian   boots it on the virtual rig and runs testcases/os.lua against it;
#                      prints the verdict and the seconds from `rigor run` to the verdict,
#                      always stops the rig. Reports in $(BUILD)/demo-debian/, rig logs in
#                      $(DEMO_DEBIAN_DIR) (console.log, vboard.log)
#
# The .debs are downloaded once into $(DEBIAN_CACHE) and re-used; the package lists are
# fetched on every build. Not part of `make test` (root, the network and QEMU).

DEBIAN_DIR   := $(BUILD)/debian
DEBIAN_CACHE ?= build/debian-cache
DEBIAN_IMAGE := $(DEBIAN_DIR)/debian-12.img

.PHONY: debian-image demo-debian
debian-image: $(DEBIAN_IMAGE)

$(DEBIAN_IMAGE): testcases/debian/build.sh
	@mkdir -p $(@D)
	testcases/debian/build.sh image $@ $(DEBIAN_CACHE)

DEMO_DEBIAN := $(BUILD)/demo-debian
DEMO_DEBIAN_DIR ?= $(abspath $(DEMO_DEBIAN))/rig
# Debian's systemd and udev under QEMU without KVM (TCG) took 33 to 73 s from power-on to
# the login prompt on a 2-core machine at load 10 to 14, where the test OS takes 10 to
# 40 s: the os suite's boot budget (RIGOR_BOOT_TIMEOUT_MS) is 6 minutes, five times that,
# so that a busier machine is not a failure and only a boot that hangs is.
DEMO_DEBIAN_BOOT_MS ?= 360000

# The card is as large as the image (rigor flash never grows a file target).
demo-debian: $(BUILD)/rigor $(FW_SIM) $(DEBIAN_IMAGE)
	@scripts/virtual-rig stop $(DEMO_DEBIAN_DIR) >/dev/null 2>&1; rm -rf $(DEMO_DEBIAN) && mkdir -p $(DEMO_DEBIAN)
	@RIGOR_VIRTUAL_CARD_MB=$$(( ($$(stat -c %s $(DEBIAN_IMAGE)) + 1048575) / 1048576 )) \
	BUILD=$(BUILD) scripts/virtual-rig start $(DEMO_DEBIAN_DIR) || exit 1; \
	trap 'scripts/virtual-rig stop $(DEMO_DEBIAN_DIR)' EXIT; trap 'exit 130' INT; trap 'exit 143' TERM; \
	. $(DEMO_DEBIAN_DIR)/env; \
	export RIGOR_OS_IMAGE=$(DEBIAN_IMAGE) RIGOR_BOOT_TIMEOUT_MS=$(DEMO_DEBIAN_BOOT_MS); \
	export RIGOR_CONNECTIVITY_URL=$${RIGOR_VIRTUAL_GUEST_API:-http://10.0.2.2:48484}/ping; \
	start=$$(date +%s.%N); \
	$(BUILD)/rigor --rig rigs/virtual.lua run testcases/os.lua \
		--junit $(DEMO_DEBIAN)/junit.xml --tap $(DEMO_DEBIAN)/results.tap --json $(DEMO_DEBIAN)/results.json \
		--artifacts $(DEMO_DEBIAN)/artifacts; rc=$$?; \
	end=$$(date +%s.%N); \
	printf '\ndemo-debian: verdict %s in %.1f s; reports in %s/ (junit.xml, results.tap, results.json, artifacts/)\n' \
		"$$( [ $$rc = 0 ] && echo PASS || echo "FAIL (exit $$rc)")" "$$(awk "BEGIN{print $$end - $$start}")" "$(DEMO_DEBIAN)"; \
	exit $$rc

CLEAN_EXTRA += $(DEBIAN_DIR)
