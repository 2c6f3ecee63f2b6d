#include "config.h"

#include <string.h>

#include "core/sha256.h"
#include "../tap.h"

int
main(void)
{
	char		 hex[2 * SHA256_LEN + 1], million[1000];
	struct sha256	 s;
	unsigned char	 md[SHA256_LEN];
	int		 i;

	sha256_hex("", 0, hex);
	is_str(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b"
	    "7852b855", "SHA-256 of nothing");
	sha256_hex("abc", 3, hex);
	is_str(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61"
	    "f20015ad", "SHA-256 of abc");
	sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	    56, hex);
	is_str(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd4"
	    "19db06c1", "two-block message");
	memset(million, 'a', sizeof(million));
	sha256_init(&s);
	for (i = 0; i < 1000; i++)
		sha256_update(&s, million, sizeof(million));
	sha256_final(&s, md);
	for (i = 0; i < SHA256_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	is_str(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39cc"
	    "c7112cd0", "a million a's, fed in pieces");

	return done_testing();
}
