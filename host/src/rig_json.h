/* SPDX-License-Identifier: MIT */
/*
 * rig_json.h: JSON strings from C strings that may hold anything (labels and names read
 * from untrusted images, paths, console bytes), for every program built on librig that
 * prints JSON through jansson: the rigor CLI and rigor-flash-tool.
 */
#ifndef RIGOR_RIG_JSON_H
#define RIGOR_RIG_JSON_H

#include <jansson.h>

/*
 * @s as a JSON string; bytes that are not UTF-8 become U+FFFD, one per byte (JSON text is
 * Unicode); NULL becomes null. Returns a new reference, NULL when out of memory
 * (json_pack's "o" then fails too).
 */
json_t *rig_json_string(const char *s);

#endif
