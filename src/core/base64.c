#include "config.h"

#include "base64.h"

void
base64_encode(const void *in, size_t n, char *out, enum base64_kind kind)
{
	static const char	 std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	static const char	 url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_";
	const unsigned char	*p = in;
	const char		*abc = kind == BASE64_URL ? url : std;
	unsigned		 v = 0;
	size_t			 i, written = 0;
	int			 bits = 0;

	for (i = 0; i < n; i++) {
		v = (v << 8 | p[i]) & 0xffff;
		bits += 8;
		while (bits >= 6) {
			out[written++] = abc[(v >> (bits - 6)) & 63];
			bits -= 6;
		}
	}
	if (bits > 0)
		out[written++] = abc[(v << (6 - bits)) & 63];
	while (kind == BASE64_STD && written % 4 != 0)
		out[written++] = '=';
	out[written] = '\0';
}
