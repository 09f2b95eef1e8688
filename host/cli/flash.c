/* SPDX-License-Identifier: MIT */
/* rigor flash: option parsing, progress rendering and one library call. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "rig_flash.h"
#include "rig_http.h"
#include "rig_image.h"

enum progress_mode { PROGRESS_AUTO, PROGRESS_BAR, PROGRESS_PLAIN, PROGRESS_NONE };

struct bar {
	bool tty;                       /* draw a bar (--progress bar, or auto on a real terminal) */
	bool none;
	double last_plain;
	bool started, printed;          /* plain lines: last is the phase's latest report */
	struct rig_flash_progress last;
};

static void plain_line(const struct rig_flash_progress *p)
{
	char line[256];

	rig_flash_progress_format(p, line, sizeof(line));
	fprintf(stderr, "rigor: flash: %s\n", line);
}

static void progress(const struct rig_flash_progress *p, void *user)
{
	struct bar *b = user;
	char line[256];

	if (b->none)
		return;
	if (b->tty) {
		double f = rig_flash_progress_fraction(p);
		int width = 30, fill = f > 0 ? (int)(f * width) : 0;

		rig_flash_progress_format(p, line, sizeof(line));
		fprintf(stderr, "\r[%.*s%*s] %s\033[K", fill, "##############################",
			width - fill, "", line);
		if (p->phase == RIG_FLASH_PHASE_DONE)
			fputc('\n', stderr);
		return;
	}
	/*
	 * Not a terminal (CI logs): a line every 5 s, and each phase's last report when the next
	 * phase begins, so even a quick flash logs how far each phase got and in what time. A
	 * phase with nothing to measure (prepare, sync) is left out.
	 */
	if (b->started && p->phase != b->last.phase) {
		if (!b->printed && (b->last.done || b->last.total))
			plain_line(&b->last);
		b->last_plain = 0;
	}
	b->started = true;
	b->last = *p;
	b->printed = p->phase == RIG_FLASH_PHASE_DONE || p->elapsed - b->last_plain >= 5.0;
	if (b->printed) {
		plain_line(p);
		b->last_plain = p->elapsed;
	}
}

static bool is_url(const char *image)
{
	return !strncasecmp(image, "http://", 7) || !strncasecmp(image, "https://", 8);
}

/*
 * The identity of what was flashed, read back from the target it is now on (@target NULL:
 * gone, so from the file only). NULL if even that fails: the flash itself succeeded.
 */
static struct rig_image *identify(struct cli *c, const char *image, const char *target,
				  const struct rig_flash_stats *st)
{
	struct rig_image_opts o;
	struct rig_image *img = NULL;

	/* a URL is not downloaded twice: its format, size and SHA-256 are in the stats */
	if (is_url(image))
		return NULL;
	rig_image_opts_init(&o);
	o.decoded = target;
	o.raw_size = st->image_size;
	o.sha256 = st->has_sha256 ? st->sha256 : NULL;
	o.shallow = !target;
	if (rig_image_inspect(c->ctx, image, &o, &img) < 0 && !o.shallow) {
		o.shallow = true;
		rig_image_inspect(c->ctx, image, &o, &img);
	}
	rig_ctx_clear_error(c->ctx);
	return img;
}

/* @v rounded to 1/@scale, as the %.3f / %.1f figures of the text output were */
static double rnd(double v, double scale)
{
	return round(v * scale) / scale;
}

