/* SPDX-License-Identifier: MIT */
/*
 * rigor-flash-tool: a thin test driver over rig_flash.h until `rigor flash` exists.
 *   rigor-flash-tool flash IMAGE TARGET [--bmap F] [--no-bmap] [--no-verify] [--full]
 *                    [--force] [--json] [--progress] [--threads N] [--timeout MS]
 *                    [--inject PART:SRC:DEST] [--append PART:SRC:DEST]
 *                    [--no-direct] [--fault-write OFF:ERRNO] [--fault-corrupt OFF]
 *                    [--fault-delay MS] [--no-create]
 *   rigor-flash-tool detect IMAGE
 *   rigor-flash-tool part list IMAGE [--json]
 *   rigor-flash-tool put IMAGE PART FILE DEST [--append]
 *   rigor-flash-tool cat IMAGE PART PATH
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../../rig.h"
#include "../../rig_flash.h"
#include "../../rig_json.h"


/* One compact JSON document on a line of stdout, and the reference dropped. */
static void json_print(json_t *doc)
{
	char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;

	if (text)
		printf("%s\n", text);
	free(text);
	json_decref(doc);
}

static volatile sig_atomic_t cancelled;

static void on_signal(int sig)
{
	(void)sig;
	cancelled = 1;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: rigor-flash-tool flash IMAGE TARGET [--bmap F] [--no-bmap] [--no-verify]\n"
		"                        [--full] [--force] [--json] [--progress] [--threads N]\n"
		"                        [--timeout MS] [--inject PART:SRC:DEST] [--append PART:SRC:DEST]\n"
		"                        [--no-direct] [--fault-write OFF:ERRNO] [--fault-corrupt OFF]\n"
		"                        [--fault-delay MS] [--no-create] [--sha256]\n"
		"       rigor-flash-tool detect IMAGE\n"
		"       rigor-flash-tool part list IMAGE [--json]\n"
		"       rigor-flash-tool put IMAGE PART FILE DEST [--append]\n"
		"       rigor-flash-tool cat IMAGE PART PATH\n"
		"       rigor-flash-tool ls IMAGE PART\n");
	return 2;
}

static void show_progress(const struct rig_flash_progress *p, void *user)
{
	char line[256];

	(void)user;
	rig_flash_progress_format(p, line, sizeof(line));
	fprintf(stderr, "\r%-100s", line);
	if (p->phase == RIG_FLASH_PHASE_DONE)
		fputc('\n', stderr);
}

static int parse_inject(char *spec, bool append, struct rig_flash_inject *in)
{
	char *a = strchr(spec, ':'), *b;

	if (!a)
		return -1;
	b = strchr(a + 1, ':');
	if (!b)
		return -1;
	*a = *b = 0;
	in->part = spec;
	in->src = a + 1;
	in->dest = b + 1;
	in->append = append;
	return 0;
}

