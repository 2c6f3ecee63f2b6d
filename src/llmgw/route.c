#include "config.h"

#include <stddef.h>
#include <string.h>

#include "route.h"

static const struct route routes[] = {
	{ "/chat", "POST", ROUTE_CHAT },
	{ "/chat/stream", "POST", ROUTE_CHAT_STREAM },
	{ "/openapi.json", "GET", ROUTE_OPENAPI },
	{ "/docs", "GET", ROUTE_DOCS },
	{ "/healthz", "GET", ROUTE_HEALTHZ },
	{ "/metrics", "GET", ROUTE_METRICS },
	{ "/v1/messages", "POST", ROUTE_MESSAGES },
	{ "/chat/ui", "POST", ROUTE_CHAT_UI },
	{ "/v1/chat/completions", "POST", ROUTE_CHAT_COMPLETIONS },
	{ "/v1/models", "GET", ROUTE_MODELS },
	{ "/v1/models/{model_id}", "GET", ROUTE_MODEL },
	{ "/v1/messages/count_tokens", "POST", ROUTE_COUNT_TOKENS },
};

/*
 * Whether "path" is "pattern": the same, or where the pattern ends in a
 * "{name}", one more segment of one or more bytes.
 */
static int
path_is(const char *pattern, const char *path)
{
	const char	*brace = strchr(pattern, '{');
	size_t		 n;

	if (brace == NULL)
		return strcmp(pattern, path) == 0;
	n = (size_t)(brace - pattern);
	return strncmp(pattern, path, n) == 0 && path[n] != '\0' &&
	    strchr(path + n, '/') == NULL;
}

enum route_match
route_find(const char *method, const char *path, const struct route **r)
{
	size_t	 i;

	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!path_is(routes[i].path, path))
			continue;
		*r = &routes[i];
		if (strcmp(routes[i].method, method) == 0)
			return ROUTE_FOUND;
		/* HEAD is GET without the body, as HTTP servers do it. */
		if (strcmp(method, "HEAD") == 0 &&
		    strcmp(routes[i].method, "GET") == 0)
			return ROUTE_FOUND;
		return ROUTE_BAD_METHOD;
	}
	*r = NULL;
	return ROUTE_NOT_FOUND;
}

const char *
route_path(const char *path_info, const char *script_name)
{
	if (path_info != NULL && *path_info != '\0')
		return path_info;
	if (script_name != NULL && *script_name != '\0')
		return script_name;
	return "/";
}
