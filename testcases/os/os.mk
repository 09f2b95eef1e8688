# SPDX-License-Identifier: MIT
# The rigor test OS (docs/os-image.md): balenaOS-like disk images for the QEMU x86_64 DUT,
# built from Debian packages without root or loop devices.
#
#   make os-image      $(BUILD)/os/rigor-os-1.0.img, rigor-os-1.1.img, rigor-os-flasher-1.0.img
#   make os-agent      the device agent: static (for the image) and host build (for tests)
#   make os-image-efi  $(BUILD)/os/rigor-os-efi-1.0.img: the UEFI A/B variant (GRUB on resin-boot,
#                      grubenv picks resin-rootA/B; boots on rigor-vboard --firmware ovmf);
#                      needs grub-efi-amd64-bin and grub-common. Not part of os-image.
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

OS_AGENT_SRC  := testcases/os/agent/rigor-agent.c
OS_AGENT      := $(OS_DIR)/rigor-agent
OS_AGENT_HOST := $(OS_DIR)/rigor-agent-host
OS_KERNEL     := $(OS_DIR)/kernel
OS_INITRD     := $(OS_DIR)/initrd.img
OS_SCRIPTS    := testcases/os/build.sh testcases/os/initramfs/init \
	$(shell find testcases/os/rootfs -type f 2>/dev/null)
OS_ENV = OS_SLUG='$(OS_SLUG)' OS_MACHINE='$(OS_MACHINE)' OS_API_ENDPOINT='$(OS_API_ENDPOINT)' \
	OS_APP_ID='$(OS_APP_ID)' OS_PROVISIONING_KEY='$(OS_PROVISIONING_KEY)' \
	OS_HOSTNAME='$(OS_HOSTNAME)' OS_REPORT_INTERVAL='$(OS_REPORT_INTERVAL)'
# The settings are baked into the images: rebuild them when a setting changes.
OS_STAMP := $(OS_DIR)/settings
OS_SETTINGS = $(OS_SLUG) $(OS_MACHINE) $(OS_API_ENDPOINT) $(OS_APP_ID) $(OS_PROVISIONING_KEY) [$(OS_HOSTNAME)] $(OS_REPORT_INTERVAL)

OS_EFI_IMAGES := $(OS_DIR)/rigor-os-efi-1.0.img

.PHONY: os-image os-agent os-image-for-test os-image-efi
os-image: $(OS_IMAGES)
os-image-efi: $(OS_EFI_IMAGES)
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

$(OS_DIR)/rigor-os-efi-%.img: $(OS_KERNEL)/vmlinuz $(OS_INITRD) $(OS_AGENT) $(OS_SCRIPTS) testcases/os/efi/grub.cfg testcases/os/efi/rigor-bootenv $(OS_STAMP)
	$(OS_ENV) testcases/os/build.sh image $@ $* $(OS_KERNEL) $(OS_INITRD) $(OS_AGENT) efi

$(OS_DIR)/rigor-os-flasher-%.img: $(OS_DIR)/rigor-os-%.img $(OS_KERNEL)/vmlinuz $(OS_INITRD) $(OS_AGENT) $(OS_SCRIPTS) $(OS_STAMP)
	$(OS_ENV) testcases/os/build.sh image $@ $* $(OS_KERNEL) $(OS_INITRD) $(OS_AGENT) flasher $<

# For `make test`: build the images, but let the image tests SKIP (not fail) when the kernel
# package cannot be downloaded ($(OS_CACHE)/FETCH-FAILED); any other build error fails.
# The EFI variant is built too where GRUB's EFI files are installed (else its test skips).
os-image-for-test: $(OS_AGENT_HOST)
	@$(MAKE) --no-print-directory os-image > $(OS_DIR)/build.log 2>&1 || \
	{ if [ -e $(OS_CACHE)/FETCH-FAILED ]; then \
		echo "os-image: kernel download failed; OS image tests will skip"; \
	  else cat $(OS_DIR)/build.log; exit 1; fi; }
	@if [ ! -e $(OS_CACHE)/FETCH-FAILED ] && command -v grub-mkstandalone >/dev/null && \
	    [ -d /usr/lib/grub/x86_64-efi ]; then \
		$(MAKE) --no-print-directory os-image-efi >> $(OS_DIR)/build.log 2>&1 || \
		{ cat $(OS_DIR)/build.log; exit 1; }; \
	else echo "os-image-efi: no GRUB EFI (grub-efi-amd64-bin) or no kernel; its test will skip"; fi

TEST_DEPS += os-image-for-test
TESTS += testcases/os/test-agent.sh testcases/os/test-image.sh testcases/os/test-qemu.py
CLEAN_EXTRA += $(OS_DIR)
