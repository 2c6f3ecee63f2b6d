/*
 * Base64 (RFC 4648): the standard alphabet with padding, as HTTP's Basic
 * authentication wants, or the URL-safe one without, for secrets that go
 * in URLs and headers as they are.
 */
#ifndef BASE64_H
#define BASE64_H

#include <stddef.h>

enum base64_kind {
	BASE64_STD,		/* A-Z a-z 0-9 + /, padded with = */
	BASE64_URL		/* A-Z a-z 0-9 - _, no padding */
};

/* The characters "n" bytes take, with the NUL: out's least size. */
#define BASE64_SIZE(n)	(((n) + 2) / 3 * 4 + 1)

/* Encode "n" bytes of "in" into "out", NUL-terminated. */
void	 base64_encode(const void *in, size_t n, char *out,
	    enum base64_kind);

#endif /* BASE64_H */
