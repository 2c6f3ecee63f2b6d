/*
 * The spool record reader: a spool file may be truncated, damaged or
 * written by something else.  What it accepts must survive the trip back
 * out and in again unchanged.
 */
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "store/record.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct record	 r, again;
	struct buf	 in, out1, out2;
	struct err	 err;

	buf_init(&in, 0);
	buf_init(&out1, 0);
	buf_init(&out2, 0);
	if (buf_add(&in, data, size) == -1)
		abort();
	err.msg[0] = '\0';
	if (record_from_json(buf_str(&in), in.len, &r, &err) == 0) {
		FUZZ_CHECK(record_id_valid(r.id));
		FUZZ_CHECK(record_to_json(&r, &out1) == 0);
		FUZZ_CHECK(record_from_json(buf_str(&out1), out1.len, &again,
		    &err) == 0);
		FUZZ_CHECK(record_to_json(&again, &out2) == 0);
		FUZZ_CHECK(out1.len == out2.len &&
		    memcmp(out1.data, out2.data, out1.len) == 0);
	} else
		FUZZ_CHECK(err.msg[0] != '\0');
	buf_free(&in);
	buf_free(&out1);
	buf_free(&out2);
	return 0;
}
