/* SPDX-License-Identifier: MIT */
/* bmap files as bmaptool writes them: 1.x (SHA-1 per range) and 2.x (ChecksumType). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flash_internal.h"

size_t fl_csum_len(enum fl_csum c)
{
	return c == FL_CSUM_SHA1 ? 20 : c == FL_CSUM_SHA256 ? 32 : 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Parses exactly n bytes of hex after trimming blanks; returns false if malformed. */
static bool parse_hex(const char *s, unsigned char *out, size_t n)
{
	size_t i;

	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	for (i = 0; i < n; i++) {
		int h = hexval((unsigned char)s[2 * i]), l;

		if (h < 0)
			return false;
		l = hexval((unsigned char)s[2 * i + 1]);
		if (l < 0)
			return false;
		out[i] = (unsigned char)(h << 4 | l);
	}
	s += 2 * n;
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	return *s == 0;
}

static bool parse_u64(const char *s, uint64_t *v)
{
	char *end;

	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*v = strtoull(s, &end, 10);
	if (errno)
		return false;
	while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')
		end++;
	return *end == 0;
}

static const char *node_text(xmlNode *n, char *buf, size_t len)
{
	xmlChar *c = xmlNodeGetContent(n);

	snprintf(buf, len, "%s", c ? (const char *)c : "");
	xmlFree(c);
	return buf;
}

static int get_u64(xmlNode *root, const char *name, uint64_t *v, bool required,
		   const char *file, struct fl_err *e)
{
	char buf[64];
	xmlNode *n;

	for (n = root->children; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, name))
			continue;
		if (!parse_u64(node_text(n, buf, sizeof(buf)), v))
			return fl_err_set(e, -EINVAL, "bmap '%s': bad <%s> value '%s'", file, name,
					  buf);
		return 1;
	}
	if (required)
		return fl_err_set(e, -EINVAL, "bmap '%s': missing <%s>", file, name);
	return 0;
}

static xmlNode *child(xmlNode *root, const char *name)
{
	xmlNode *n;

	for (n = root->children; n; n = n->next)
		if (n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name))
			return n;
	return NULL;
}

/* The file checksum is computed over the file with its own value replaced by zeros. */
static int check_file_csum(const char *text, size_t len, const char *hex, enum fl_csum c,
			   const char *file, struct fl_err *e)
{
	unsigned char want[32], got[32];
	size_t hl = 2 * fl_csum_len(c);
	const char *p = NULL, *q;
	char *copy;
	unsigned int gl = 0;

	while (*hex == ' ' || *hex == '\n' || *hex == '\t' || *hex == '\r')
		hex++;
	if (strlen(hex) < hl || !parse_hex(hex, want, fl_csum_len(c)))
		return fl_err_set(e, -EINVAL, "bmap '%s': bad file checksum", file);
	copy = malloc(len);
	if (!copy)
		return fl_err_set(e, -ENOMEM, "out of memory");
	memcpy(copy, text, len);
	/* bmaptool replaces every occurrence of the value, so do we. */
	for (q = text; (q = memmem(q, len - (size_t)(q - text), hex, hl)); q += hl) {
		p = q;
		memset(copy + (q - text), '0', hl);
	}
	if (!p) {
		free(copy);
		return fl_err_set(e, -EINVAL, "bmap '%s': file checksum not found in text", file);
	}
	EVP_Digest(copy, len, got, &gl, c == FL_CSUM_SHA1 ? EVP_sha1() : EVP_sha256(), NULL);
	free(copy);
	if (memcmp(got, want, fl_csum_len(c)))
		return fl_err_set(e, -EBADMSG, "bmap '%s' is corrupt: its own checksum does not "
				  "match", file);
	return 0;
}

int fl_bmap_parse(const char *text, size_t len, const char *file, struct fl_bmap *bm,
		  struct fl_err *e)
{
	xmlDoc *doc;
	xmlNode *root, *map, *n, *fc;
	xmlChar *ver;
	char buf[128];
	size_t cap = 0;
	uint64_t next = 0, mapped = 0, dummy;
	int rc = 0;

