/*
 * Request ids: 32 lower-case hex digits, time-ordered (48 bits of Unix
 * milliseconds, then 80 random bits), unique across threads and processes.
 * A client may send its own X-Request-Id; reqid_valid() says whether it is
 * safe to echo into headers and logs.
 */
#ifndef REQID_H
#define REQID_H

#include <stddef.h>
#include <stdint.h>

#define REQID_LEN	32	/* a generated id */
#define REQID_MAX	64	/* the longest accepted from a client */

/* Write a new id and its NUL into "out" (REQID_LEN + 1 bytes). */
void	 reqid_new(char *out);

/* 1 if "s" is 1 to REQID_MAX characters of [A-Za-z0-9._:-]. */
int	 reqid_valid(const char *s);

/* A random 64-bit number from a per-thread generator. */
uint64_t reqid_random(void);

#endif /* REQID_H */
