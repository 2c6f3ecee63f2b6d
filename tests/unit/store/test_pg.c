/*
 * What a postgresql:// database is, and what opening one says when it
 * cannot (built with libpq: no server there; without: the build).  The
 * rest runs against a real PostgreSQL in tests/integration/pg.js.
 */
#include "config.h"

#include <string.h>

#include "core/err.h"
#include "store/pg.h"
#include "../tap.h"

int
main(void)
{
	struct err	 err;
	struct pg	*p;

	ok(pg_is_uri("postgresql://u@db.example.org/llmgw"),
	    "postgresql:// is PostgreSQL");
	ok(pg_is_uri("postgres://u@/llmgw?host=/run/postgresql"),
	    "postgres:// too");
	ok(!pg_is_uri("/var/lib/llmgw/llmgw.db") && !pg_is_uri("pg.db") &&
	    !pg_is_uri("postgresql:/x"), "a path is SQLite");
	p = pg_open("postgresql://llmgw:hunter2-secret@/llmgw?host="
	    "/nonexistent/llmgw-test", "test_pg", 1, &err);
	ok(p == NULL, "no server there: no connection");
#ifdef HAVE_POSTGRESQL
	ok(strstr(err.msg, "PostgreSQL database llmgw on "
	    "/nonexistent/llmgw-test: connect: ") == err.msg,
	    "naming the database and host: %s", err.msg);
	ok(pg_schema_version() >= 1, "a schema to make");
#else
	ok(strstr(err.msg, "built without PostgreSQL") != NULL &&
	    strstr(err.msg, "libpq-dev") != NULL,
	    "built without libpq: saying so, and what to install: %s",
	    err.msg);
	ok(pg_schema_version() == 0, "no schema to make");
#endif
	ok(strstr(err.msg, "hunter2") == NULL, "never the password");
	pg_close(p);
	return done_testing();
}
