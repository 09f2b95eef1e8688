/* SPDX-License-Identifier: MIT */
/*
 * rig_flash(): the flash engine behind the front end. The engine (host/src/flash/) knows
 * images and targets; this file adds what the rig knows: which target, and that the card
 * must be on the host side with the DUT off before anything is written.
 */
#define LOG_PREFIX "flash"
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "rig_flash.h"

/* The per-rig event log gets a line per phase change, so a case log shows the flash. */
struct progress_ctx {
	struct rig *rig;
	enum rig_flash_phase last;
	rig_flash_progress_fn user_fn;
	void *user;
};

static void on_progress(const struct rig_flash_progress *p, void *user)
{
	struct progress_ctx *pc = user;

	if (p->phase != pc->last) {
		pc->last = p->phase;
		rig_dbg(rig_ctx(pc->rig), "phase %s", rig_flash_phase_name(p->phase));
	}
	if (pc->user_fn)
		pc->user_fn(p, pc->user);
}

int rig_flash(struct rig *rig, const char *image, struct rig_flash_opts *o,
	      struct rig_flash_stats *st)
{
	struct rig_ctx *ctx = rig_ctx(rig);
	struct progress_ctx pc = { .rig = rig, .last = (enum rig_flash_phase)-1 };
	char target[4096], why[512], err[1024];
	int rc;

	memset(st, 0, sizeof(*st));
	rc = rig_storage_resolve(rig, target, sizeof(target), why, sizeof(why));
	if (rc < 0)
		return rc;
	if (rig_has_role(rig, RIG_ROLE_POWER) && (rc = rig_power_set(rig, false)) < 0)
		return rc;
	if (rig_has_role(rig, RIG_ROLE_SDMUX) && (rc = rig_sdmux_set(rig, RIG_MUX_HOST)) < 0)
		return rc;
	rig_event(rig, "flash '%s' to %s (%s)", image, target, why);
	/* sig_atomic_t is an int on the platforms we build for */
	o->cancel = (volatile const int *)ctx->cancel;
	o->force = o->force || rig_storage_allow_fixed(rig);
	o->timeout_ms = rig_ctx_clamp(ctx, o->timeout_ms);
	pc.user_fn = o->progress;
	pc.user = o->progress_user;
	o->progress = on_progress;
	o->progress_user = &pc;
	err[0] = 0;
	rc = rig_flash_image(image, target, o, st, err, sizeof(err));
	o->progress = pc.user_fn;
	o->progress_user = pc.user;
	if (rc == -EPERM && strstr(err, "removable") && !o->force)
		/* the engine's hint is about its own option; on a rig it is a rig-file setting */
		snprintf(err + strcspn(err, "("), sizeof(err) - strcspn(err, "("),
			 "(add allow_fixed = true to the storage entry of the rig file if it really is the DUT's card)");
	if (rc < 0) {
		rig_event(rig, "flash FAILED: %s", err);
		return rig_set_error(rig, rc, "flash: %s", err[0] ? err : rig_strerror(rc));
	}
	rig_event(rig, "flash done: %llu bytes written, %llu skipped, %llu verified in %.1f s",
		  (unsigned long long)st->bytes_written, (unsigned long long)st->bytes_skipped,
		  (unsigned long long)st->bytes_verified, st->t_total);
	return 0;
}
