/* SPDX-License-Identifier: MIT */
/* Options' defaults and the progress report's names, fraction and plain-text line. */
#include <stdio.h>
#include <string.h>

#include "flash_internal.h"

void rig_flash_opts_init(struct rig_flash_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->verify = true;
	o->timeout_ms = -1;
	o->stall_ms = 30000;
	o->retries = 5;
	o->fault.write_offset = -1;
	o->fault.corrupt_offset = -1;
}

const char *rig_flash_phase_name(enum rig_flash_phase phase)
{
	switch (phase) {
	case RIG_FLASH_PHASE_PREPARE: return "prepare";
	case RIG_FLASH_PHASE_WRITE: return "write";
	case RIG_FLASH_PHASE_SYNC: return "sync";
	case RIG_FLASH_PHASE_VERIFY: return "verify";
	case RIG_FLASH_PHASE_INJECT: return "inject";
	case RIG_FLASH_PHASE_DONE: return "done";
	}
	return "unknown";
}

double rig_flash_progress_fraction(const struct rig_flash_progress *p)
{
	double f;

	if (p->total)
		f = (double)p->done / (double)p->total;
	else if (p->in_total)
		f = (double)p->in_done / (double)p->in_total;
	else
		return -1;
	/* an xz index can understate what a (corrupt) stream goes on to produce */
	return f > 1 ? 1 : f;
}

int rig_flash_progress_format(const struct rig_flash_progress *p, char *buf, size_t len)
{
	const double MiB = 1048576.0;
	char size[96] = "", pct[16] = "", eta[32] = "";
	double f = rig_flash_progress_fraction(p), left = -1;

	if (p->total) {
		snprintf(size, sizeof(size), " %.1f/%.1f MiB", (double)p->done / MiB,
			 (double)p->total / MiB);
		if (p->rate > 0 && p->done < p->total)
			left = (double)(p->total - p->done) / p->rate;
	} else if (p->in_total) {
		/* decoded size unknown: how much of the image file was read is the measure */
		snprintf(size, sizeof(size), " %.1f MiB (image file %.1f/%.1f MiB read)",
			 (double)p->done / MiB, (double)p->in_done / MiB,
			 (double)p->in_total / MiB);
		if (p->in_done && p->in_done < p->in_total && p->elapsed > 0)
			left = p->elapsed * (double)(p->in_total - p->in_done) / (double)p->in_done;
	} else if (p->done) {
		snprintf(size, sizeof(size), " %.1f MiB", (double)p->done / MiB);
	}
	if (f >= 0)
		snprintf(pct, sizeof(pct), " %3d%%", (int)(100.0 * f));
	if (left >= 0)
		snprintf(eta, sizeof(eta), "  eta %.0fs", left);
	return snprintf(buf, len, "%-7s%s%s  %.1f MB/s%s  (written %.1f MiB, skipped %.1f MiB)",
			rig_flash_phase_name(p->phase), size, pct, p->rate / 1e6, eta,
			(double)p->written / MiB, (double)p->skipped / MiB);
}
