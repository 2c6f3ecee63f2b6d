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
	return done_testing();
}
