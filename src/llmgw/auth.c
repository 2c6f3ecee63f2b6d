#include "config.h"

#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
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

int
auth_loopback(const char *addr)
{
	struct in_addr	 v4;
	struct in6_addr	 v6;

	if (addr == NULL)
		return 0;
	if (inet_pton(AF_INET, addr, &v4) == 1)
		return (ntohl(v4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, addr, &v6) != 1)
		return 0;
	if (IN6_IS_ADDR_LOOPBACK(&v6))
		return 1;
	return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
}
