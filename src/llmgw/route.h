/*
 * The routes, relative to where llmgw is mounted (PATH_INFO).
 */
#ifndef ROUTE_H
#define ROUTE_H

enum route_id {
	ROUTE_CHAT,
	ROUTE_CHAT_STREAM,
	ROUTE_OPENAPI,
	ROUTE_DOCS,
	ROUTE_HEALTHZ,
	ROUTE_METRICS,
	ROUTE_MESSAGES,
	ROUTE_CHAT_UI,
	ROUTE_CHAT_COMPLETIONS,
	ROUTE_MODELS,
	ROUTE_MODEL,
	ROUTE_COUNT_TOKENS
};

struct route {
	const char	*path;		/* a last segment "{name}" matches
					 * any one segment */
	const char	*method;
	enum route_id	 id;
};

enum route_match {
	ROUTE_FOUND,
	ROUTE_NOT_FOUND,	/* 404 */
	ROUTE_BAD_METHOD	/* 405: the path exists with another method */
};

/*
 * Match "method" and "path".  On ROUTE_FOUND "*r" is the route; on
 * ROUTE_BAD_METHOD "*r" is the path's route, whose method goes in Allow.
 */
enum route_match route_find(const char *method, const char *path,
	    const struct route **r);

/*
 * The request's path below the mount point: PATH_INFO when the web server
 * split one off, else SCRIPT_NAME (a mount at "/" that did not split).
 * Never NULL.
 */
const char	*route_path(const char *path_info, const char *script_name);

#endif /* ROUTE_H */
