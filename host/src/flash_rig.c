/* SPDX-License-Identifier: MIT */
/*
 * rig_flash(): the flash engine behind the front end. The engine (host/src/flash/) knows
 * images and targets; this file adds what the rig knows: which target, and that the card
 * must be on the host side with the DUT off before anything is written, or, on a
 * Compute Module without an SD mux, that the eMMC must first be booted into a USB disk.
 */
#define LOG_PREFIX "flash"
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "rig_flash.h"
#include "rig_http.h"

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

/* ---- what the last flash left on the card, kept in <state dir>/<rig>.flash ---- */

static void record_path(struct rig *rig, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s.flash", rig_ctx_state_dir(rig_ctx(rig)), rig_name(rig));
}

/* kv values are single lines of bounded length (the kv reader takes 1 KiB lines). */
static void kv_put(struct rig_kv *kv, const char *key, const char *val, size_t max)
{
	char buf[800];
	size_t n = 0;

	for (; *val && n < max && n < sizeof(buf) - 1; val++)
		buf[n++] = *val == '\n' || *val == '\r' ? ' ' : *val;
	buf[n] = 0;
	rig_kv_set(kv, key, buf);
}

/*
 * A failed flash that wrote to the card is remembered until the next successful one, so
 * `rigor storage status` can say why the card does not boot. A failure before writing
 * changed nothing on the card, and changes nothing here either.
 */
static void record(struct rig *rig, const char *image, int rc, const struct rig_flash_stats *st,
		   const char *err)
{
	char path[4200];
	struct rig_kv *kv;
	int lk;
	enum rig_flash_card card = rc == 0 ? RIG_FLASH_CARD_FLASHED :
				   st->invalidated ? RIG_FLASH_CARD_INVALIDATED :
						     RIG_FLASH_CARD_PARTIAL;

	if (rc < 0 && !st->target_written)
		return;
	record_path(rig, path, sizeof(path));
	lk = rig_kv_lock(rig_ctx(rig), path, RIG_KV_LOCK_MS);
	if (lk < 0) {
		rig_warn(rig_ctx(rig), "flash record '%s' not saved: %s", path, rig_err_name(lk));
		return;
	}
	kv = rig_kv_load(path);
	if (kv) {
		char *abs = strstr(image, "://") ? NULL : realpath(image, NULL);

		rig_kv_set(kv, "card", rig_flash_card_name(card));
		kv_put(kv, "image", abs ? abs : image, 500);
		free(abs);
		kv_put(kv, "why", rc < 0 ? err : "", 760);
		rig_kv_set_int(kv, "at", rig_wall_ms());
		if (rig_kv_save(kv, path) < 0)
			rig_warn(rig_ctx(rig), "cannot save the flash record to '%s'", path);
	}
	rig_kv_free(kv);
	if (lk >= 0)
		rig_kv_unlock(lk);
}

const char *rig_flash_card_name(enum rig_flash_card c)
{
	switch (c) {
	case RIG_FLASH_CARD_UNKNOWN: return "unknown";
	case RIG_FLASH_CARD_FLASHED: return "flashed";
	case RIG_FLASH_CARD_INVALIDATED: return "invalidated";
	case RIG_FLASH_CARD_PARTIAL: return "half-written";
	}
	return "unknown";
}

int rig_flash_record_get(struct rig *rig, struct rig_flash_record *r)
{
	char path[4200];
	struct rig_kv *kv;
	const char *v;

	memset(r, 0, sizeof(*r));
	record_path(rig, path, sizeof(path));
	kv = rig_kv_load(path);
	if (!kv)
		return RIG_E_NOMEM;
	v = rig_kv_get(kv, "card");
	for (int c = RIG_FLASH_CARD_FLASHED; v && c <= RIG_FLASH_CARD_PARTIAL; c++)
		if (!strcmp(v, rig_flash_card_name((enum rig_flash_card)c)))
			r->card = (enum rig_flash_card)c;
	if ((v = rig_kv_get(kv, "image")))
		snprintf(r->image, sizeof(r->image), "%s", v);
	if ((v = rig_kv_get(kv, "why")))
		snprintf(r->why, sizeof(r->why), "%s", v);
	r->at_ms = rig_kv_get_int(kv, "at", 0);
	rig_kv_free(kv);
	return 0;
}