static void print_stats(struct cli *c, const char *image, const char *target,
			const struct rig_flash_opts *fo, const struct rig_flash_stats *st,
			const struct rig_image *img)
{
	char *ij = img ? rig_image_to_json(img, 0) : NULL;
	char shown[512];

	/* a URL is named without its credentials, here and in every message */
	if (is_url(image)) {
		rig_http_redact_url(image, shown, sizeof(shown));
		image = shown;
	}

	if (c->json) {
		json_t *o = json_pack("{s:o,s:s,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,"
				      "s:{s:f,s:f,s:f,s:f,s:f,s:f},s:f}",
			"target", rig_json_string(target), "format", rig_flash_format_name(st->format),
			"bmap", (int)st->bmap_used, "image_size", (json_int_t)st->image_size,
			"bytes_read", (json_int_t)st->bytes_read,
			"decompressed", (json_int_t)st->bytes_decompressed,
			"undecoded", (json_int_t)st->bytes_undecoded,
			"mapped", (json_int_t)st->bytes_mapped, "written", (json_int_t)st->bytes_written,
			"skipped", (json_int_t)st->bytes_skipped,
			"verified", (json_int_t)st->bytes_verified,
			"seconds", "prepare", rnd(st->t_prepare, 1e3), "write", rnd(st->t_write, 1e3),
			"sync", rnd(st->t_sync, 1e3), "verify", rnd(st->t_verify, 1e3),
			"inject", rnd(st->t_inject, 1e3), "total", rnd(st->t_total, 1e3),
			"mbps", rnd(st->mbps, 10));

		if (o) {
			json_object_set_new(o, "source", rig_json_string(image));
			json_object_set_new(o, "resumes", json_integer(st->resumes));
			if (st->has_sha256)
				json_object_set_new(o, "sha256", json_string(st->sha256));
			if (fo->sha256)
				json_object_set_new(o, "sha256_matched",
						    json_boolean(st->sha256_matched));
		}
		/* what was flashed (rigor.image/1, by jansson), then the object ends */
		if (o && ij)
			json_object_set_new(o, "image", json_loads(ij, 0, NULL));
		free(ij);
		cli_json_print(o);
		return;
	}
	printf("flashed %s (%s%s) to %s: %.1f MB mapped, %.1f MB written, %.1f MB skipped "
	       "(already there), %.1f MB verified, %.1f s (%.1f MB/s)\n",
	       image, rig_flash_format_name(st->format), st->bmap_used ? ", bmap" : "", target,
	       st->bytes_mapped / 1e6, st->bytes_written / 1e6, st->bytes_skipped / 1e6,
	       st->bytes_verified / 1e6, st->t_total, st->mbps);
	free(ij);
	if (fo->sha256 && st->sha256_matched)
		printf("sha256 %s matched\n", st->sha256);
	if (st->resumes)
		printf("the download broke off and was resumed %d time%s\n", st->resumes,
		       st->resumes == 1 ? "" : "s");
	if (!img && st->has_sha256 && image == shown)
		printf("image %s: sha256 %s (a URL is not inspected: that would be a second "
		       "download)\n", shown, st->sha256);
	if (img)
		printf("image %s: version %s, sha256 %s\n", rig_image_name(img),
		       rig_image_version(img) ? rig_image_version(img) : "unknown",
		       rig_image_sha256(img));
}

/*
 * Exit status of a failed `--target` flash, from the engine's errno-style code: what the user
 * gave us (image, bmap, target path) is 2, the machine failing us is 3. Rig mode gets the
 * same split from rig_flash()'s rig codes through cli_fail().
 */
static int target_exit(int rc)
{
	switch (rc) {
	case RIG_E_INVAL:   /* not an image, special file, bad bmap, image == target */
	case RIG_E_NOENT:   /* missing image, bmap or target ("no such device") */
	case RIG_E_CORRUPT: /* corrupt or truncated image data */
	case RIG_E_NOSPC:   /* the image does not fit the target */
	case RIG_E_ROFS:    /* the target named is read-only */
	case RIG_E_PERM:    /* a safety rule refused the target */
	case RIG_E_NOTSUP:
		return EXIT_USAGE;
	default:
		return EXIT_INFRA;
	}
}

/*
 * rigor.c catches SIGINT and SIGTERM; a flash must also survive its terminal going away
 * (SIGHUP: an ssh session dropped) long enough to invalidate the card and free the rig.
 */
static void on_hangup(int sig)
{
	cli_signal = sig;
}

