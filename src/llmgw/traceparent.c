#include "config.h"

#include <string.h>

#include "traceparent.h"

/* "n" lower-case hex digits at "s"; 1 if so. */
static int
hex(const char *s, size_t n)
{
	return strspn(s, "0123456789abcdef") >= n;
}

static int
all_zero(const char *s, size_t n)
{
	return strspn(s, "0") >= n;
}

/*
 * version "-" trace-id "-" parent-id "-" trace-flags: 2, 32, 16 and 2
 * hex digits.  Version ff is invalid; version 00 has nothing after the
 * flags, a later version may add fields after a "-" (read as 00).
 */
int
traceparent_parse(const char *v, char trace_id[TRACE_ID_HEX + 1],
    char span_id[SPAN_ID_HEX + 1])
{
	trace_id[0] = span_id[0] = '\0';
	if (v == NULL || strlen(v) < 55)
		return -1;
	if (!hex(v, 2) || memcmp(v, "ff", 2) == 0 || v[2] != '-' ||
	    !hex(v + 3, TRACE_ID_HEX) || v[35] != '-' ||
	    !hex(v + 36, SPAN_ID_HEX) || v[52] != '-' || !hex(v + 53, 2))
		return -1;
	if (memcmp(v, "00", 2) == 0 ? v[55] != '\0' :
	    v[55] != '\0' && v[55] != '-')
		return -1;
	if (all_zero(v + 3, TRACE_ID_HEX) || all_zero(v + 36, SPAN_ID_HEX))
		return -1;
	memcpy(trace_id, v + 3, TRACE_ID_HEX);
	trace_id[TRACE_ID_HEX] = '\0';
	memcpy(span_id, v + 36, SPAN_ID_HEX);
	span_id[SPAN_ID_HEX] = '\0';
	return 0;
}