/*
 * Write @image to @target (found as @why) with the engine; logs and records the outcome.
 * The engine takes the rig's context (cancel flag, case deadline, log) and records its
 * message there; the rig's error gets it with the rig's own hint where one applies.
 */
static int flash_to(struct rig *rig, const char *image, const char *target, const char *why,
		    struct rig_flash_opts *o, struct rig_flash_stats *st)
{
	struct rig_ctx *ctx = rig_ctx(rig);
	struct progress_ctx pc = { .rig = rig, .last = (enum rig_flash_phase)-1 };
	const char *err;
	char shown[512];
	int rc;

	/* a URL's credentials stay out of the event log and the record */
	if (strstr(image, "://"))
		rig_http_redact_url(image, shown, sizeof(shown));
	else
		snprintf(shown, sizeof(shown), "%s", image);
	rig_event(rig, "flash '%s' to %s (%s)", shown, target, why);
	o->force = o->force || rig_storage_allow_fixed(rig);
	pc.user_fn = o->progress;
	pc.user = o->progress_user;
	o->progress = on_progress;
	o->progress_user = &pc;
	/* an earlier failure on the context would otherwise keep this one's message out */
	rig_ctx_clear_error(ctx);
	rc = rig_flash_image(ctx, image, target, o, st);
	o->progress = pc.user_fn;
	o->progress_user = pc.user;
	err = rc < 0 ? rig_ctx_errmsg(ctx) : "";
	record(rig, strstr(image, "://") ? shown : image, rc, st, err);
	if (rc < 0) {
		/* force is a rig-file setting here, not an option of the call */
		const char *hint = st->hint == RIG_FLASH_HINT_FORCE ?
			" (add allow_fixed = true to the storage entry of the rig file if it really is the DUT's card)" : "";

		rig_event(rig, "flash FAILED: %s%s", err, hint);
		rc = rig_set_error(rig, rc, "flash: %s%s", *err ? err : rig_strerror(rc), hint);
		rig_ctx_clear_error(ctx);
		return rc;
	}
	rig_event(rig, "flash done: %llu bytes written, %llu skipped, %llu verified in %.1f s",
		  (unsigned long long)st->bytes_written, (unsigned long long)st->bytes_skipped,
		  (unsigned long long)st->bytes_verified, st->t_total);
	return 0;
}

/* The button that holds the DUT in USB boot mode: boot_button, else "boot" if present. */
static const char *strap_button(const struct rig *rig, const struct rig_common *uc)
{
	if (uc->boot_button)
		return uc->boot_button;
	for (size_t i = 0; i < rig_button_count(rig); i++)
		if (!strcmp(rig_button_name(rig, i), "boot"))
			return "boot";
	return NULL;
}

/*
 * Wait for the storage part to resolve: the DUT's disk appears some seconds after the
 * USB boot, when its mass-storage firmware (or Linux gadget) is up. Polls sysfs until
 * @timeout_ms (-1: no bound but the case deadline) or the case deadline, if sooner.
 */
static int wait_disk(struct rig *rig, int timeout_ms, char *target, size_t len, char *why,
		     size_t whylen)
{
	struct rig_ctx *ctx = rig_ctx(rig);
	int limit = rig_ctx_clamp(ctx, timeout_ms);
	struct rig_deadline end = rig_deadline_start(limit);
	char last[RIG_ERRMSG_MAX];
	int rc;

	rig_event(rig, "waiting for the DUT's storage to show up as a USB disk");
	for (;;) {
		rc = rig_storage_resolve(rig, target, len, why, whylen);
		if (rc != RIG_E_NODEV)
			return rc;
		snprintf(last, sizeof(last), "%s", rig_errmsg(rig));
		rig_clear_error(rig);       /* not there yet is not an error yet */
		rc = rig_deadline_expired(end) ? RIG_E_TIMEOUT : rig_ctx_sleep(ctx, 50);
		if (rc == RIG_E_INTR)
			return rig_set_error(rig, rc, "interrupted while waiting for the DUT's storage (%s)",
					     last);
		if (rc < 0 && limit == timeout_ms)
			return rig_set_error(rig, rc,
					     "the DUT's storage did not show up as a USB disk within %d ms after the USB boot: %s",
					     timeout_ms, last);
		if (rc < 0)
			return rig_set_error(rig, rc,
					     "the DUT's storage did not show up as a USB disk before the case deadline (%d ms after the USB boot): %s",
					     limit, last);
	}
}

