#include "config.h"

#include <string.h>
#include <strings.h>

#include "core/sha256.h"
#include "auth.h"

int
auth_bearer(const char *header, const char **token, size_t *len)
{
	const char	*p, *end;

	if (header == NULL || strncasecmp(header, "Bearer", 6) != 0 ||
	    (header[6] != ' ' && header[6] != '\t'))
		return -1;
	for (p = header + 7; *p == ' ' || *p == '\t'; p++)
		;
	for (end = p + strlen(p); end > p && (end[-1] == ' ' ||
	    end[-1] == '\t'); end--)
		;
	if (end == p)
		return -1;
	*token = p;
	*len = (size_t)(end - p);
	return 0;
}

int
auth_token_equal(const char *token, size_t len, const char *expected)
{
	unsigned char	 a[SHA256_LEN], b[SHA256_LEN];
	volatile unsigned char diff = 0;
	size_t		 i;

	sha256(token, len, a);
	sha256(expected, strlen(expected), b);
	for (i = 0; i < SHA256_LEN; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}
