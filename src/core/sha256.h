/*
 * SHA-256 (FIPS 180-4), for hashing API keys and comparing tokens in
 * constant time.  Small and dependency-free on purpose.
 */
#ifndef SHA256_H
#define SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN	32

struct sha256 {
	uint32_t	 h[8];
	uint64_t	 total;		/* bytes hashed so far */
	unsigned char	 block[64];
	size_t		 used;		/* bytes waiting in "block" */
};

void	 sha256_init(struct sha256 *);
void	 sha256_update(struct sha256 *, const void *, size_t);
void	 sha256_final(struct sha256 *, unsigned char out[SHA256_LEN]);

/* One call: hash "len" bytes of "p". */
void	 sha256(const void *p, size_t len, unsigned char out[SHA256_LEN]);
/* As lower-case hex with a NUL: "out" holds 2 * SHA256_LEN + 1 bytes. */
void	 sha256_hex(const void *p, size_t len, char *out);

#endif /* SHA256_H */