static int cmd_flash(int argc, char **argv)
{
	struct rig_flash_opts o;
	struct rig_flash_stats st;
	struct rig_flash_inject inj[16];
	struct sigaction sa;
	struct rig_ctx *ctx;
	const char *err;
	bool json = false;
	const char *pos[2];
	int npos = 0, i, rc;

	rig_flash_opts_init(&o);
	/* A test and bench driver: a missing TARGET is a new image file (never under /dev). */
	o.create = true;
	o.inject = inj;
	for (i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--bmap") && i + 1 < argc)
			o.bmap = argv[++i];
		else if (!strcmp(a, "--no-bmap"))
			o.no_bmap = true;
		else if (!strcmp(a, "--no-verify"))
			o.verify = false;
		else if (!strcmp(a, "--full"))
			o.full = true;
		else if (!strcmp(a, "--force"))
			o.force = true;
		else if (!strcmp(a, "--no-create"))
			o.create = false;
		else if (!strcmp(a, "--no-direct"))
			o.no_direct = true;
		else if (!strcmp(a, "--json"))
			json = true;
		else if (!strcmp(a, "--sha256"))
			o.hash_image = true;
		else if (!strcmp(a, "--progress"))
			o.progress = show_progress;
		else if (!strcmp(a, "--threads") && i + 1 < argc)
			o.threads = atoi(argv[++i]);
		else if (!strcmp(a, "--timeout") && i + 1 < argc)
			o.timeout_ms = atoi(argv[++i]);
		else if ((!strcmp(a, "--inject") || !strcmp(a, "--append")) && i + 1 < argc &&
			 o.n_inject < 16) {
			if (parse_inject(argv[i + 1], a[2] == 'a', &inj[o.n_inject]))
				return usage();
			o.n_inject++;
			i++;
		} else if (!strcmp(a, "--fault-write") && i + 1 < argc) {
			char *c;

			o.fault.write_offset = strtoll(argv[++i], &c, 0);
			o.fault.write_errno = *c == ':' ? atoi(c + 1) : EIO;
		} else if (!strcmp(a, "--fault-delay") && i + 1 < argc) {
			o.fault.chunk_delay_ms = atoi(argv[++i]);
		} else if (!strcmp(a, "--fault-corrupt") && i + 1 < argc) {
			o.fault.corrupt_offset = strtoll(argv[++i], NULL, 0);
		} else if (a[0] == '-' && a[1]) {
			return usage();
		} else if (npos < 2) {
			pos[npos++] = a;
		} else {
			return usage();
		}
	}
	if (npos != 2)
		return usage();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	ctx = rig_ctx_new();
	if (!ctx) {
		fprintf(stderr, "rigor-flash-tool: out of memory\n");
		return 1;
	}
	rig_ctx_set_cancel(ctx, &cancelled);

	rc = rig_flash_image(ctx, pos[0], pos[1], &o, &st);
	err = rig_ctx_errmsg(ctx);
	if (json) {
		json_t *doc = json_pack("{s:b, s:i, s:o, s:s, s:b, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
					" s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:s}",
					"ok", !rc, "code", rc, "error", rig_json_string(rc ? err : ""),
					"format", rig_flash_format_name(st.format), "bmap", st.bmap_used,
					"direct", st.direct_io, "image_size", (json_int_t)st.image_size,
					"read", (json_int_t)st.bytes_read,
					"decompressed", (json_int_t)st.bytes_decompressed,
					"undecoded", (json_int_t)st.bytes_undecoded,
					"mapped", (json_int_t)st.bytes_mapped,
					"written", (json_int_t)st.bytes_written,
					"skipped", (json_int_t)st.bytes_skipped,
					"blind", (json_int_t)st.bytes_blind,
					"verified", (json_int_t)st.bytes_verified,
					"fail_offset", (json_int_t)st.fail_offset, "t_prepare", st.t_prepare,
					"t_write", st.t_write, "t_sync", st.t_sync, "t_verify", st.t_verify,
					"t_inject", st.t_inject, "t_total", st.t_total, "mbps", st.mbps,
					"sha256", st.sha256);

		json_print(doc);
	} else if (!rc) {
		printf("flashed '%s' (%s%s) to '%s': %.1f MiB mapped, %.1f MiB written, %.1f MiB "
		       "skipped, %.1f MiB verified in %.2f s (%.1f MB/s)\n", pos[0],
		       rig_flash_format_name(st.format), st.bmap_used ? "+bmap" : "", pos[1],
		       st.bytes_mapped / 1048576.0, st.bytes_written / 1048576.0,
		       st.bytes_skipped / 1048576.0, st.bytes_verified / 1048576.0, st.t_total,
		       st.mbps);
	}
	if (rc)
		fprintf(stderr, "rigor-flash-tool: %s%s%s%s%s\n", err,
			st.hint == RIG_FLASH_HINT_FORCE ? " (--force to allow)" :
			st.hint == RIG_FLASH_HINT_CREATE ? " (leave out --no-create to make it)" : "",
			st.removed ? "; the new file '" : "", st.removed ? pos[1] : "",
			st.removed ? "' was removed" : "");
	rig_ctx_free(ctx);
	return rc == RIG_E_INTR ? 130 : rc ? 1 : 0;
}

