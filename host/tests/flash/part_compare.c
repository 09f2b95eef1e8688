/* SPDX-License-Identifier: MIT */
/*
 * part_compare [--differs WHY] IMAGE...: reads each image with librigflash's partition reader (libblkid)
 * and with the hand-written parser it replaced (fixtures/part_hand.c), and prints TAP:
 * every image the hand parser read must be read by libblkid with the same scheme,
 * partitions (number, start, size, MBR type, GPT type and name, bootable flag) and file
 * systems and labels. An image both refuse passes; one only libblkid reads is reported
 * (with what the hand parser said) and passes. --differs WHY names a known difference for
 * the image after it: the image passes when the two do differ (saying WHY) and fails when
 * they agree, so the note cannot go stale. Ends with a count of each.
 */
#include <stdio.h>
#include <string.h>

#include "rig_flash.h"

struct hand_part_table;
int hand_part_table_read(const char *path, struct hand_part_table **out, char *err, size_t errlen);
void hand_part_table_free(struct hand_part_table *t);
enum rig_part_scheme hand_part_table_scheme(const struct hand_part_table *t);
size_t hand_part_table_count(const struct hand_part_table *t);
int hand_part_table_get(const struct hand_part_table *t, size_t pos, struct rig_part_info *info);

static const char *fs_name(enum rig_part_fs fs)
{
	return fs == RIG_PART_FS_FAT ? "fat" : fs == RIG_PART_FS_EXT ? "ext" : "-";
}

static void describe(const struct rig_part_info *i, char *buf, size_t len)
{
	snprintf(buf, len, "%u start=%llu size=%llu type=0x%02x guid=%s name=%s fs=%s label=%s%s",
		 i->index, (unsigned long long)i->start, (unsigned long long)i->size, i->mbr_type,
		 i->type_guid, i->name, fs_name(i->fs), i->fs_label, i->bootable ? " boot" : "");
}

int main(int argc, char **argv)
{
	int n = 0, fail = 0, same = 0, refused = 0, lenient = 0, known = 0;
	const char *differs = NULL;

	for (int a = 1; a < argc; a++) {
		struct hand_part_table *h = NULL;
		struct rig_part_table *b = NULL;
		char herr[512], berr[512], why[1024] = "";
		int hrc, brc;

		if (!strcmp(argv[a], "--differs") && a + 2 < argc) {
			differs = argv[++a];
			continue;
		}
		hrc = hand_part_table_read(argv[a], &h, herr, sizeof(herr));
		brc = rig_part_table_read(argv[a], &b, berr, sizeof(berr));
		n++;
		if (hrc < 0 && brc < 0) {
			differs = NULL;
			refused++;
			printf("ok %d - %s: both refuse it\n#   hand:    %s\n#   libblkid: %s\n", n,
			       argv[a], herr, berr);
			continue;
		}
		if (hrc < 0) {
			differs = NULL;
			lenient++;
			printf("ok %d - %s: libblkid reads what the hand parser refused (%s)\n", n,
			       argv[a], herr);
			rig_part_table_free(b);
			continue;
		}
		if (brc < 0) {
			snprintf(why, sizeof(why), "libblkid refuses it: %s", berr);
		} else if (hand_part_table_scheme(h) != rig_part_table_scheme(b)) {
			snprintf(why, sizeof(why), "scheme %d, libblkid %d", hand_part_table_scheme(h),
				 rig_part_table_scheme(b));
		} else if (hand_part_table_count(h) != rig_part_table_count(b)) {
			snprintf(why, sizeof(why), "%zu partitions, libblkid %zu",
				 hand_part_table_count(h), rig_part_table_count(b));
		} else {
			for (size_t k = 0; k < hand_part_table_count(h) && !why[0]; k++) {
				struct rig_part_info hi, bi;
				char hs[400], bs[400];

				hand_part_table_get(h, k, &hi);
				rig_part_table_get(b, k, &bi);
				describe(&hi, hs, sizeof(hs));
				describe(&bi, bs, sizeof(bs));
				if (strcmp(hs, bs))
					snprintf(why, sizeof(why), "hand     %s\n#   libblkid %s", hs, bs);
			}
		}
		if (differs) {
			if (why[0]) {
				known++;
				printf("ok %d - %s: known difference: %s\n#   %s\n", n, argv[a], differs, why);
			} else {
				fail++;
				printf("not ok %d - %s: read the same by both, but noted as a difference (%s)\n",
				       n, argv[a], differs);
			}
			differs = NULL;
		} else if (why[0]) {
			fail++;
			printf("not ok %d - %s: libblkid reads it differently\n#   %s\n", n, argv[a], why);
		} else {
			struct rig_part_info i;
			char labels[256] = "";
			size_t o = 0;

			same++;
			for (size_t k = 0; k < rig_part_table_count(b) && o < sizeof(labels); k++) {
				rig_part_table_get(b, k, &i);
				o += (size_t)snprintf(labels + o, sizeof(labels) - o, " %u:%s%s%s", i.index,
						      fs_name(i.fs), i.fs_label[0] ? "/" : "", i.fs_label);
			}
			printf("ok %d - %s: same %s table, %zu partitions:%s\n", n, argv[a],
			       rig_part_table_scheme(b) == RIG_PART_GPT ? "GPT" : "MBR",
			       rig_part_table_count(b), labels);
		}
		hand_part_table_free(h);
		rig_part_table_free(b);
	}
	printf("# %d images: %d read the same by both, %d refused by both, %d read only by libblkid, %d known differences, %d read differently or refused by libblkid\n",
	       n, same, refused, lenient, known, fail);
	printf("1..%d\n", n);
	return fail ? 1 : 0;
}
