/*
 * OpenAI's chat completions, translated to the Messages API and back: the
 * request body, a whole reply, the chunks of a stream, and errors.  No
 * I/O, as anthropic.h.
 *
 * In: system and developer messages become the system prompt; user and
 * assistant turns with string content or text parts; image_url parts (data
 * URLs as base64 images, https URLs as URL images); tools, tool_choice,
 * parallel_tool_calls, assistant tool_calls and tool messages as tool_use
 * and tool_result blocks; max_tokens or max_completion_tokens,
 * temperature (above 1 taken as 1), top_p, stop, user, stream,
 * stream_options.include_usage.  What cannot be translated (n above 1,
 * logprobs, audio, response formats other than text, the legacy
 * functions) is refused, naming the parameter; the sampling settings the
 * Messages API has no use for (penalties, seed, logit_bias, store,
 * metadata, service_tier, reasoning_effort) are passed over.
 */
#ifndef OPENAI_H
#define OPENAI_H

#include <stddef.h>

struct anthropic_usage;
struct buf;
struct chat_req;
struct conf;

#define OPENAI_PARAM_MAX	96

/* Why a request is refused: the status (400; 404 for a model not
 * served here), the message, and the parameter at fault. */
struct openai_err {
	int	 status;
	char	 message[256];
	char	 param[OPENAI_PARAM_MAX];	/* "" if none */
};

/*
 * Translate the "len" bytes at "body" (a NUL follows): 0 with "req"
 * (model, max_tokens, message_len: the bytes of all text, tool uses
 * none), "*stream", "*include_usage" set and the Messages API body
 * appended to "up"; -1 with "err" set.
 */
int	 openai_request(const struct conf *, const char *body, size_t len,
	    struct chat_req *req, int *stream, int *include_usage,
	    struct buf *up, struct openai_err *err);

/*
 * A whole Messages API reply as a chat.completion, appended to "out";
 * "id" and "created" name it.  0, or -1 if the reply is not a message or
 * memory ran out.
 */
int	 openai_reply(const char *reply, size_t len, const char *id,
	    long created, struct buf *out);

/* A stream's translation so far. */
struct openai_stream {
	char	 id[80];		/* chatcmpl-<request id> */
	char	 model[129];
	long	 created;
	int	 tools;			/* tool_use blocks begun */
	int	 block_tool;		/* the open block is a tool's: its index
					 * among them + 1; 0: not */
	char	 finish[32];		/* the finish reason, once known */
};

/*
 * The chunks ("data: {...}\n\n") for one Messages API event, appended to
 * "out" (none for events that carry nothing for the client).  0, or -1 if
 * the event is malformed or memory ran out.
 */
int	 openai_stream_event(struct openai_stream *, const char *data,
	    size_t len, struct buf *out);

/*
 * The end: the chunk with the finish reason, the usage chunk if asked for,
 * and "data: [DONE]".  0 or -1 (out of memory).
 */
int	 openai_stream_end(struct openai_stream *,
	    const struct anthropic_usage *, int include_usage,
	    struct buf *out);

/*
 * {"error": {"message", "type", "param", "code"}} for HTTP "status",
 * appended to "out".  0 or -1.
 */
int	 openai_error(struct buf *out, int status, const char *message,
	    const char *param);

/* OpenAI's usage object for a Messages API usage, appended to "out". */
int	 openai_usage(struct buf *out, const struct anthropic_usage *);

/* OpenAI's finish reason for a Messages API stop reason. */
const char *openai_finish_reason(const char *stop_reason);

#endif /* OPENAI_H */
