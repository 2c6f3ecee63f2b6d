#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/buf.h"
#include "core/err.h"
#include "store/conf.h"
#include "openapi.h"

/* openapi.json's bytes, from embed.sh. */
extern const char		openapi_template[];
extern const unsigned long	openapi_template_len;

static cJSON *
child(const cJSON *o, const char *path)
{
	char	 name[64];
	size_t	 n;

	while (o != NULL && *path != '\0') {
		n = strcspn(path, "/");
		if (n >= sizeof(name))
			return NULL;
		memcpy(name, path, n);
		name[n] = '\0';
		o = cJSON_GetObjectItemCaseSensitive(o, name);
		path += n;
		if (*path == '/')
			path++;
	}
	return (cJSON *)o;
}

static int
set(cJSON *obj, const char *name, cJSON *v)
{
	if (obj == NULL || v == NULL) {
		cJSON_Delete(v);
		return -1;
	}
	if (cJSON_GetObjectItemCaseSensitive(obj, name) != NULL)
		return cJSON_ReplaceItemInObjectCaseSensitive(obj, name, v) ?
		    0 : -1;
	return cJSON_AddItemToObject(obj, name, v) ? 0 : -1;
}

/*
 * The JSON schema of a request body object.  Request bodies live in
 * components/requestBodies, not schemas: openapi-typescript makes a field
 * with a default optional only there.  Not child(): the media type's name
 * holds a slash.
 */
static cJSON *
body_schema(const cJSON *body)
{
	return cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(body, "content"),
	    "application/json"), "schema");
}

/* The model and max_tokens of a chat body, as the configuration has them. */
static int
complete_chat(cJSON *props, const struct conf *c)
{
	cJSON	*models, *item;
	char	**m;

	if (set(child(props, "model"), "default",
	    cJSON_CreateString(c->default_model)) == -1 ||
	    set(child(props, "max_tokens"), "default",
	    cJSON_CreateNumber((double)c->default_max_tokens)) == -1 ||
	    set(child(props, "max_tokens"), "maximum",
	    cJSON_CreateNumber((double)conf_max_tokens_any(c))) == -1)
		return -1;
	if (c->allowed_models == NULL)
		return 0;
	if ((models = cJSON_CreateArray()) == NULL)
		return -1;
	for (m = c->allowed_models; *m != NULL; m++)
		if ((item = cJSON_CreateString(*m)) == NULL ||
		    !cJSON_AddItemToArray(models, item)) {
			cJSON_Delete(item);
			cJSON_Delete(models);
			return -1;
		}
	return set(child(props, "model"), "enum", models);
}

/* Fill in what the configuration decides. */
static int
complete(cJSON *doc, const struct conf *c)
{
	if (set(child(doc, "info"), "version",
	    cJSON_CreateString(PACKAGE_VERSION)) == -1 ||
	    complete_chat(child(body_schema(child(doc,
	    "components/requestBodies/ChatRequest")), "properties"), c) == -1 ||
	    complete_chat(child(body_schema(child(doc,
	    "components/requestBodies/UIChatRequest")), "properties"),
	    c) == -1 ||
	    set(child(body_schema(child(doc,
	    "components/requestBodies/MessagesRequest")),
	    "properties/max_tokens"), "maximum",
	    cJSON_CreateNumber((double)conf_max_tokens_any(c))) == -1)
		return -1;
	return 0;
}

static int
html_text(struct buf *b, const char *s)
{
	int	 rc = 0;

	for (; s != NULL && *s != '\0'; s++) {
		switch (*s) {
		case '<':  rc |= buf_adds(b, "&lt;"); break;
		case '>':  rc |= buf_adds(b, "&gt;"); break;
		case '&':  rc |= buf_adds(b, "&amp;"); break;
		case '"':  rc |= buf_adds(b, "&quot;"); break;
		default:   rc |= buf_addc(b, *s); break;
		}
	}
	return rc;
}

static const char *
str(const cJSON *o, const char *name)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Follow a "$ref" inside the document. */
static const cJSON *
deref(const cJSON *doc, const cJSON *o)
{
	const char	*ref = str(o, "$ref");

	if (ref == NULL || strncmp(ref, "#/", 2) != 0)
		return o;
	return child(doc, ref + 2);
}