	memset(bm, 0, sizeof(*bm));
	doc = xmlReadMemory(text, (int)len, file, NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc)
		return fl_err_set(e, -EINVAL, "bmap '%s' is not well-formed XML", file);
	root = xmlDocGetRootElement(doc);
	if (!root || strcmp((const char *)root->name, "bmap")) {
		rc = fl_err_set(e, -EINVAL, "bmap '%s': root element is not <bmap>", file);
		goto out;
	}
	ver = xmlGetProp(root, (const xmlChar *)"version");
	if (!ver || sscanf((const char *)ver, "%d.%d", &bm->major, &bm->minor) != 2 ||
	    bm->major < 1 || bm->major > 2) {
		rc = fl_err_set(e, -EINVAL, "bmap '%s': unsupported version '%s'", file,
				ver ? (const char *)ver : "(none)");
		xmlFree(ver);
		goto out;
	}
	xmlFree(ver);
	if ((rc = get_u64(root, "ImageSize", &bm->image_size, true, file, e)) < 0 ||
	    (rc = get_u64(root, "BlockSize", &bm->block_size, true, file, e)) < 0 ||
	    (rc = get_u64(root, "BlocksCount", &bm->blocks, true, file, e)) < 0 ||
	    (rc = get_u64(root, "MappedBlocksCount", &dummy, false, file, e)) < 0)
		goto out;
	bm->mapped_blocks = rc == 1 ? dummy : 0;
	rc = 0;
	if (bm->block_size < 512 || (bm->block_size & (bm->block_size - 1)) ||
	    bm->block_size > (1u << 20)) {
		rc = fl_err_set(e, -EINVAL, "bmap '%s': bad block size %" PRIu64, file,
				bm->block_size);
		goto out;
	}
	if ((bm->image_size + bm->block_size - 1) / bm->block_size != bm->blocks) {
		rc = fl_err_set(e, -EINVAL, "bmap '%s': BlocksCount %" PRIu64 " does not match "
				"ImageSize %" PRIu64, file, bm->blocks, bm->image_size);
		goto out;
	}
	if (bm->major >= 2) {
		n = child(root, "ChecksumType");
		node_text(n ? n : root, buf, sizeof(buf));
		if (!n) {
			rc = fl_err_set(e, -EINVAL, "bmap '%s': missing <ChecksumType>", file);
			goto out;
		}
		if (strstr(buf, "sha256"))
			bm->csum = FL_CSUM_SHA256;
		else if (strstr(buf, "sha1"))
			bm->csum = FL_CSUM_SHA1;
		else {
			rc = fl_err_set(e, -EINVAL, "bmap '%s': unknown checksum type '%s'", file,
					buf);
			goto out;
		}
		fc = child(root, "BmapFileChecksum");
	} else {
		bm->csum = FL_CSUM_SHA1;
		fc = child(root, "BmapFileSHA1");
	}
	if (fc) {
		xmlChar *c = xmlNodeGetContent(fc);

		rc = check_file_csum(text, len, c ? (const char *)c : "", bm->csum, file, e);
		xmlFree(c);
		if (rc)
			goto out;
	}
	map = child(root, "BlockMap");
	if (!map) {
		rc = fl_err_set(e, -EINVAL, "bmap '%s': missing <BlockMap>", file);
		goto out;
	}
	for (n = map->children; n; n = n->next) {
		struct fl_range *r;
		xmlChar *cs;
		char *dash, *end;
		unsigned long long a, b;

		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (strcmp((const char *)n->name, "Range")) {
			rc = fl_err_set(e, -EINVAL, "bmap '%s': unexpected <%s> in <BlockMap>",
					file, (const char *)n->name);
			goto out;
		}
		if (bm->n == cap) {
			void *p;

			cap = cap ? 2 * cap : 64;
			p = realloc(bm->r, cap * sizeof(*bm->r));
			if (!p) {
				rc = fl_err_set(e, -ENOMEM, "out of memory");
				goto out;
			}
			bm->r = p;
		}
		r = &bm->r[bm->n];
		memset(r, 0, sizeof(*r));
		node_text(n, buf, sizeof(buf));
		errno = 0;
		a = strtoull(buf, &end, 10);
		b = a;
		dash = end;
		while (*dash == ' ' || *dash == '\n' || *dash == '\t')
			dash++;
		if (*dash == '-') {
			b = strtoull(dash + 1, &end, 10);
			dash = end;
		}
		while (*dash == ' ' || *dash == '\n' || *dash == '\t' || *dash == '\r')
			dash++;
		if (errno || end == buf || *dash || !strpbrk(buf, "0123456789") || b < a) {
			rc = fl_err_set(e, -EINVAL, "bmap '%s': bad range '%s'", file, buf);
			goto out;
		}
		if (a < next || b >= bm->blocks) {
			rc = fl_err_set(e, -EINVAL, "bmap '%s': range %llu-%llu %s", file, a, b,
					a < next ? "overlaps or is out of order" :
						   "lies beyond the image");
			goto out;
		}
		r->first = a;
		r->last = b;
		next = b + 1;
		mapped += b - a + 1;
		cs = xmlGetProp(n, (const xmlChar *)(bm->major >= 2 ? "chksum" : "sha1"));
		if (cs) {
			r->has_digest = parse_hex((const char *)cs, r->digest,
						  fl_csum_len(bm->csum));
			if (!r->has_digest) {
				rc = fl_err_set(e, -EINVAL, "bmap '%s': bad checksum for range "
						"%llu-%llu", file, a, b);
				xmlFree(cs);
				goto out;
			}
			xmlFree(cs);
		}
		bm->n++;
	}
	if (bm->mapped_blocks && bm->mapped_blocks != mapped) {
		rc = fl_err_set(e, -EINVAL, "bmap '%s': MappedBlocksCount %" PRIu64 " but ranges "
				"map %" PRIu64 " blocks", file, bm->mapped_blocks, mapped);
		goto out;
	}
	bm->mapped_blocks = mapped;
out:
	xmlFreeDoc(doc);
	if (rc)
		fl_bmap_release(bm);
	return rc;
}