int cmd_flash(struct cli *c, int argc, char **argv)
{
	struct rig_flash_opts o;
	struct rig_flash_stats st;
	struct rig_flash_inject inj[16];
	char spec[16][512];
	const char *image = NULL, *target = NULL;
	struct bar bar = { 0 };
	enum progress_mode mode = PROGRESS_AUTO;
	const char *term = getenv("TERM");
	struct sigaction sa = { .sa_handler = on_hangup };
	bool force = false;
	struct rig_image *img;
	int rc;

	sigaction(SIGHUP, &sa, NULL);
	rig_flash_opts_init(&o);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--bmap") && i + 1 < argc) {
			o.bmap = argv[++i];
		} else if (!strcmp(a, "--no-bmap")) {
			o.no_bmap = true;
		} else if (!strcmp(a, "--no-verify")) {
			o.verify = false;
		} else if (!strcmp(a, "--full")) {
			o.full = true;
		} else if (!strcmp(a, "--target") && i + 1 < argc) {
			target = argv[++i];
		} else if (!strcmp(a, "--force")) {
			force = true;
		} else if (!strcmp(a, "--create")) {
			o.create = true;
		} else if (!strcmp(a, "--sha256") && i + 1 < argc) {
			o.sha256 = argv[++i];
		} else if ((!strcmp(a, "--stall-timeout") || !strcmp(a, "--retries")) &&
			   i + 1 < argc) {
			char *end;
			long v = strtol(argv[++i], &end, 10);

			if (end == argv[i] || *end || v < 0 || v > 86400) {
				cli_error("flash: %s takes a whole number (%s), not '%s'", a,
					  a[2] == 's' ? "seconds" : "resumes", argv[i]);
				return EXIT_USAGE;
			}
			if (a[2] == 's')
				o.stall_ms = (int)v * 1000;
			else
				o.retries = (int)v;
		} else if (!strcmp(a, "--json")) {
			c->json = true;
		} else if (!strcmp(a, "--progress") && i + 1 < argc) {
			static const char *const modes[] = { "auto", "bar", "plain", "none" };

			a = argv[++i];
			for (mode = 0; mode < 4 && strcmp(a, modes[mode]); mode++)
				;
			if (mode == 4) {
				cli_error("flash: --progress takes auto, bar, plain or none, not '%s'", a);
				return EXIT_USAGE;
			}
		} else if (!strcmp(a, "--inject") && i + 1 < argc) {
			char *s = spec[o.n_inject], *c1, *c2;

			if (o.n_inject >= 16) {
				cli_error("flash: at most 16 --inject");
				return EXIT_USAGE;
			}
			snprintf(spec[o.n_inject], sizeof(spec[0]), "%s", argv[++i]);
			c1 = strchr(s, ':');
			c2 = c1 ? strchr(c1 + 1, ':') : NULL;
			if (!c2) {
				cli_error("flash: --inject takes PART:SRC:DEST (e.g. resin-boot:config.json:/config.json), not '%s'", argv[i]);
				return EXIT_USAGE;
			}
			*c1 = *c2 = 0;
			inj[o.n_inject] = (struct rig_flash_inject){ .part = s, .src = c1 + 1, .dest = c2 + 1 };
			o.n_inject++;
		} else if (a[0] == '-') {
			cli_error("flash: unknown option '%s' (see 'rigor flash --help')", a);
			return EXIT_USAGE;
		} else if (!image) {
			image = a;
		} else {
			cli_error("flash: one image at a time ('%s' and '%s')", image, a);
			return EXIT_USAGE;
		}
	}
	if (!image) {
		cli_error("flash: which image? (rigor flash IMAGE)");
		return EXIT_USAGE;
	}
	if (target && !force) {
		cli_error("flash: --target bypasses the rig's storage role and its interlock; add --force if '%s' is really the card to overwrite", target);
		return EXIT_USAGE;
	}
	if (o.create && !target) {
		cli_error("flash: --create makes a new image file for --target; the rig's card is never created");
		return EXIT_USAGE;
	}
	/*
	 * auto: a bar only on a terminal that can draw one. A scheduler's or CI runner's
	 * pseudo-terminal often says TERM=dumb (or nothing), and its log keeps every \r frame.
	 */
	bar.tty = mode == PROGRESS_BAR ||
		  (mode == PROGRESS_AUTO && isatty(2) && term && *term && strcmp(term, "dumb"));
	bar.none = mode == PROGRESS_NONE;
	o.inject = o.n_inject ? inj : NULL;
	o.hash_image = true;    /* identify() then does not read the image again */
	o.progress = progress;
	o.progress_user = &bar;
	if (target) {
		o.force = true;
		rig_ctx_clear_error(c->ctx);
		rc = rig_flash_image(c->ctx, image, target, &o, &st);
		if (rc < 0) {
			/* the engine names no switch: here it is a flag */
			cli_error("flash: %s%s%s%s%s", *rig_ctx_errmsg(c->ctx) ?
				  rig_ctx_errmsg(c->ctx) : rig_strerror(rc),
				  st.hint == RIG_FLASH_HINT_CREATE ?
				  " (add --create to write a new image file)" : "",
				  st.removed ? "; the new file '" : "", st.removed ? target : "",
				  st.removed ? "' was removed" : "");
			return cli_signal ? cli_signal_exit() : target_exit(rc);
		}
		img = identify(c, image, target, &st);
		print_stats(c, image, target, &o, &st, img);
		rig_image_free(img);
		return 0;
	}
	rc = cli_open_rig(c);
	if (rc)
		return rc;
	rc = rig_flash(c->rig, image, &o, &st);
	if (rc < 0 && cli_signal) {
		/* the detail says how far it got and what was done to the card */
		cli_error("%s", *rig_errmsg(c->rig) ? rig_errmsg(c->rig) : "flash: interrupted");
		return cli_signal_exit();
	}
	if (rc < 0)
		return cli_fail(c, rc, "flash");
	{
		char path[4096], why[256];

		/* A Compute Module's disk is gone once it is powered off after flashing. */
		if (rig_storage_resolve(c->rig, path, sizeof(path), why, sizeof(why)) < 0) {
			snprintf(path, sizeof(path), "the rig's storage");
			rig_clear_error(c->rig);
			img = identify(c, image, NULL, &st);
		} else {
			img = identify(c, image, path, &st);
		}
		print_stats(c, image, path, &o, &st, img);
		rig_image_free(img);
	}
	return 0;
}
