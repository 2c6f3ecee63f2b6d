/*
 * The upstream SSE parser, and the Messages API events it carries.  The
 * first byte picks how the rest is cut into chunks; the same stream fed
 * whole and fed in those chunks must give the same events.  Each event's
 * data goes through the stream interpreter, and each event re-encoded by
 * sse_encode() and parsed again must give its data back (with CR and CRLF
 * as LF, which is all SSE can carry).  A text delta that the stream
 * interpreter reads without a parser must be one cJSON reads the same.
 */
#include <string.h>

#include <cjson/cJSON.h>

#include "core/buf.h"
#include "llmgw/anthropic.h"
#include "llmgw/sse.h"
#include "fuzz.h"

#define MAX_EVENT	4096

struct seen {
	struct buf			 log;	/* event NUL, length, data */
	struct anthropic_stream		 st;
	int				 roundtrip;
};

static void	roundtrip(const char *, size_t);

/* What anthropic_text_delta() read must be what cJSON reads. */
static void
same_as_parser(const char *data, size_t len)
{
	char		 text[ANTHROPIC_FAST_TEXT];
	size_t		 n;
	cJSON		*root;
	const cJSON	*type, *delta, *dtype, *t;

	if (!anthropic_text_delta(data, len, text, sizeof(text), &n))
		return;
	root = cJSON_ParseWithLength(data, len);
	FUZZ_CHECK(root != NULL);
	type = cJSON_GetObjectItemCaseSensitive(root, "type");
	delta = cJSON_GetObjectItemCaseSensitive(root, "delta");
	dtype = cJSON_GetObjectItemCaseSensitive(delta, "type");
	t = cJSON_GetObjectItemCaseSensitive(delta, "text");
	FUZZ_CHECK(cJSON_IsString(type) &&
	    strcmp(type->valuestring, "content_block_delta") == 0);
	FUZZ_CHECK(cJSON_IsString(dtype) &&
	    strcmp(dtype->valuestring, "text_delta") == 0);
	FUZZ_CHECK(cJSON_IsString(t) && strlen(t->valuestring) == n &&
	    memcmp(t->valuestring, text, n) == 0);
	cJSON_Delete(root);
}

static int
on_text(void *arg, const char *text, size_t len)
{
	(void)arg;
	FUZZ_CHECK(text != NULL || len == 0);
	return 0;
}

static int
on_event(void *arg, const char *event, const char *data, size_t len)
{
	struct seen	*s = arg;

	FUZZ_CHECK(strlen(event) <= SSE_EVENT_NAME_MAX);
	FUZZ_CHECK(len <= MAX_EVENT && data[len] == '\0');
	if (buf_adds(&s->log, event) == -1 || buf_addc(&s->log, '\0') == -1 ||
	    buf_add(&s->log, &len, sizeof(len)) == -1 ||
	    buf_add(&s->log, data, len) == -1)
		abort();
	if (s->roundtrip) {
		roundtrip(data, len);
		same_as_parser(data, len);
	}
	(void)anthropic_stream_event(&s->st, data, len, on_text, NULL);
	FUZZ_CHECK(s->st.usage.input_tokens >= 0 &&
	    s->st.usage.output_tokens >= 0);
	return 0;
}

struct one {
	struct buf	 data;
	int		 n;
};

static int
on_one(void *arg, const char *event, const char *data, size_t len)
{
	struct one	*o = arg;

	(void)event;
	o->n++;
	if (buf_add(&o->data, data, len) == -1)
		abort();
	return 0;
}

/* sse_encode() then the parser: the data back, CR and CRLF as LF. */
static void
roundtrip(const char *data, size_t len)
{
	struct sse_parser	 p;
	struct buf		 enc, want;
	struct one		 o = { { NULL, 0, 0, 0 }, 0 };
	size_t			 i;

	buf_init(&enc, 0);
	buf_init(&want, 0);
	buf_init(&o.data, 0);
	for (i = 0; i < len; i++) {
		if (data[i] == '\r' && i + 1 < len && data[i + 1] == '\n')
			continue;
		if (buf_addc(&want, data[i] == '\r' ? '\n' : data[i]) == -1)
			abort();
	}
	sse_parser_init(&p, 2 * MAX_EVENT);
	FUZZ_CHECK(sse_encode(&enc, "x", data, len) == 0);
	FUZZ_CHECK(sse_parser_feed(&p, enc.data, enc.len, on_one, &o) ==
	    SSE_OK);
	FUZZ_CHECK(o.n == 1 && o.data.len == want.len &&
	    memcmp(buf_str(&o.data), buf_str(&want), want.len) == 0);
	sse_parser_free(&p);
	buf_free(&enc);
	buf_free(&want);
	buf_free(&o.data);
}

static enum sse_status
feed(struct seen *s, const uint8_t *data, size_t size, unsigned seed)
{
	struct sse_parser	 p;
	enum sse_status		 st = SSE_OK;
	size_t			 off = 0, n;

	memset(&s->st, 0, sizeof(s->st));
	s->roundtrip = seed == 0;
	buf_init(&s->log, 0);
	sse_parser_init(&p, MAX_EVENT);
	while (off < size && st == SSE_OK) {
		/* Chunk sizes from the seed: 1 to 16 bytes, or all. */
		n = seed == 0 ? size - off : 1 + (seed + off * 7) % 16;
		if (n > size - off)
			n = size - off;
		st = sse_parser_feed(&p, (const char *)data + off, n,
		    on_event, s);
		off += n;
	}
	sse_parser_free(&p);
	return st;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen	 whole, cut;
	enum sse_status	 a, b;

	if (size == 0)
		return 0;
	a = feed(&whole, data + 1, size - 1, 0);
	b = feed(&cut, data + 1, size - 1, data[0] | 1u);
	FUZZ_CHECK(a == b);
	/* Past an oversized event the two may stop at different places. */
	if (a == SSE_OK)
		FUZZ_CHECK(whole.log.len == cut.log.len &&
		    memcmp(buf_str(&whole.log), buf_str(&cut.log),
		    whole.log.len) == 0);
	buf_free(&whole.log);
	buf_free(&cut.log);
	return 0;
}
