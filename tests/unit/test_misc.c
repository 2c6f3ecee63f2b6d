/* reqid, route and retry: small modules, one program. */
#include "config.h"

#include <string.h>

#include "anthropic.h"
#include "reqid.h"
#include "retry.h"
#include "route.h"
#include "tap.h"

int
main(void)
{
	char			 a[REQID_LEN + 1], b[REQID_LEN + 1];
	const struct route	*r;
	struct anthropic_error	 e;
	long			 d;
	int			 i, in_range = 1;

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

	is_int(route_find("POST", "/chat", &r), ROUTE_FOUND, "POST /chat");
	is_int(r->id, ROUTE_CHAT, "is the chat route");
	is_int(route_find("GET", "/chat", &r), ROUTE_BAD_METHOD,
	    "GET /chat is a method problem");
	is_str(r->method, "POST", "and says which method is allowed");
	is_int(route_find("HEAD", "/healthz", &r), ROUTE_FOUND,
	    "HEAD works where GET does");
	is_int(route_find("POST", "/chat/", &r), ROUTE_NOT_FOUND,
	    "no trailing-slash guessing");
	is_int(route_find("POST", "/../chat", &r), ROUTE_NOT_FOUND,
	    "no path games");
	is_str(route_path("/chat", "/api/v1"), "/chat", "PATH_INFO first");
	is_str(route_path("", "/chat"), "/chat", "else SCRIPT_NAME");
	is_str(route_path(NULL, NULL), "/", "else the root");

	memset(&e, 0, sizeof(e));
	ok(retry_worth(529, NULL), "529 is retried");
	ok(retry_worth(500, NULL), "500 is retried");
	ok(retry_worth(0, NULL), "a connection failure is retried");
	ok(retry_worth(429, &e), "429 is retried");
	strcpy(e.message, "You have reached your spend limit");
	ok(!retry_worth(429, &e), "429 for a spend limit is not");
	ok(!retry_worth(400, NULL), "400 is not retried");
	ok(!retry_worth(401, NULL), "401 is not retried");
	ok(!retry_worth(413, NULL), "413 is not retried");
	strcpy(e.type, "overloaded_error");
	ok(retry_worth(200, &e), "an overloaded error event is retried");
	strcpy(e.type, "invalid_request_error");
	ok(!retry_worth(200, &e), "an invalid request event is not");

	for (i = 0; i < 100; i++) {
		d = retry_delay_ms(500, 8000, 1, -1, (uint64_t)i * 7919);
		if (d < 250 || d > 500)
			in_range = 0;
	}
	ok(in_range, "first retry waits between base/2 and base");
	d = retry_delay_ms(500, 8000, 3, -1, 0);
	ok(d >= 1000 && d <= 2000, "third retry waits about 4 x base (%ld)",
	    d);
	d = retry_delay_ms(500, 8000, 30, -1, ~0ULL);
	ok(d <= 8000, "waits are capped (%ld)", d);
	is_int(retry_delay_ms(500, 8000, 1, 3000, 0), 3000,
	    "retry-after is honoured");
	is_int(retry_delay_ms(500, 8000, 1, 60000, 0), -1,
	    "a retry-after past the cap means no retry");
	return done_testing();
}
