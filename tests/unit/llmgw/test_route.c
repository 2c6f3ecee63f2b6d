/* The routes, and the path below the mount. */
#include "config.h"

#include <string.h>

#include "llmgw/route.h"
#include "../tap.h"

int
main(void)
{
	const struct route	*r;

	is_int(route_find("POST", "/chat", &r), ROUTE_FOUND, "POST /chat");
	is_int(r->id, ROUTE_CHAT, "is the chat route");
	is_int(route_find("GET", "/chat", &r), ROUTE_BAD_METHOD,
	    "GET /chat is a method problem");
	is_str(r->method, "POST", "and says which method is allowed");
	is_int(route_find("HEAD", "/healthz", &r), ROUTE_FOUND,
	    "HEAD works where GET does");
	is_int(route_find("POST", "/chat/", &r), ROUTE_NOT_FOUND,
	    "no trailing-slash guessing");
	is_int(route_find("POST", "/../chat", &r), ROUTE_NOT_FOUND,
	    "no path games");
	is_int(route_find("GET", "/v1/models/claude-sonnet-4-6", &r),
	    ROUTE_FOUND, "GET /v1/models/{model_id}");
	is_int(r->id, ROUTE_MODEL, "is the model route");
	is_int(route_find("GET", "/v1/models", &r), ROUTE_FOUND,
	    "GET /v1/models");
	is_int(r->id, ROUTE_MODELS, "is the list");
	is_int(route_find("GET", "/v1/models/", &r), ROUTE_NOT_FOUND,
	    "an empty model id is no route");
	is_int(route_find("GET", "/v1/models/a/b", &r), ROUTE_NOT_FOUND,
	    "nor two segments");
	is_int(route_find("POST", "/v1/models/x", &r), ROUTE_BAD_METHOD,
	    "POST /v1/models/x is a method problem");
	is_int(route_find("POST", "/v1/messages/count_tokens", &r),
	    ROUTE_FOUND, "POST /v1/messages/count_tokens");
	is_str(route_path("/chat", "/api/v1"), "/chat", "PATH_INFO first");
	is_str(route_path("", "/chat"), "/chat", "else SCRIPT_NAME");
	is_str(route_path(NULL, NULL), "/", "else the root");
	return done_testing();
}
