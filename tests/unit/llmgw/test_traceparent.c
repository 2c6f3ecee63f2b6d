/* Which traceparent headers continue a client's trace, and which not. */
#include "config.h"

#include <string.h>

#include "llmgw/traceparent.h"
#include "../tap.h"

static const char	*good_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
static const char	*good_span = "00f067aa0ba902b7";

static void
refused(const char *v, const char *why)
{
	char	 tr[TRACE_ID_HEX + 1] = "x", sp[SPAN_ID_HEX + 1] = "x";

	ok(traceparent_parse(v, tr, sp) == -1 && tr[0] == '\0' &&
	    sp[0] == '\0', "refused: %s", why);
}

int
main(void)
{
	char	 tr[TRACE_ID_HEX + 1], sp[SPAN_ID_HEX + 1];

	ok(traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-"
	    "00f067aa0ba902b7-01", tr, sp) == 0, "the standard's example");
	is_str(tr, good_trace, "its trace id");
	is_str(sp, good_span, "its parent id");
	ok(traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-"
	    "00f067aa0ba902b7-00", tr, sp) == 0, "not sampled: still read");
	ok(traceparent_parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-"
	    "00f067aa0ba902b7-01-what-comes-later", tr, sp) == 0 &&
	    strcmp(tr, good_trace) == 0, "a later version, read as 00");
	refused(NULL, "no header");
	refused("", "empty");
	refused("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
	    "version 00 with more after the flags");
	refused("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	    "version ff");
	refused("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
	    "upper-case hex");
	refused("00-00000000000000000000000000000000-00f067aa0ba902b7-01",
	    "an all-zero trace id");
	refused("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
	    "an all-zero parent id");
	refused("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
	    "a trace id one digit short");
	refused("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
	    "flags that are not hex");
	refused("00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
	    "no dashes");
	refused("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
	    "a later version with no dash after the flags");
	return done_testing();
}
