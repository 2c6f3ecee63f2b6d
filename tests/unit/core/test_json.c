#include "config.h"

#include <string.h>

#include "core/buf.h"
#include "core/json.h"
#include "../tap.h"

static enum json_scan_result
scan(const char *s, size_t *where)
{
	return json_scan(s, strlen(s), 4, where);
}

int
main(void)
{
	struct buf	 b;
	size_t		 where = 0;

	buf_init(&b, 0);
	ok(json_add_str(&b, "a\"b\\c\n\t\x01/é",
	    strlen("a\"b\\c\n\t\x01/é")) == 0, "append a string");
	is_str(buf_str(&b), "\"a\\\"b\\\\c\\n\\t\\u0001/é\"",
	    "escapes quotes, backslashes and controls; keeps UTF-8");
	buf_reset(&b);
	ok(json_add_cstr(&b, NULL) == 0, "append NULL");
	is_str(buf_str(&b), "null", "NULL is null");
	buf_free(&b);

	is_int(scan("{\"a\":[1,{\"b\":\"ü\"}]}", &where), JSON_SCAN_OK,
	    "nested JSON within the limit");
	is_int(scan("[[[[[1]]]]]", &where), JSON_SCAN_DEPTH, "too deep");
	is_int(where, 4, "depth problem located");
	is_int(scan("\"[[[[[[\"", &where), JSON_SCAN_OK,
	    "brackets inside strings do not count");
	is_int(scan("\"a\\\"[[[[[\"", &where), JSON_SCAN_OK,
	    "escaped quotes do not end strings");
	is_int(scan("{\"a\":\"\xff\"}", &where), JSON_SCAN_UTF8, "bad byte");
	is_int(where, 6, "bad byte located");
	is_int(scan("\"\xc0\xaf\"", &where), JSON_SCAN_UTF8,
	    "overlong form rejected");
	is_int(scan("\"\xed\xa0\x80\"", &where), JSON_SCAN_UTF8,
	    "UTF-16 surrogate rejected");
	is_int(scan("\"\xf4\x90\x80\x80\"", &where), JSON_SCAN_UTF8,
	    "above U+10FFFF rejected");
	is_int(scan("\"\xe6\x97\xa5\xf0\x9f\x9a\x80\"", &where), JSON_SCAN_OK,
	    "3- and 4-byte characters accepted");
	is_int(scan("\"a\nb\"", &where), JSON_SCAN_CONTROL,
	    "raw newline in a string");
	is_int(scan("\"a\\u0000b\"", &where), JSON_SCAN_NUL, "\\u0000 escape");
	is_int(json_scan("\"a\0b\"", 5, 4, &where), JSON_SCAN_NUL, "raw NUL");
	is_int(scan("{\"a\":1", &where), JSON_SCAN_SYNTAX, "unclosed object");
	is_int(scan("\"abc", &where), JSON_SCAN_SYNTAX, "unclosed string");
	is_int(scan("]", &where), JSON_SCAN_SYNTAX, "stray closer");
	is_int(utf8_valid_prefix("ab\xe6\x97", 4), 2,
	    "valid prefix stops before a cut character");
	return done_testing();
}