static int
html_schema(struct buf *b, const cJSON *doc, const cJSON *schema)
{
	const cJSON	*props, *p, *req, *r, *v;
	char		*text;
	int		 required, rc = 0;

	schema = deref(doc, schema);
	if ((props = cJSON_GetObjectItemCaseSensitive(schema,
	    "properties")) == NULL)
		return 0;
	req = cJSON_GetObjectItemCaseSensitive(schema, "required");
	rc |= buf_adds(b, "<table><tr><th>field</th><th>type</th>"
	    "<th>required</th><th>default</th><th>rules</th><th>meaning</th>"
	    "</tr>\n");
	cJSON_ArrayForEach(p, props) {
		required = 0;
		cJSON_ArrayForEach(r, req)
			if (cJSON_IsString(r) &&
			    strcmp(r->valuestring, p->string) == 0)
				required = 1;
		rc |= buf_adds(b, "<tr><td><code>");
		rc |= html_text(b, p->string);
		rc |= buf_adds(b, "</code></td><td>");
		rc |= html_text(b, str(p, "type") != NULL ? str(p, "type") :
		    "any");
		rc |= buf_adds(b, required ? "</td><td>yes</td><td>" :
		    "</td><td>no</td><td>");
		if ((v = cJSON_GetObjectItemCaseSensitive(p, "default")) !=
		    NULL && (text = cJSON_PrintUnformatted(v)) != NULL) {
			rc |= html_text(b, text);
			cJSON_free(text);
		}
		rc |= buf_adds(b, "</td><td>");
		cJSON_ArrayForEach(v, p) {
			if (strcmp(v->string, "minimum") == 0 ||
			    strcmp(v->string, "maximum") == 0 ||
			    strcmp(v->string, "minLength") == 0 ||
			    strcmp(v->string, "maxLength") == 0 ||
			    strcmp(v->string, "enum") == 0) {
				text = cJSON_PrintUnformatted(v);
				rc |= html_text(b, v->string);
				rc |= buf_adds(b, " ");
				rc |= html_text(b, text);
				rc |= buf_adds(b, "<br>");
				cJSON_free(text);
			}
		}
		rc |= buf_adds(b, "</td><td>");
		rc |= html_text(b, str(p, "description"));
		rc |= buf_adds(b, "</td></tr>\n");
	}
	rc |= buf_adds(b, "</table>\n");
	return rc;
}

static int
html_operation(struct buf *b, const cJSON *doc, const char *path,
    const cJSON *op)
{
	const cJSON	*resp, *r, *body, *schema, *m;
	int		 rc;

	rc = buf_adds(b, "<section><h2><span class=\"method\">");
	rc |= html_text(b, op->string);
	rc |= buf_adds(b, "</span> <code>");
	rc |= html_text(b, path);
	rc |= buf_adds(b, "</code></h2>\n<p><strong>");
	rc |= html_text(b, str(op, "summary"));
	rc |= buf_adds(b, "</strong></p>\n");
	if (str(op, "description") != NULL) {
		rc |= buf_adds(b, "<p>");
		rc |= html_text(b, str(op, "description"));
		rc |= buf_adds(b, "</p>\n");
	}
	if (cJSON_GetObjectItemCaseSensitive(op, "security") != NULL)
		rc |= buf_adds(b, "<p>Needs <code>Authorization: Bearer "
		    "&lt;token&gt;</code>.</p>\n");
	body = child(op, "requestBody");
	if ((schema = body_schema(deref(doc, body))) != NULL) {
		rc |= buf_adds(b, "<h3>Request body (application/json): ");
		rc |= html_text(b, strrchr(str(body, "$ref") != NULL ?
		    str(body, "$ref") : "/", '/') + 1);
		rc |= buf_adds(b, "</h3>\n");
		rc |= html_schema(b, doc, schema);
	}
	rc |= buf_adds(b, "<h3>Responses</h3>\n<table><tr><th>status</th>"
	    "<th>meaning</th><th>body</th></tr>\n");
	resp = cJSON_GetObjectItemCaseSensitive(op, "responses");
	cJSON_ArrayForEach(r, resp) {
		const cJSON *rr = deref(doc, r);

		rc |= buf_adds(b, "<tr><td>");
		rc |= html_text(b, r->string);
		rc |= buf_adds(b, "</td><td>");
		rc |= html_text(b, str(rr, "description"));
		rc |= buf_adds(b, "</td><td>");
		cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(rr,
		    "content")) {
			const char *ref = str(cJSON_GetObjectItemCaseSensitive(
			    m, "schema"), "$ref");

			rc |= html_text(b, m->string);
			if (ref != NULL && strrchr(ref, '/') != NULL) {
				rc |= buf_adds(b, ": ");
				rc |= html_text(b, strrchr(ref, '/') + 1);
			}
		}
		rc |= buf_adds(b, "</td></tr>\n");
	}
	rc |= buf_adds(b, "</table></section>\n");
	return rc;
}

