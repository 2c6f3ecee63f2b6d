/*
 * The llmgw.conf parser, from memory.  A config is either loaded whole or
 * refused with a message naming where; refusing must free everything.
 */
#include <string.h>

#include "core/err.h"
#include "store/conf.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf	*c;
	struct err	 err;

	err.msg[0] = '\0';
	if ((c = conf_load_text("fuzz", (const char *)data, size, &err)) !=
	    NULL) {
		FUZZ_CHECK(c->messages_url != NULL);
		FUZZ_CHECK(c->threads >= 1 && c->max_threads >= c->threads);
		FUZZ_CHECK(c->default_max_tokens <= c->max_tokens_limit);
		conf_free(c);
	} else
		FUZZ_CHECK(err.msg[0] != '\0');
	return 0;
}
