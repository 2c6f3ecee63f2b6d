/* Base64 against RFC 4648's test vectors, in both alphabets. */
#include "config.h"

#include <string.h>

#include "core/base64.h"
#include "../tap.h"

static const char *
enc(const char *s, enum base64_kind kind)
{
	static char	 out[64];

	base64_encode(s, strlen(s), out, kind);
	return out;
}

int
main(void)
{
	static const char *const vectors[][3] = {
		{ "", "", "" },
		{ "f", "Zg==", "Zg" },
		{ "fo", "Zm8=", "Zm8" },
		{ "foo", "Zm9v", "Zm9v" },
		{ "foob", "Zm9vYg==", "Zm9vYg" },
		{ "fooba", "Zm9vYmE=", "Zm9vYmE" },
		{ "foobar", "Zm9vYmFy", "Zm9vYmFy" },
	};
	unsigned char	 high[] = { 0xfb, 0xff, 0xbf };
	char		 out[BASE64_SIZE(sizeof(high))];
	size_t		 i;

	for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		is_str(enc(vectors[i][0], BASE64_STD), vectors[i][1],
		    "standard: \"%s\"", vectors[i][0]);
		is_str(enc(vectors[i][0], BASE64_URL), vectors[i][2],
		    "URL-safe: \"%s\"", vectors[i][0]);
	}
	base64_encode(high, sizeof(high), out, BASE64_STD);
	is_str(out, "+/+/", "the standard alphabet's last two");
	base64_encode(high, sizeof(high), out, BASE64_URL);
	is_str(out, "-_-_", "the URL-safe alphabet's last two");
	is_str(enc("pk-lf-1:sk-lf-2", BASE64_STD), "cGstbGYtMTpzay1sZi0y",
	    "a Basic credential");
	return done_testing();
}
