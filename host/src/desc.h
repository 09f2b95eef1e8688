/* SPDX-License-Identifier: MIT */
/* What rig.c needs from desc.c beyond the public API. */
#ifndef RIGOR_HOST_DESC_H
#define RIGOR_HOST_DESC_H

#include <assert.h>

#include "internal.h"

/*
 * Check part @idx and, when @common/@conf are given, fill them (conf must be zeroed,
 * be->conf_size bytes; common gets defaults first). Returns the number of problems.
 */
int desc_fill_part(struct rig_desc *d, size_t idx, const struct rig_backend **be,
		   struct rig_common *common, void *conf);
void desc_release_conf(const struct rig_backend *be, void *conf);
struct rig_ctx *desc_ctx(const struct rig_desc *d);
size_t desc_nparts(const struct rig_desc *d);
const char *desc_part_instance(const struct rig_desc *d, size_t i);
size_t desc_ncaps(const struct rig_desc *d);
const char *desc_cap(const struct rig_desc *d, size_t i);

#endif
