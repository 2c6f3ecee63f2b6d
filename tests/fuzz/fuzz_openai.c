/*
 * The OpenAI translator (llmgw/openai.c), both ways.  The input's first
 * byte picks the way: a chat completions request body (to the Messages
 * API), a whole Messages API reply (to a chat.completion), or Messages API
 * stream events, one per line (to chunks); the rest is the text.
 *
 * Beyond not crashing: an accepted request is JSON with a model, a
 * max_tokens in bounds and a non-empty messages list of user and
 * assistant turns; a refused one names why; what comes back to the client
 * is JSON, each chunk one "data:" line of it, ending with [DONE].
 */
#include <string.h>

#include <cjson/cJSON.h>

#include "core/buf.h"
#include "core/err.h"
#include "store/conf.h"
#include "llmgw/anthropic.h"
#include "llmgw/openai.h"
#include "llmgw/request.h"
#include "fuzz.h"

static struct conf *
config(void)
{
	static struct conf	*c;
	static const char	 text[] = "allowed_models = claude-a, claude-b\n"
	    "default_model = claude-a\ndefault_max_tokens = 50\n"
	    "max_tokens_limit = 100\n";
	struct err		 err;

	if (c == NULL)
		FUZZ_CHECK((c = conf_load_text("fuzz", text, sizeof(text) - 1,
		    &err)) != NULL);
	return c;
}

static void
request(const struct buf *b)
{
	struct chat_req		 req;
	struct openai_err	 err;
	struct buf		 up;
	cJSON			*root, *msgs, *m;
	const char		*role;
	int			 stream, usage;

	buf_init(&up, 0);
	if (openai_request(config(), buf_str(b), b->len, &req, &stream, &usage,
	    &up, &err) == 0) {
		FUZZ_CHECK(req.model != NULL && conf_model_allowed(config(),
		    req.model));
		FUZZ_CHECK(req.max_tokens >= 1 && req.max_tokens <= 100);
		FUZZ_CHECK((root = cJSON_ParseWithLength(up.data, up.len)) !=
		    NULL);
		msgs = cJSON_GetObjectItem(root, "messages");
		FUZZ_CHECK(cJSON_IsArray(msgs) && cJSON_GetArraySize(msgs) > 0);
		cJSON_ArrayForEach(m, msgs) {
			role = cJSON_GetStringValue(cJSON_GetObjectItem(m,
			    "role"));
			FUZZ_CHECK(role != NULL && (strcmp(role, "user") == 0 ||
			    strcmp(role, "assistant") == 0));
			FUZZ_CHECK(cJSON_IsArray(cJSON_GetObjectItem(m,
			    "content")));
		}
		cJSON_Delete(root);
		chat_req_free(&req);
	} else {
		FUZZ_CHECK(req.model == NULL && err.message[0] != '\0');
		FUZZ_CHECK(err.status == 400 || err.status == 404);
	}
	buf_free(&up);
}

static void
reply(const struct buf *b)
{
	struct buf	 out;
	cJSON		*root;

	buf_init(&out, 0);
	if (openai_reply(b->data != NULL ? b->data : "", b->len, "chatcmpl-x",
	    1, &out) == 0) {
		FUZZ_CHECK((root = cJSON_ParseWithLength(out.data, out.len)) !=
		    NULL);
		cJSON_Delete(root);
	}
	buf_free(&out);
}

/* Every "data: " line holds JSON, or is the end. */
static void
check_chunks(const struct buf *out)
{
	const char	*p = buf_str(out), *nl;
	cJSON		*root;

	for (; *p != '\0'; p = nl + 1) {
		FUZZ_CHECK((nl = strchr(p, '\n')) != NULL);
		if (nl == p)
			continue;
		FUZZ_CHECK(strncmp(p, "data: ", 6) == 0);
		if (strncmp(p + 6, "[DONE]", 6) == 0)
			continue;
		FUZZ_CHECK((root = cJSON_ParseWithLength(p + 6,
		    (size_t)(nl - p - 6))) != NULL);
		cJSON_Delete(root);
	}
}

static void
events(const struct buf *b)
{
	struct openai_stream	 s;
	struct anthropic_usage	 u;
	struct buf		 out;
	const char		*p = buf_str(b), *nl;

	memset(&s, 0, sizeof(s));
	memset(&u, 0, sizeof(u));
	buf_init(&out, 0);
	for (; p < b->data + b->len; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(b->data + b->len - p))) ==
		    NULL)
			nl = b->data + b->len;
		(void)openai_stream_event(&s, p, (size_t)(nl - p), &out);
	}
	FUZZ_CHECK(openai_stream_end(&s, &u, 1, &out) == 0);
	check_chunks(&out);
	buf_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf	 b;

	if (size == 0)
		return 0;
	buf_init(&b, 0);
	if (buf_add(&b, data + 1, size - 1) == -1)
		abort();
	switch (data[0] % 3) {
	case 0:
		request(&b);
		break;
	case 1:
		reply(&b);
		break;
	default:
		events(&b);
		break;
	}
	buf_free(&b);
	return 0;
}
