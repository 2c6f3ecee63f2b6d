/*
 * The body of POST /chat/ui, as the Vercel AI SDK's DefaultChatTransport
 * sends it: {id, messages, trigger, messageId} and whatever the app adds
 * (of which llmgw takes model and max_tokens).  The messages are UI
 * messages, {id, role, parts, metadata}; their text parts make the
 * conversation that goes upstream, system messages its system prompt.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/buf.h"
#include "request.h"
#include "request_impl.h"

static const char *const ui_fields[] = {
	"id", "messages", "trigger", "messageId", "model", "max_tokens", NULL
};

/* The text of message "m" (index "i"), its parts joined, into "text";
 * problems appended.  Returns the bytes of text. */
static size_t
message_text(const cJSON *m, int i, struct buf *text, struct problems *p)
{
	const cJSON	*parts, *part, *type, *t;
	char		 loc[96];
	int		 j = 0;

	parts = cJSON_GetObjectItemCaseSensitive(m, "parts");
	snprintf(loc, sizeof(loc), "\"messages\",%d,\"parts\"", i);
	if (!cJSON_IsArray(parts)) {
		req_problem_item_at(p, parts == NULL ? "missing" : "list_type",
		    loc, parts == NULL ? "Field required" :
		    "Input should be a valid list", parts, NULL);
		return 0;
	}
	cJSON_ArrayForEach(part, parts) {
		snprintf(loc, sizeof(loc), "\"messages\",%d,\"parts\",%d", i,
		    j++);
		type = cJSON_GetObjectItemCaseSensitive(part, "type");
		if (!cJSON_IsString(type)) {
			req_problem_item_at(p, "union_tag_not_found", loc,
			    "Unable to extract tag using discriminator 'type'",
			    part, "{\"discriminator\":\"'type'\"}");
			continue;
		}
		if (strcmp(type->valuestring, "step-start") == 0)
			continue;	/* a step's boundary: no content */
		if (strcmp(type->valuestring, "text") != 0) {
			req_problem_item_at(p, "union_tag_invalid", loc,
			    "Input tag found using 'type' does not match any "
			    "of the expected tags: 'text', 'step-start' (llmgw "
			    "passes on text only)", type,
			    "{\"discriminator\":\"'type'\","
			    "\"expected_tags\":\"'text', 'step-start'\"}");
			continue;
		}
		t = cJSON_GetObjectItemCaseSensitive(part, "text");
		if (!cJSON_IsString(t)) {
			snprintf(loc + strlen(loc), sizeof(loc) - strlen(loc),
			    ",\"text\"");
			req_problem_item_at(p, t == NULL ? "missing" :
			    "string_type", loc, t == NULL ? "Field required" :
			    "Input should be a valid string", t, NULL);
			continue;
		}
		p->failed |= buf_adds(text, t->valuestring) == -1;
	}
	return text->len;
}

/* Message "i" into the upstream's "messages" or "system". */
static void
add_message(const cJSON *m, int i, cJSON *turns, struct buf *system,
    struct chat_req *req, struct problems *p)
{
	const cJSON	*role;
	cJSON		*turn;
	struct buf	 text;
	char		 loc[64];
	const char	*r;

	snprintf(loc, sizeof(loc), "\"messages\",%d", i);
	if (!cJSON_IsObject(m)) {
		req_problem_item_at(p, "model_attributes_type", loc,
		    "Input should be a valid dictionary or object to extract "
		    "fields from", m, NULL);
		return;
	}
	role = cJSON_GetObjectItemCaseSensitive(m, "role");
	r = cJSON_IsString(role) ? role->valuestring : "";
	if (strcmp(r, "system") != 0 && strcmp(r, "user") != 0 &&
	    strcmp(r, "assistant") != 0) {
		snprintf(loc, sizeof(loc), "\"messages\",%d,\"role\"", i);
		req_problem_item_at(p, role == NULL ? "missing" :
		    "literal_error", loc, role == NULL ? "Field required" :
		    "Input should be 'system', 'user' or 'assistant'", role,
		    "{\"expected\":\"'system', 'user' or 'assistant'\"}");
		return;
	}
	buf_init(&text, BUF_NOCAP);
	if (message_text(m, i, &text, p) == 0) {
		/* An assistant turn that brought no text (it failed, or
		 * was stopped at once) is left out; a user turn needs it. */
		if (strcmp(r, "user") == 0)
			req_problem_item_at(p, "value_error", loc, "Value error, "
			    "a user message needs text", m, NULL);
	} else if (strcmp(r, "system") == 0) {
		p->failed |= (system->len > 0 &&
		    buf_adds(system, "\n\n") == -1) ||
		    buf_add(system, text.data, text.len) == -1;
		req->message_len += text.len;
	} else if ((turn = cJSON_CreateObject()) == NULL ||
	    !cJSON_AddItemToArray(turns, turn) ||
	    cJSON_AddStringToObject(turn, "role", r) == NULL ||
	    cJSON_AddStringToObject(turn, "content", buf_str(&text)) == NULL)
		p->failed = 1;
	else
		req->message_len += text.len;
	buf_free(&text);
}

