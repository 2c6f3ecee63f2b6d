/*
 * JSON helpers: writing string literals into a buffer, and a cheap first
 * pass over untrusted JSON text that cJSON does not do for us.
 */
#ifndef JSON_H
#define JSON_H

#include <stddef.h>

#include "buf.h"

/*
 * Append "s" ("len" bytes) as a quoted JSON string.  Returns 0, or -1 if
 * the buffer is full.
 */
int	 json_add_str(struct buf *, const char *s, size_t len) BUF_CHECK;
int	 json_add_cstr(struct buf *, const char *s) BUF_CHECK; /* NULL: null */

enum json_scan_result {
	JSON_SCAN_OK = 0,
	JSON_SCAN_UTF8,		/* invalid UTF-8 */
	JSON_SCAN_CONTROL,	/* raw control character inside a string */
	JSON_SCAN_NUL,		/* NUL byte, raw or as \u0000 */
	JSON_SCAN_DEPTH,	/* nested deeper than the limit */
	JSON_SCAN_SYNTAX	/* unbalanced brackets or an open string */
};

/*
 * Check "len" bytes of JSON text: valid UTF-8, no raw control characters
 * or NUL escapes in strings, brackets nested at most "max_depth" deep.
 * It is not a full parser; cJSON does the rest.  On failure "*where" is
 * the byte offset of the problem.
 */
enum json_scan_result json_scan(const char *, size_t len, int max_depth,
	    size_t *where);

/* A short English description of a scan result. */
const char *json_scan_msg(enum json_scan_result);

/*
 * Length of the longest prefix of "s" (at most "len" bytes) that is valid
 * UTF-8.  Equal to "len" when all of it is.
 */
size_t	 utf8_valid_prefix(const char *s, size_t len);

#endif /* JSON_H */
