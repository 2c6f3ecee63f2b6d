/* When an upstream failure is retried, and after how long. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "llmgw/anthropic.h"
#include "llmgw/retry.h"
#include "../tap.h"

int
main(void)
{
	struct anthropic_error	 e;
	long			 d;
	int			 i, in_range = 1;

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
