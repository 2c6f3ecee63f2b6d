#include "config.h"

#include <string.h>

#include "anthropic.h"
#include "retry.h"

int
retry_worth(long status, const struct anthropic_error *err)
{
	switch (status) {
	case 0:			/* connection refused, reset, ... */
	case 500:
	case 502:
	case 503:
	case 504:
	case 529:
		return 1;
	case 429:
		/* A spend or credit limit does not lift in seconds. */
		if (err != NULL && (strcasestr(err->message, "spend") ||
		    strcasestr(err->message, "credit") ||
		    strcasestr(err->message, "usage limit")))
			return 0;
		return 1;
	case 200:
		/* An error event inside a 200 stream. */
		return err != NULL && (strcmp(err->type, "overloaded_error") ==
		    0 || strcmp(err->type, "api_error") == 0 ||
		    strcmp(err->type, "rate_limit_error") == 0);
	default:
		return 0;
	}
}

long
retry_delay_ms(long base_ms, long max_ms, int attempt, long retry_after_ms,
    uint64_t rnd)
{
	long	 cap = base_ms;
	int	 i;

	if (retry_after_ms > max_ms)
		return -1;
	for (i = 1; i < attempt && cap < max_ms; i++)
		cap *= 2;
	if (cap > max_ms)
		cap = max_ms;
	/* Equal jitter: anywhere in [cap/2, cap], so retries spread out. */
	cap = cap / 2 + (long)(rnd % (uint64_t)(cap / 2 + 1));
	return retry_after_ms > cap ? retry_after_ms : cap;
}
