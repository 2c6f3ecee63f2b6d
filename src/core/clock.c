#include "config.h"

#include <stdio.h>
#include <time.h>

#include "clock.h"

static int64_t
ms_of(clockid_t id)
{
	struct timespec	 ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
clock_wall_ms(void)
{
	return ms_of(CLOCK_REALTIME);
}

int64_t
clock_mono_ms(void)
{
	return ms_of(CLOCK_MONOTONIC);
}

struct timespec
clock_after_ms(clockid_t clock, int64_t ms)
{
	struct timespec	 ts;

	clock_gettime(clock, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	} else if (ts.tv_nsec < 0) {		/* "ms" in the past */
		ts.tv_sec--;
		ts.tv_nsec += 1000000000L;
	}
	return ts;
}

void
clock_iso8601(int64_t ms, char *out, size_t size)
{
	struct tm	 tm;
	time_t		 t;

	if (ms < 0)
		ms = 0;
	t = (time_t)(ms / 1000);
	if (size == 0)
		return;
	if (gmtime_r(&t, &tm) == NULL) {
		out[0] = '\0';
		return;
	}
	snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}
