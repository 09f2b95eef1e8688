/* SPDX-License-Identifier: MIT */
/* rig_json_string(): see rig_json.h. */
#include <stdlib.h>
#include <string.h>

#include "rig_json.h"

/* Length of the valid UTF-8 sequence at @p s (at most @p n bytes), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned int cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8 */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

json_t *rig_json_string(const char *s)
{
	size_t n, o = 0;
	unsigned char *buf;
	json_t *j;

	if (!s)
		return json_null();
	n = strlen(s);
	/* the common case: already UTF-8 (jansson checks, and escapes '"', '\' and controls) */
	j = json_stringn(s, n);
	if (j)
		return j;
	buf = malloc(n * 3 + 1);
	if (!buf)
		return NULL;
	for (size_t i = 0; i < n;) {
		size_t l = utf8_seq((const unsigned char *)s + i, n - i);

		if (l) {
			memcpy(buf + o, s + i, l);
			o += l, i += l;
		} else {
			/* one U+FFFD REPLACEMENT CHARACTER per byte that is not UTF-8 */
			memcpy(buf + o, "\xef\xbf\xbd", 3);
			o += 3, i++;
		}
	}
	j = json_stringn((const char *)buf, o);
	free(buf);
	return j;
}
