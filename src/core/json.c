#include "config.h"

#include <string.h>

#include "buf.h"
#include "json.h"

int
json_add_str(struct buf *b, const char *s, size_t len)
{
	static const char	 hex[] = "0123456789abcdef";
	const char		*run;
	char			 esc[7];
	size_t			 i;
	unsigned char		 c;

	if (buf_addc(b, '"') == -1)
		return -1;
	run = s;
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		if (buf_add(b, run, (size_t)(s + i - run)) == -1)
			return -1;
		run = s + i + 1;
		switch (c) {
		case '"':  memcpy(esc, "\\\"", 3); break;
		case '\\': memcpy(esc, "\\\\", 3); break;
		case '\n': memcpy(esc, "\\n", 3); break;
		case '\r': memcpy(esc, "\\r", 3); break;
		case '\t': memcpy(esc, "\\t", 3); break;
		default:
			esc[0] = '\\';
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 0xf];
			esc[6] = '\0';
			break;
		}
		if (buf_adds(b, esc) == -1)
			return -1;
	}
	if (buf_add(b, run, (size_t)(s + len - run)) == -1)
		return -1;
	return buf_addc(b, '"');
}

int
json_add_cstr(struct buf *b, const char *s)
{
	if (s == NULL)
		return buf_adds(b, "null");
	return json_add_str(b, s, strlen(s));
}

/*
 * Length of the UTF-8 sequence at "p" (at most "left" bytes), or 0 if it
 * is not valid: no overlong forms, no surrogates, nothing above U+10FFFF.
 */
static size_t
utf8_seq(const unsigned char *p, size_t left)
{
	unsigned char	 c = p[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		if (left < 2 || (p[1] & 0xc0) != 0x80)
			return 0;
		return 2;
	}
	if (c >= 0xe0 && c <= 0xef) {
		if (left < 3 || (p[1] & 0xc0) != 0x80 ||
		    (p[2] & 0xc0) != 0x80)
			return 0;
		if (c == 0xe0 && p[1] < 0xa0)
			return 0;	/* overlong */
		if (c == 0xed && p[1] >= 0xa0)
			return 0;	/* surrogate */
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (left < 4 || (p[1] & 0xc0) != 0x80 ||
		    (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
			return 0;
		if (c == 0xf0 && p[1] < 0x90)
			return 0;	/* overlong */
		if (c == 0xf4 && p[1] >= 0x90)
			return 0;	/* above U+10FFFF */
		return 4;
	}
	return 0;
}

size_t
utf8_valid_prefix(const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, n;

	while (i < len) {
		if ((n = utf8_seq(p + i, len - i)) == 0)
			break;
		i += n;
	}
	return i;
}

enum json_scan_result
json_scan(const char *s, size_t len, int max_depth, size_t *where)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, n;
	int			 depth = 0, in_str = 0;
	enum json_scan_result	 r;

	while (i < len) {
		if (p[i] == '\0') {
			r = JSON_SCAN_NUL;
			goto bad;
		}
		if ((n = utf8_seq(p + i, len - i)) == 0) {
			r = JSON_SCAN_UTF8;
			goto bad;
		}
		if (n > 1) {
			i += n;
			continue;
		}
		if (in_str) {
			if (p[i] == '"')
				in_str = 0;
			else if (p[i] < 0x20) {
				r = JSON_SCAN_CONTROL;
				goto bad;
			} else if (p[i] == '\\') {
				if (len - i >= 6 && memcmp(p + i + 1, "u0000",
				    5) == 0) {
					r = JSON_SCAN_NUL;
					goto bad;
				}
				if (i + 1 < len)
					i++;	/* skip the escaped byte */
			}
		} else if (p[i] == '"') {
			in_str = 1;
		} else if (p[i] == '[' || p[i] == '{') {
			if (++depth > max_depth) {
				r = JSON_SCAN_DEPTH;
				goto bad;
			}
		} else if (p[i] == ']' || p[i] == '}') {
			if (--depth < 0) {
				r = JSON_SCAN_SYNTAX;
				goto bad;
			}
		}
		i++;
	}
	if (in_str || depth != 0) {
		r = JSON_SCAN_SYNTAX;
		goto bad;
	}
	return JSON_SCAN_OK;
bad:
	if (where != NULL)
		*where = i;
	return r;
}

const char *
json_scan_msg(enum json_scan_result r)
{
	switch (r) {
	case JSON_SCAN_OK:
		return "valid";
	case JSON_SCAN_UTF8:
		return "invalid UTF-8";
	case JSON_SCAN_CONTROL:
		return "invalid control character in string";
	case JSON_SCAN_NUL:
		return "NUL character";
	case JSON_SCAN_DEPTH:
		return "nested too deeply";
	case JSON_SCAN_SYNTAX:
		return "unbalanced brackets or unterminated string";
	}
	return "invalid";
}