/*
 * Releasing the strap and powering off must happen after a cancel or past the case
 * deadline too, and back-ends that talk to a device give up at once when the cancel flag
 * is up (rigfw, HTTP): these steps run without the flag and with a fresh deadline, so each
 * is bounded by its part's timeout_ms and at most RIG_CLEANUP_MAX_MS. Returns what the step
 * returned.
 */
static int undo_step(struct rig *rig, const char *button)
{
	struct rig_ctx_saved saved = rig_ctx_cleanup_begin(rig_ctx(rig), RIG_CLEANUP_MAX_MS);
	int rc = button ? rig_button_set(rig, button, false) : rig_power_set(rig, false);

	rig_ctx_cleanup_end(rig_ctx(rig), saved);
	return rc;
}

/*
 * A Compute Module: its eMMC shows up over USB once the mass-storage boot files run.
 * Power off, hold the strap, power on, usbboot, release, wait for the disk, flash; the
 * DUT is powered off at the end whatever happened.
 */
static int flash_over_usbboot(struct rig *rig, const struct rig_common *uc, const char *image,
			      struct rig_flash_opts *o, struct rig_flash_stats *st)
{
	const char *button = strap_button(rig, uc);
	bool power = rig_has_role(rig, RIG_ROLE_POWER);
	char target[4096], why[512];
	int rc = 0, rc2;

	rig_event(rig, "flash over USB boot: %s%s%s%spower on, usbboot from '%s', wait for the disk",
		  power ? "power off, " : "", button ? "hold button " : "", button ? button : "",
		  button ? ", " : "", uc->msd_dir);
	if (button && !power)
		rig_warn(rig_ctx(rig), "no power part: power the DUT on yourself while '%s' is held",
			 button);
	if (power)
		rc = rig_power_set(rig, false);
	if (rc == 0 && button) {
		rc = rig_button_set(rig, button, true);
		if (rc == 0 && power)
			rc = rig_power_set(rig, true);
		if (rc == 0)
			rc = rig_usbboot(rig, uc->msd_dir, -1);
		/* nRPIBOOT is only read at power-on: let go whatever happened */
		rc2 = undo_step(rig, button);
		rc = rc < 0 ? rc : rc2;
	} else if (rc == 0) {
		if (power)
			rc = rig_power_set(rig, true);
		if (rc == 0)
			rc = rig_usbboot(rig, uc->msd_dir, -1);
	}
	if (rc == 0)
		rc = wait_disk(rig, uc->timeout_ms, target, sizeof(target), why, sizeof(why));
	if (rc == 0)
		rc = flash_to(rig, image, target, why, o, st);
	if (power) {
		/* the first error stays the one reported; this one is only added if none */
		rc2 = undo_step(rig, NULL);
		rc = rc < 0 ? rc : rc2;
	}
	return rc;
}

int rig_flash(struct rig *rig, const char *image, struct rig_flash_opts *o,
	      struct rig_flash_stats *st)
{
	const struct rig_common *uc = rig_usbboot_common(rig);
	char target[4096], why[512];
	int rc;

	memset(st, 0, sizeof(*st));
	if (uc && uc->msd_dir && rig_has_role(rig, RIG_ROLE_STORAGE) &&
	    !rig_has_role(rig, RIG_ROLE_SDMUX))
		return flash_over_usbboot(rig, uc, image, o, st);
	rc = rig_storage_resolve(rig, target, sizeof(target), why, sizeof(why));
	if (rc < 0)
		return rc;
	if (rig_has_role(rig, RIG_ROLE_POWER) && (rc = rig_power_set(rig, false)) < 0)
		return rc;
	if (rig_has_role(rig, RIG_ROLE_SDMUX) && (rc = rig_sdmux_set(rig, RIG_MUX_HOST)) < 0)
		return rc;
	return flash_to(rig, image, target, why, o, st);
}
