/* Request ids: time-ordered, unique, and what a client may send. */
#include "config.h"

#include <string.h>

#include "core/reqid.h"
#include "../tap.h"

int
main(void)
{
	char	 a[REQID_LEN + 1], b[REQID_LEN + 1];

	reqid_new(a);
	reqid_new(b);
	is_int(strlen(a), REQID_LEN, "ids have 32 characters");
	ok(strcmp(a, b) != 0, "two ids differ");
	ok(strncmp(a, b, 8) == 0, "ids start with the time");
	ok(strspn(a, "0123456789abcdef") == REQID_LEN, "ids are hex");
	ok(reqid_valid(a), "our ids are valid ids");
	ok(reqid_valid("client-123_x.y:z"), "client ids with -_.: accepted");
	ok(!reqid_valid(""), "empty id refused");
	ok(!reqid_valid("a b"), "space refused");
	ok(!reqid_valid("a\r\nSet-Cookie: x"), "CR/LF refused");
	ok(!reqid_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaa"), "65 characters refused");
	return done_testing();
}
