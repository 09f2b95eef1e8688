/* SPDX-License-Identifier: MIT */
/* rigor image inspect: option parsing, one library call, and printing what it found. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "rig_image.h"

/* Prints @s with control bytes as \xNN: an image's labels must not drive the terminal. */
static void show(const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c == 0x7f)
			printf("\\x%02X", c);
		else
			putchar(c);
	}
}

static void size_text(uint64_t b, char *buf, size_t len)
{
	if (b >= 1024 * 1024)
		snprintf(buf, len, "%.1f MiB", b / 1048576.0);
	else
		snprintf(buf, len, "%llu bytes", (unsigned long long)b);
}

static void print_human(const struct rig_image *img)
{
	const char *pretty = rig_image_os_release(img, "PRETTY_NAME");
	const char *id = rig_image_os_release(img, "ID");
	char a[32], b[32];
	size_t n = rig_image_part_count(img);

	printf("image       ");
	show(rig_image_name(img));
	size_text(rig_image_size(img), a, sizeof(a));
	size_text(rig_image_raw_size(img), b, sizeof(b));
	printf("\nformat      %s, %s", rig_image_format(img), a);
	if (strcmp(rig_image_format(img), "raw"))
		printf(" (%s raw)", b);
	printf("\nsha256      %s\n", rig_image_sha256(img));
	printf("version     ");
	show(rig_image_version(img) ? rig_image_version(img) : "(unknown)");
	printf("\nos          ");
	if (id || pretty) {
		show(pretty ? pretty : id);
		if (id && pretty) {
			printf(" (ID ");
			show(id);
			printf(")");
		}
	} else {
		printf("(no os-release found)");
	}
	printf("\nbootloader  %s\n", rig_image_bootloader(img));
	if (rig_image_is_balena(img)) {
		int cj = rig_image_has_config_json(img);

		printf("balena      device type ");
		show(rig_image_device_type(img) ? rig_image_device_type(img) : "(unknown)");
		printf(", config.json %s\n", cj == 1 ? "present" : cj == 0 ? "absent" : "unknown");
	}
	printf("partitions  %zu\n", n);
	for (size_t i = 0; i < n; i++) {
		struct rig_image_part p;

		rig_image_part_get(img, i, &p);
		size_text(p.start, a, sizeof(a));
		size_text(p.size, b, sizeof(b));
		printf("  %-2u at %-10s %-11s %-6s %-22s", p.number, a, b, *p.fs ? p.fs : "-",
		       *p.type_name ? p.type_name : p.type);
		if (*p.name) {
			printf(" name ");
			show(p.name);
		}
		if (*p.label) {
			printf(" label ");
			show(p.label);
		}
		printf("%s\n", p.bootable ? " bootable" : "");
	}
}

int cmd_image(struct cli *c, int argc, char **argv)
{
	struct rig_image_opts o;
	struct rig_image *img;
	const char *path = NULL;
	int rc;

	if (argc < 2 || strcmp(argv[1], "inspect")) {
		cli_error("image: which action? (rigor image inspect IMAGE [--json])");
		return EXIT_USAGE;
	}
	rig_image_opts_init(&o);
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			c->json = true;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			cli_error("image: unknown option '%s' (see 'rigor image --help')", argv[i]);
			return EXIT_USAGE;
		} else if (!path) {
			path = argv[i];
		} else {
			cli_error("image: one image at a time ('%s' and '%s')", path, argv[i]);
			return EXIT_USAGE;
		}
	}
	if (!path) {
		cli_error("image: which image? (rigor image inspect IMAGE)");
		return EXIT_USAGE;
	}
	rc = rig_image_inspect(c->ctx, path, &o, &img);
	if (rc < 0)
		return cli_fail(c, rc, "image");
	if (c->json) {
		char *s = rig_image_to_json(img, 2);

		if (!s) {
			rig_image_free(img);
			cli_error("image: out of memory");
			return EXIT_INFRA;
		}
		printf("%s\n", s);
		free(s);
	} else {
		print_human(img);
	}
	rig_image_free(img);
	return 0;
}