/* The Messages API body of the conversation, appended to "up". */
static void
upstream_body(const cJSON *msgs, struct chat_req *req, struct buf *up,
    struct problems *p)
{
	cJSON		*body, *turns;
	const cJSON	*m;
	struct buf	 system;
	char		*text;
	int		 i = 0;

	buf_init(&system, BUF_NOCAP);
	if ((body = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(body, "model", req->model != NULL ?
	    req->model : "") == NULL ||
	    cJSON_AddNumberToObject(body, "max_tokens",
	    (double)req->max_tokens) == NULL ||
	    cJSON_AddTrueToObject(body, "stream") == NULL ||
	    (turns = cJSON_AddArrayToObject(body, "messages")) == NULL) {
		p->failed = 1;
		goto out;
	}
	cJSON_ArrayForEach(m, msgs)
		add_message(m, i++, turns, &system, req, p);
	if (system.len > 0 &&
	    cJSON_AddStringToObject(body, "system", buf_str(&system)) == NULL)
		p->failed = 1;
	if (p->b->len > 0 || p->failed)
		goto out;
	if ((text = cJSON_PrintUnformatted(body)) == NULL) {
		p->failed = 1;
		goto out;
	}
	p->failed |= buf_adds(up, text) == -1;
	cJSON_free(text);
out:
	cJSON_Delete(body);
	buf_free(&system);
}

/* A string field, or absent; "values" NULL-terminated, or NULL: any. */
static void
check_word(const cJSON *item, const char *field, const char *const *values,
    const char *expected, struct problems *p)
{
	char			 loc[64];
	const char *const	*v;

	if (item == NULL || (cJSON_IsNull(item) &&
	    strcmp(field, "messageId") == 0))
		return;
	snprintf(loc, sizeof(loc), "\"%s\"", field);
	if (!cJSON_IsString(item)) {
		req_problem_item_at(p, "string_type", loc,
		    "Input should be a valid string", item, NULL);
		return;
	}
	for (v = values; v != NULL && *v != NULL; v++)
		if (strcmp(item->valuestring, *v) == 0)
			return;
	if (values != NULL)
		req_problem_item_at(p, "literal_error", loc, expected, item,
		    NULL);
}

int
ui_req_parse(const struct conf *c, const char *body, size_t len,
    struct chat_req *req, struct buf *up, struct buf *problems)
{
	static const char *const triggers[] = { "submit-message",
	    "regenerate-message", NULL };
	struct problems		 p = { problems, 0 };
	const cJSON		*field[6] = { NULL }, *it;
	const char *const	*name;
	char			 loc[160];
	cJSON			*root;

	memset(req, 0, sizeof(*req));
	buf_reset(problems);
	if ((root = req_parse_object(body, len, &p)) == NULL)
		goto done;
	cJSON_ArrayForEach(it, root) {
		for (name = ui_fields; *name != NULL; name++)
			if (strcmp(it->string, *name) == 0)
				break;
		if (*name != NULL) {
			field[name - ui_fields] = it;
			continue;
		}
		req_problem_item_at(&p, "extra_forbidden", req_loc_of(
		    it->string, loc, sizeof(loc)),
		    "Extra inputs are not permitted", it, NULL);
	}
	check_word(field[0], "id", NULL, NULL, &p);
	check_word(field[2], "trigger", triggers, "Input should be "
	    "'submit-message' or 'regenerate-message'", &p);
	check_word(field[3], "messageId", NULL, NULL, &p);
	req_check_model(c, field[4], req, &p);
	req_check_max_tokens(c, field[5], req, &p);
	if (!cJSON_IsArray(field[1]) || cJSON_GetArraySize(field[1]) == 0)
		req_problem_item_at(&p, field[1] == NULL ? "missing" :
		    cJSON_IsArray(field[1]) ? "too_short" : "list_type",
		    "\"messages\"", field[1] == NULL ? "Field required" :
		    cJSON_IsArray(field[1]) ? "List should have at least 1 "
		    "item after validation, not 0" :
		    "Input should be a valid list", field[1], NULL);
	else
		upstream_body(field[1], req, up, &p);
	cJSON_Delete(root);
done:
	if (req_problems_end(&p) == 0)
		return 0;
	chat_req_free(req);
	return -1;
}