static int
render_html(const cJSON *doc, struct buf *b)
{
	const cJSON	*paths, *p, *op, *schemas, *s;
	int		 rc;

	rc = buf_adds(b, "<!DOCTYPE html>\n<html lang=\"en\"><head>"
	    "<meta charset=\"utf-8\"><title>");
	rc |= html_text(b, str(child(doc, "info"), "title"));
	rc |= buf_adds(b, " API</title>\n<style>"
	    "body{font-family:sans-serif;max-width:60em;margin:2em auto;"
	    "padding:0 1em;line-height:1.4}"
	    "table{border-collapse:collapse;margin:.5em 0}"
	    "td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;"
	    "vertical-align:top}"
	    ".method{background:#246;color:#fff;padding:0 .4em;"
	    "border-radius:.2em}"
	    "section{border-top:1px solid #ddd;margin-top:1.5em}"
	    "</style></head><body>\n<h1>");
	rc |= html_text(b, str(child(doc, "info"), "title"));
	rc |= buf_adds(b, " ");
	rc |= html_text(b, str(child(doc, "info"), "version"));
	rc |= buf_adds(b, "</h1>\n<p>");
	rc |= html_text(b, str(child(doc, "info"), "description"));
	rc |= buf_adds(b, "</p>\n<p>Machine-readable: <a href=\"openapi.json\">"
	    "openapi.json</a> (OpenAPI 3.1).</p>\n");
	paths = cJSON_GetObjectItemCaseSensitive(doc, "paths");
	cJSON_ArrayForEach(p, paths)
		cJSON_ArrayForEach(op, p)
			rc |= html_operation(b, doc, p->string, op);
	rc |= buf_adds(b, "<section><h2>Schemas</h2>\n");
	schemas = child(doc, "components/schemas");
	cJSON_ArrayForEach(s, schemas) {
		rc |= buf_adds(b, "<h3>");
		rc |= html_text(b, s->string);
		rc |= buf_adds(b, "</h3>\n");
		rc |= html_schema(b, doc, s);
	}
	cJSON_ArrayForEach(s, child(doc, "components/requestBodies")) {
		rc |= buf_adds(b, "<h3>");
		rc |= html_text(b, s->string);
		rc |= buf_adds(b, "</h3>\n");
		rc |= html_schema(b, doc, body_schema(s));
	}
	rc |= buf_adds(b, "</section></body></html>\n");
	return rc;
}

int
openapi_build(const struct conf *c, char **json, size_t *json_len,
    char **html, size_t *html_len, struct err *err)
{
	cJSON		*doc;
	struct buf	 b;
	char		*text;

	*json = *html = NULL;
	if ((doc = cJSON_ParseWithLength(openapi_template,
	    openapi_template_len)) == NULL) {
		err_set(err, "openapi: the built-in document does not parse");
		return -1;
	}
	if (complete(doc, c) == -1 ||
	    (text = cJSON_PrintUnformatted(doc)) == NULL) {
		err_set(err, "openapi: out of memory");
		cJSON_Delete(doc);
		return -1;
	}
	buf_init(&b, BUF_NOCAP);
	if (render_html(doc, &b) == -1) {
		err_set(err, "openapi: out of memory");
		cJSON_Delete(doc);
		cJSON_free(text);
		buf_free(&b);
		return -1;
	}
	cJSON_Delete(doc);
	/* Hand over plain malloc'd memory, whatever cJSON's hooks are. */
	*json_len = strlen(text);
	if ((*json = strdup(text)) == NULL) {
		err_set(err, "openapi: out of memory");
		cJSON_free(text);
		buf_free(&b);
		return -1;
	}
	cJSON_free(text);
	*html = b.data;
	*html_len = b.len;
	return 0;
}
