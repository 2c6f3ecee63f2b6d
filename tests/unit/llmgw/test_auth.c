/* Bearer tokens: found in the header, compared in constant time. */
#include "config.h"

#include <stddef.h>

#include "llmgw/auth.h"
#include "../tap.h"

int
main(void)
{
	const char	*tok;
	size_t		 len;

	ok(auth_bearer("Bearer abc", &tok, &len) == 0 && len == 3 &&
	    strncmp(tok, "abc", 3) == 0, "bearer token found");
	ok(auth_bearer("bearer   abc  ", &tok, &len) == 0 && len == 3,
	    "scheme is case-insensitive, spaces trimmed");
	ok(auth_bearer("Basic abc", &tok, &len) == -1, "other schemes refused");
	ok(auth_bearer("Bearer", &tok, &len) == -1, "no token refused");
	ok(auth_bearer("Bearer   ", &tok, &len) == -1, "blank token refused");
	ok(auth_bearer("Bearerabc", &tok, &len) == -1, "no space refused");
	ok(auth_bearer(NULL, &tok, &len) == -1, "no header refused");
	ok(auth_token_equal("secret", 6, "secret"), "equal tokens match");
	ok(!auth_token_equal("secreT", 6, "secret"), "different tokens do not");
	ok(!auth_token_equal("secret", 5, "secret"), "a prefix does not");
	ok(!auth_token_equal("secretx", 7, "secret"), "a longer one does not");
	ok(auth_loopback("127.0.0.1") && auth_loopback("127.255.0.9"),
	    "127.0.0.0/8 is loopback");
	ok(auth_loopback("::1") && auth_loopback("::ffff:127.0.0.1"),
	    "::1 and mapped 127/8 too");
	ok(!auth_loopback("10.0.0.1") && !auth_loopback("128.0.0.1") &&
	    !auth_loopback("::ffff:10.0.0.1") && !auth_loopback("2001:db8::1"),
	    "others are not");
	ok(!auth_loopback("localhost") && !auth_loopback("") &&
	    !auth_loopback(NULL) && !auth_loopback("127.0.0.1 "),
	    "names, nothing and junk are not");
	return done_testing();
}