static int cmd_part_list(int argc, char **argv)
{
	struct rig_part_table *t;
	struct rig_part_info in;
	char err[512];
	bool json = argc > 1 && !strcmp(argv[1], "--json");
	json_t *parts = NULL;
	size_t i;
	int rc;

	if (argc < 1)
		return usage();
	rc = rig_part_table_read(argv[0], &t, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "rigor-flash-tool: %s\n", err);
		return 1;
	}
	if (json)
		parts = json_array();
	else
		printf("scheme %s\n", rig_part_table_scheme(t) == RIG_PART_GPT ? "gpt" : "mbr");
	for (i = 0; rig_part_table_get(t, i, &in) == 0; i++) {
		const char *fs = in.fs == RIG_PART_FS_FAT ? "fat" : in.fs == RIG_PART_FS_EXT ?
				 "ext" : "-";
		char type[48];

		if (in.type_guid[0])
			snprintf(type, sizeof(type), "%s", in.type_guid);
		else
			snprintf(type, sizeof(type), "0x%02x", in.mbr_type);

		if (json)
			json_array_append_new(parts, json_pack("{s:i, s:I, s:I, s:s, s:o, s:o, s:s, s:b}",
							       "index", (int)in.index, "start", (json_int_t)in.start,
							       "size", (json_int_t)in.size, "type", type,
							       "name", rig_json_string(in.name), "label", rig_json_string(in.fs_label),
							       "fs", fs, "bootable", in.bootable));
		else
			printf("%u start=%" PRIu64 " size=%" PRIu64 " type=%s fs=%s label=%s "
			       "name=%s%s\n", in.index, in.start, in.size, type, fs, in.fs_label[0] ? in.fs_label : "-", in.name[0] ? in.name : "-",
			       in.bootable ? " boot" : "");
	}
	if (json)
		json_print(json_pack("{s:s, s:o}", "scheme",
				     rig_part_table_scheme(t) == RIG_PART_GPT ? "gpt" : "mbr", "partitions",
				     parts));
	rig_part_table_free(t);
	return 0;
}

static int cmd_put(int argc, char **argv)
{
	FILE *f;
	char *data = NULL, err[512];
	size_t len = 0, cap = 0, n;
	int rc;

	if (argc < 4)
		return usage();
	f = fopen(argv[2], "rb");
	if (!f) {
		fprintf(stderr, "rigor-flash-tool: cannot open '%s': %s\n", argv[2], strerror(errno));
		return 1;
	}
	for (;;) {
		if (len == cap) {
			cap = cap ? 2 * cap : 65536;
			data = realloc(data, cap);
			if (!data) {
				fclose(f);
				return 1;
			}
		}
		n = fread(data + len, 1, cap - len, f);
		if (!n)
			break;
		len += n;
	}
	fclose(f);
	rc = rig_part_file_write(argv[0], argv[1], argv[3], data, len,
				 argc > 4 && !strcmp(argv[4], "--append"), 30000, err, sizeof(err));
	free(data);
	if (rc) {
		fprintf(stderr, "rigor-flash-tool: %s\n", err);
		return 1;
	}
	return 0;
}

static int cmd_cat(int argc, char **argv)
{
	char *data, err[512];
	size_t len;
	int rc;

	if (argc < 3)
		return usage();
	rc = rig_part_file_read(argv[0], argv[1], argv[2], &data, &len, 30000, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "rigor-flash-tool: %s\n", err);
		return rc == -ENOENT ? 3 : 1;
	}
	fwrite(data, 1, len, stdout);
	free(data);
	return 0;
}

static int cmd_ls(int argc, char **argv)
{
	char *list, err[512];
	size_t len;
	int rc;

	if (argc < 2)
		return usage();
	rc = rig_part_file_list(argv[0], argv[1], &list, &len, 30000, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "rigor-flash-tool: %s\n", err);
		return 1;
	}
	fwrite(list, 1, len, stdout);
	free(list);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "flash"))
		return cmd_flash(argc - 2, argv + 2);
	if (!strcmp(argv[1], "detect") && argc == 3) {
		enum rig_flash_format f;
		struct rig_ctx *ctx = rig_ctx_new();

		if (!ctx || rig_flash_format_detect(ctx, argv[2], &f)) {
			fprintf(stderr, "rigor-flash-tool: %s\n", ctx ? rig_ctx_errmsg(ctx) : "out of memory");
			rig_ctx_free(ctx);
			return 1;
		}
		printf("%s\n", rig_flash_format_name(f));
		rig_ctx_free(ctx);
		return 0;
	}
	if (!strcmp(argv[1], "part") && argc >= 4 && !strcmp(argv[2], "list"))
		return cmd_part_list(argc - 3, argv + 3);
	if (!strcmp(argv[1], "put"))
		return cmd_put(argc - 2, argv + 2);
	if (!strcmp(argv[1], "cat"))
		return cmd_cat(argc - 2, argv + 2);
	if (!strcmp(argv[1], "ls"))
		return cmd_ls(argc - 2, argv + 2);
	return usage();
}