int fl_bmap_load(const char *path, struct fl_bmap *bm, struct fl_err *e)
{
	struct stat st;
	char *text;
	ssize_t n;
	size_t got = 0;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fl_err_set(e, -errno, "cannot open bmap '%s': %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || st.st_size > (64 << 20)) {
		close(fd);
		return fl_err_set(e, -EINVAL, "bmap '%s' is not a usable file", path);
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		close(fd);
		return fl_err_set(e, -ENOMEM, "out of memory");
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, text + got, (size_t)st.st_size - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	text[got] = 0;
	rc = fl_bmap_parse(text, got, path, bm, e);
	free(text);
	return rc;
}

void fl_bmap_release(struct fl_bmap *bm)
{
	free(bm->r);
	bm->r = NULL;
	bm->n = 0;
}

static bool exists(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

char *rig_flash_bmap_find(const char *image)
{
	static const char *const sfx[] = { ".gz", ".xz", ".zst", ".bz2", ".zip", ".zstd",
					   ".gzip", ".bzip2" };
	static const char *const img[] = { ".img", ".raw", ".balenaos-img", ".sdcard", ".wic" };
	size_t n = strlen(image), i, j, base = n;
	char *p = malloc(n + 8);

	if (!p)
		return NULL;
	snprintf(p, n + 8, "%s.bmap", image);
	if (exists(p))
		return p;
	for (i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		size_t k = strlen(sfx[i]);

		if (n > k && !strcasecmp(image + n - k, sfx[i])) {
			base = n - k;
			snprintf(p, n + 8, "%.*s.bmap", (int)base, image);
			if (exists(p))
				return p;
			break;
		}
	}
	for (j = 0; j < sizeof(img) / sizeof(img[0]); j++) {
		size_t k = strlen(img[j]);

		if (base > k && !strncasecmp(image + base - k, img[j], k)) {
			snprintf(p, n + 8, "%.*s.bmap", (int)(base - k), image);
			if (exists(p))
				return p;
		}
	}
	free(p);
	return NULL;
}

void fl_bmap_digest_init(const struct fl_bmap *bm, void *md)
{
	EVP_DigestInit_ex(md, bm->csum == FL_CSUM_SHA1 ? EVP_sha1() : EVP_sha256(), NULL);
}

bool fl_bmap_digest_ok(const struct fl_bmap *bm, void *md, const struct fl_range *r)
{
	unsigned char got[EVP_MAX_MD_SIZE];
	unsigned int gl = 0;

	EVP_DigestFinal_ex(md, got, &gl);
	return !memcmp(got, r->digest, fl_csum_len(bm->csum));
}

const char *fl_bmap_digest_msg(const struct fl_bmap *bm, const struct fl_range *r, char *m,
			       size_t len)
{
	snprintf(m, len, "bmap checksum mismatch for blocks %" PRIu64 "-%" PRIu64 " (bytes %"
		 PRIu64 "-%" PRIu64 "): image and bmap do not match or the image is corrupt",
		 r->first, r->last, r->first * bm->block_size,
		 (r->last + 1) * bm->block_size - 1);
	return m;
}
