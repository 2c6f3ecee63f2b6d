/*
 * For the store's unit tests: the first column of the first row of
 * "sql" on "db", or -1.
 */
#ifndef TEST_SCALAR_H
#define TEST_SCALAR_H

#include <sqlite3.h>

static long long
scalar(sqlite3 *db, const char *sql)
{
	sqlite3_stmt	*st;
	long long	 v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

#endif /* TEST_SCALAR_H */
