#include "config.h"

#include <string.h>

#include "core/buf.h"
#include "core/str.h"
#include "../tap.h"

int
main(void)
{
	struct buf	 b;
	char		 small[4];
	int		 i, rc;

	buf_init(&b, 0);
	is_str(buf_str(&b), "", "an empty buffer reads as \"\"");
	ok(buf_adds(&b, "abc") == 0 && b.len == 3, "append a string");
	ok(buf_addf(&b, "-%d-", 42) == 0, "append formatted");
	is_str(buf_str(&b), "abc-42-", "contents so far");
	for (rc = 0, i = 0; i < 1000; i++)
		rc |= buf_addc(&b, 'x');
	ok(rc == 0 && b.len == 1007, "grows past its first allocation");
	buf_free(&b);
	ok(b.data == NULL && b.len == 0, "free leaves an empty buffer");

	buf_init(&b, 5);
	ok(buf_adds(&b, "12345") == 0, "fill to the cap");
	ok(buf_addc(&b, '6') == -1, "one byte over the cap fails");
	is_str(buf_str(&b), "12345", "a failed append changes nothing");
	ok(buf_addf(&b, "%s", "x") == -1, "formatted append respects the cap");
	buf_reset(&b);
	is_int(b.len, 0, "reset empties");
	buf_free(&b);

	buf_init(&b, 0);
	ok(buf_adds(&b, "small") == 0, "append");
	buf_trim(&b, 1024);
	ok(b.len == 0 && b.data != NULL, "trim keeps a small buffer's memory");
	for (rc = 0, i = 0; i < 2000; i++)
		rc |= buf_addc(&b, 'x');
	buf_trim(&b, 1024);
	ok(rc == 0 && b.len == 0 && b.data == NULL,
	    "and lets a large one's go");

	ok(str_copy(small, sizeof(small), "abc") == 0, "copy that fits");
	is_str(small, "abc", "copied whole");
	ok(str_copy(small, sizeof(small), "abcdef") == 1, "copy that is cut");
	is_str(small, "abc", "cut and terminated");
	return done_testing();
}
