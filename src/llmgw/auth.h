/*
 * Client authentication: the bearer token from the Authorization header,
 * compared in constant time.
 */
#ifndef AUTH_H
#define AUTH_H

#include <stddef.h>

/*
 * Find the token in an "Authorization: Bearer <token>" value ("header"
 * may be NULL).  Returns 0 and points "*token" into "header", or -1.
 */
int	 auth_bearer(const char *header, const char **token, size_t *len);

/*
 * 1 if the "len" bytes of "token" equal "expected", in time that depends
 * on neither: both are hashed first and the digests compared in full.
 */
int	 auth_token_equal(const char *token, size_t len, const char *expected);

/*
 * 1 if "addr" (a REMOTE_ADDR, or NULL) is a loopback address: 127.0.0.0/8,
 * ::1, or 127.0.0.0/8 mapped into IPv6.
 */
int	 auth_loopback(const char *addr);

#endif /* AUTH_H */
