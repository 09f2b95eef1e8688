/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "internal.h"

/*
 * Every back-end, grouped by role and alphabetical within a role. Build-gated entries
 * (#ifdef HAVE_...) go here too; there is no self-registration.
 */
static const struct rig_backend *const backends[] = {
	/* power */
	&rig_power_gpio,
	&rig_power_rigfw,
	&rig_power_sim,
	&rig_power_uhub,
	/* sdmux */
	&rig_sdmux_gpio,
	&rig_sdmux_rigfw,
	&rig_sdmux_sdwire,
	&rig_sdmux_sim,
	&rig_sdmux_usbsdmux,
	/* button */
	&rig_button_gpio,
	&rig_button_rigfw,
	&rig_button_sim,
	/* console */
	&rig_console_serial,
	&rig_console_sim,
	&rig_console_socket,
	/* usbboot */
	&rig_usbboot_rpiboot,
	&rig_usbboot_sim,
	/* storage */
	&rig_storage_file,
	&rig_storage_sim,
	&rig_storage_usb,
	/* network */
	&rig_network_host,
	&rig_network_sim,
	&rig_network_vboard,
};

static const char *const role_names[RIG_ROLE_COUNT] = {
	[RIG_ROLE_POWER] = "power",     [RIG_ROLE_SDMUX] = "sdmux",
	[RIG_ROLE_BUTTON] = "button",   [RIG_ROLE_CONSOLE] = "console",
	[RIG_ROLE_USBBOOT] = "usbboot", [RIG_ROLE_STORAGE] = "storage",
	[RIG_ROLE_NETWORK] = "network",
};

const char *rig_role_name(enum rig_role role)
{
	return (unsigned)role < RIG_ROLE_COUNT ? role_names[role] : NULL;
}

int rig_role_from_name(const char *name)
{
	for (int i = 0; i < RIG_ROLE_COUNT; i++)
		if (!strcmp(name, role_names[i]))
			return i;
	return RIG_E_INVAL;
}

const struct rig_backend *rig_backend_find(enum rig_role role, const char *name)
{
	for (size_t i = 0; i < RIG_ARRAY_SIZE(backends); i++)
		if (backends[i]->role == role && !strcmp(backends[i]->name, name))
			return backends[i];
	return NULL;
}

int rig_backend_info(size_t i, enum rig_role *role, const char **name, const char **help)
{
	if (i >= RIG_ARRAY_SIZE(backends))
		return RIG_E_NOENT;
	*role = backends[i]->role;
	*name = backends[i]->name;
	*help = backends[i]->help;
	return 0;
}
