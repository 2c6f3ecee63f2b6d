/*
 * The request validator: the bodies of /chat and /v1/messages, and the
 * header values llmgw reads (Content-Type, Authorization, X-Request-Id,
 * anthropic-beta).  The input is the body; its text up to the first NUL,
 * split at line breaks, gives the four header values.
 *
 * Beyond not crashing: an accepted body has a message of valid UTF-8
 * without NUL and numbers within bounds; a refused one has a 422 detail
 * that is a JSON array of located problems; an accepted header value has
 * nothing that could end a header line.
 */
#include <string.h>

#include <cjson/cJSON.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/json.h"
#include "core/reqid.h"
#include "store/conf.h"
#include "llmgw/auth.h"
#include "llmgw/request.h"
#include "fuzz.h"

static struct conf *
config(int restricted)
{
	static struct conf	*open, *narrow;
	static const char	 text[] = "allowed_models = claude-a, claude-b\n"
	    "default_model = claude-a\ndefault_max_tokens = 50\n"
	    "max_tokens_limit = 100\n";
	struct err		 err;

	if (open == NULL) {
		FUZZ_CHECK((open = conf_load(NULL, 0, &err)) != NULL);
		FUZZ_CHECK((narrow = conf_load_text("fuzz", text,
		    sizeof(text) - 1, &err)) != NULL);
	}
	return restricted ? narrow : open;
}

static void
check_problems(const struct buf *problems)
{
	cJSON		*root, *it;

	FUZZ_CHECK((root = cJSON_ParseWithLength(problems->data,
	    problems->len)) != NULL);
	FUZZ_CHECK(cJSON_IsArray(root) && cJSON_GetArraySize(root) > 0);
	cJSON_ArrayForEach(it, root) {
		FUZZ_CHECK(cJSON_IsString(cJSON_GetObjectItem(it, "type")));
		FUZZ_CHECK(cJSON_IsArray(cJSON_GetObjectItem(it, "loc")));
		FUZZ_CHECK(cJSON_IsString(cJSON_GetObjectItem(it, "msg")));
	}
	cJSON_Delete(root);
}

static void
body(const struct conf *c, const struct buf *b)
{
	struct chat_req	 req;
	struct buf	 problems;
	char		 why[256];
	int		 stream;

	buf_init(&problems, 0);
	if (chat_req_parse(c, buf_str(b), b->len, &req, &problems) == 0) {
		FUZZ_CHECK(req.message != NULL && req.model != NULL);
		FUZZ_CHECK(strlen(req.message) == req.message_len);
		FUZZ_CHECK(utf8_valid_prefix(req.message, req.message_len) ==
		    req.message_len);
		FUZZ_CHECK(conf_model_allowed(c, req.model));
		FUZZ_CHECK(req.max_tokens >= 1 &&
		    req.max_tokens <= c->max_tokens_limit);
		FUZZ_CHECK(problems.len == 0);
		chat_req_free(&req);
	} else {
		FUZZ_CHECK(req.message == NULL && req.model == NULL);
		check_problems(&problems);
	}
	buf_free(&problems);

	why[0] = '\0';
	if (messages_req_parse(c, buf_str(b), b->len, &req, &stream, why,
	    sizeof(why)) == 0) {
		FUZZ_CHECK(req.model != NULL && conf_model_allowed(c,
		    req.model));
		FUZZ_CHECK(req.max_tokens >= 1 &&
		    req.max_tokens <= c->max_tokens_limit);
		FUZZ_CHECK(stream == 0 || stream == 1);
		chat_req_free(&req);
	} else
		FUZZ_CHECK(why[0] != '\0');
}

static int
ends_line(const char *s, size_t n)
{
	return memchr(s, '\r', n) != NULL || memchr(s, '\n', n) != NULL;
}

static void
headers(char *text)
{
	char		*field[4] = { NULL, NULL, NULL, NULL };
	const char	*token;
	size_t		 len;
	int		 i;

	for (i = 0; i < 4 && text != NULL; i++) {
		field[i] = text;
		if ((text = strchr(text, '\n')) != NULL)
			*text++ = '\0';
	}
	(void)request_is_json(field[0]);
	if (auth_bearer(field[1], &token, &len) == 0) {
		FUZZ_CHECK(token >= field[1] &&
		    token + len <= field[1] + strlen(field[1]));
		(void)auth_token_equal(token, len, "test-token");
	}
	if (reqid_valid(field[2]))
		FUZZ_CHECK(!ends_line(field[2], strlen(field[2])));
	if (field[3] != NULL && request_header_ok(field[3]))
		FUZZ_CHECK(!ends_line(field[3], strlen(field[3])) &&
		    strlen(field[3]) <= REQ_HEADER_MAX);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf	 b;
	char		*text;

	buf_init(&b, 0);
	if (buf_add(&b, data, size) == -1)
		abort();
	body(config(size > 0 && (data[0] & 1)), &b);
	if ((text = strdup(buf_str(&b))) == NULL)
		abort();
	headers(text);
	free(text);
	buf_free(&b);
	return 0;
}
