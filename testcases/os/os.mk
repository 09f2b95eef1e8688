# SPDX-License-Identifier: MIT
# The rigor test OS (docs/os-image.md): balenaOS-like disk images for the QEMU x86_64 DUT,
# built from Debian packages without root or loop devices.
#
#   make os-image      $(BUILD)/os/rigor-os-1.0.img, rigor-os-1.1.img, rigor-os-flasher-1.0.img:
#                      UEFI A/B images (GRUB on resin-boot, grubenv picks resin-rootA/B), and
#                      the host OS update payloads rigor-os-1.0-rootfs.img.gz, -1.1-... with
#                      their .sha256 (docs/hup.md); needs grub-efi-amd64-bin and grub-common
#   make os-agent      the device agent: static (for the image) and host build (for tests)
#
# The kernel package is downloaded once with apt-get into $(OS_CACHE) and re-used.

OS_DIR     := $(BUILD)/os
OS_CACHE   ?= build/os-cache
OS_SLUG    ?= qemux86-64
OS_MACHINE ?= $(OS_SLUG)
OS_API_ENDPOINT ?= http://10.0.2.2:48484
OS_APP_ID  ?= 1
OS_PROVISIONING_KEY ?= rigorProvisioningKey00000000000000
OS_HOSTNAME ?=
OS_REPORT_INTERVAL ?= 5
OS_VERSIONS := 1.0 1.1
OS_IMAGES  := $(OS_VERSIONS:%=$(OS_DIR)/rigor-os-%.img) $(OS_DIR)/rigor-os-flasher-1.0.img
OS_PAYLOADS := $(OS_VERSIONS:%=$(OS_DIR)/rigor-os-%-rootfs.img.gz)

OS_AGENT_SRC  := testcases/os/agent/rigor-agent.c
OS_AGENT      := $(OS_DIR)/rigor-agent
OS_AGENT_HOST := $(OS_DIR)/rigor-agent-host
OS_KERNEL     := $(OS_DIR)/kernel
OS_INITRD     := $(OS_DIR)/initrd.img
OS_SCRIPTS    := testcases/os/build.sh testcases/os/initramfs/init testcases/os/efi/grub.cfg \
	$(shell find testcases/os/rootfs -type f 2>/dev/null)
OS_ENV = OS_SLUG='$(OS_SLUG)' OS_MACHINE='$(OS_MACHINE)' OS_API_ENDPOINT='$(OS_API_ENDPOINT)' \
	OS_APP_ID='$(OS_APP_ID)' OS_PROVISIONING_KEY='$(OS_PROVISIONING_KEY)' \
	OS_HOSTNAME='$(OS_HOSTNAME)' OS_REPORT_INTERVAL='$(OS_REPORT_INTERVAL)'
# The settings are baked into the images: rebuild them when a setting changes.
OS_STAMP := $(OS_DIR)/settings
OS_SETTINGS = $(OS_SLUG) $(OS_MACHINE) $(OS_API_ENDPOINT) $(OS_APP_ID) $(OS_PROVISIONING_KEY) [$(OS_HOSTNAME)] $(OS_REPORT_INTERVAL)

.PHONY: os-image os-agent os-image-for-test
os-image: $(OS_IMAGES) $(OS_PAYLOADS)
os-agent: $(OS_AGENT) $(OS_AGENT_HOST)

$(OS_STAMP): FORCE_OS
	@mkdir -p $(@D)
	@echo '$(OS_SETTINGS)' | cmp -s - $@ || echo '$(OS_SETTINGS)' > $@
.PHONY: FORCE_OS
FORCE_OS:

# Static, without sanitizers: it runs inside the guest.
$(OS_AGENT): $(OS_AGENT_SRC)
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -Os $(WARNFLAGS) -static -s -o $@ $<

$(OS_AGENT_HOST): $(OS_AGENT_SRC)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) $(LDFLAGS_COMMON) -o $@ $<

$(OS_KERNEL)/vmlinuz: testcases/os/build.sh
	testcases/os/build.sh kernel $(OS_CACHE) $(OS_KERNEL)

$(OS_INITRD): $(OS_KERNEL)/vmlinuz testcases/os/initramfs/init testcases/os/build.sh
	testcases/os/build.sh initrd $(OS_KERNEL) $@

$(OS_DIR)/rigor-os-%.img: $(OS_KERNEL)/vmlinuz $(OS_INITRD) $(OS_AGENT) $(OS_SCRIPTS) $(OS_STAMP)
	$(OS_ENV) testcases/os/build.sh image $@ $* $(OS_KERNEL) $(OS_INITRD) $(OS_AGENT)

# the image's build writes its payload too
$(OS_DIR)/rigor-os-%-rootfs.img.gz: $(OS_DIR)/rigor-os-%.img
	@test -f $@ || { rm -f $<; echo "os.mk: $@ missing: rebuild $<"; exit 1; }

$(OS_DIR)/rigor-os-flasher-%.img: $(OS_DIR)/rigor-os-%.img $(OS_KERNEL)/vmlinuz $(OS_INITRD) $(OS_AGENT) $(OS_SCRIPTS) $(OS_STAMP)
	$(OS_ENV) testcases/os/build.sh image $@ $* $(OS_KERNEL) $(OS_INITRD) $(OS_AGENT) flasher $<

# For `make test`: build the images, but let the image tests SKIP (not fail) when the kernel
# package cannot be downloaded ($(OS_CACHE)/FETCH-FAILED); any other build error fails.
os-image-for-test: $(OS_AGENT_HOST)
	@mkdir -p $(OS_DIR)
	@$(MAKE) --no-print-directory os-image > $(OS_DIR)/build.log 2>&1 || \
	{ if [ -e $(OS_CACHE)/FETCH-FAILED ]; then \
		echo "os-image: kernel download failed; OS image tests will skip"; \
	  else cat $(OS_DIR)/build.log; exit 1; fi; }

TEST_DEPS += os-image-for-test
TESTS += testcases/os/test-agent.sh testcases/os/test-image.sh testcases/os/test-hup.sh testcases/os/test-qemu.py
CLEAN_EXTRA += $(OS_DIR)
