/*
 * The usage ledger: a row written twice is one row, and settles its
 * request's budget once, whoever writes it first.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/clock.h"
#include "core/err.h"
#include "store/budget.h"
#include "store/db.h"
#include "store/dbpool.h"
#include "store/keys.h"
#include "store/ledger.h"
#include "store/record.h"
#include "../tap.h"
#include "scalar.h"

static void
row(struct record *r, const char *id, const char *key, int64_t ts)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->id, sizeof(r->id), "%s", id);
	strcpy(r->request_id, "req");
	snprintf(r->key, sizeof(r->key), "%s", key);
	strcpy(r->route, "/chat");
	r->ts_ms = ts;
	r->status = 200;
	r->upstream = 1;
	r->input_tokens = 30;
	r->output_tokens = 20;
	r->ttft_ms = -1;
}

int
main(void)
{
	char			 path[256], secret[KEY_SECRET_LEN + 1];
	struct budget_claim	 claim;
	struct reservation	 resv;
	struct budget_left	 left;
	struct dbpool		*pool;
	struct record		 r[2];
	struct key		 spec, k;
	struct err		 err;
	sqlite3			*db;
	int64_t			 now = clock_wall_ms();
	long			 after;

	snprintf(path, sizeof(path), "/tmp/llmgw-test-ledger.%ld.db",
	    (long)getpid());
	unlink(path);
	db = db_open(path, &err);
	memset(&spec, 0, sizeof(spec));
	strcpy(spec.name, "budgeted");
	spec.budget_tokens = 1000;
	strcpy(spec.period, "day");
	spec.rpm = -1;
	ok(keys_create(db, &spec, secret, &k, &err) == 0, "a key with a "
	    "budget of 1000 a day");
	pool = dbpool_new(path);

	memset(&claim, 0, sizeof(claim));
	claim.id = "r1";
	claim.route = "/chat";
	claim.model = "";
	claim.ts_ms = now;
	claim.tokens = 500;
	claim.hold_ms = 60000;
	claim.deadline_ms = 0;
	ok(budget_reserve(pool, &k, &claim, &resv, &left, &after, &err) ==
	    BUDGET_OK, "500 held");
	ok(left.tokens_limit == 1000 && left.tokens_left == 500 &&
	    left.tokens_reset > 0 && left.tokens_reset <= 86400 &&
	    left.requests_limit == -1, "what is left: 500 of 1000 this day");
	is_int(scalar(db, "SELECT count(*) FROM reservations WHERE id = 'r1'"),
	    1, "under the request's record id");

	row(&r[0], "r1", k.id, now);
	is_int(ledger_write(pool, r, 1, 0, &err), 1, "its row: new");
	is_int(scalar(db, "SELECT sum(tokens) FROM budget_use"), 50,
	    "the budget counts what it used");
	is_int(scalar(db, "SELECT count(*) FROM reservations"), 0,
	    "and holds nothing more");
	is_int(ledger_write(pool, r, 1, 0, &err), 0, "the row again (from "
	    "the spool): not new");
	is_int(scalar(db, "SELECT sum(tokens) FROM budget_use"), 50,
	    "the budget is not counted twice");
	is_int(scalar(db, "SELECT count(*) FROM usage"), 1, "one row");

	row(&r[0], "s1", "static", now);
	row(&r[1], "n1", k.id, now);
	r[1].upstream = 0;
	is_int(ledger_write(pool, r, 2, 0, &err), 1, "the static token's "
	    "row; none for a request that did not reach the upstream");
	is_int(scalar(db, "SELECT sum(tokens) FROM budget_use"), 50,
	    "no budget for the static token");

	row(&r[0], "old", k.id, now - 2 * 86400 * 1000LL);
	ledger_write(pool, r, 1, 0, &err);
	is_int(scalar(db, "SELECT count(*) FROM budget_use"), 2,
	    "a row from another day counts in that day's budget");

	claim.id = "r2";
	claim.tokens = 960;
	is_int(budget_reserve(pool, &k, &claim, &resv, &left, &after, &err),
	    BUDGET_SPENT, "50 used, 960 more would pass 1000");
	is_int(left.tokens_left, 950, "refused: 950 left");
	claim.min_tokens = 100;
	ok(budget_reserve(pool, &k, &claim, &resv, &left, &after, &err) ==
	    BUDGET_OK && resv.tokens == 950 && left.tokens_left == 0,
	    "a claim that may hold less holds the 950 left");
	budget_release(pool, &resv, &err);
	claim.min_tokens = 0;
	claim.tokens = 900;
	ok(budget_reserve(pool, &k, &claim, &resv, &left, &after, &err) ==
	    BUDGET_OK, "900 more fit");
	ok(budget_release(pool, &resv, &err) == 0 && resv.id[0] == '\0',
	    "released, for a request that never reached the upstream");
	is_int(scalar(db, "SELECT count(*) FROM reservations"), 0,
	    "nothing held");

	/* Requests per minute: what is left, and when the oldest goes. */
	strcpy(spec.name, "rated");
	spec.budget_tokens = -1;
	spec.rpm = 2;
	keys_create(db, &spec, secret, &k, &err);
	claim.id = "q1";
	ok(budget_reserve(pool, &k, &claim, &resv, &left, &after, &err) ==
	    BUDGET_OK && left.requests_limit == 2 && left.requests_left == 1 &&
	    left.requests_reset == 60 && left.tokens_limit == -1,
	    "rpm 2: one more this minute");
	claim.id = "q2";
	budget_reserve(pool, &k, &claim, &resv, &left, &after, &err);
	claim.id = "q3";
	ok(budget_reserve(pool, &k, &claim, &resv, &left, &after, &err) ==
	    BUDGET_RATE && left.requests_left == 0 && after >= 59 &&
	    left.requests_reset == after, "the third: refused, for %ld s",
	    after);

	ok(ledger_probe(pool, clock_mono_ms() + 500, &err) == 0,
	    "the probe writes");
	sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL);
	{
		int64_t t0 = clock_mono_ms();

		ok(ledger_probe(pool, clock_mono_ms() + 300, &err) == -1,
		    "locked by another: the probe fails: %s", err.msg);
		ok(clock_mono_ms() - t0 < 3000, "at its deadline, not the "
		    "busy timeout's 5 s (%lld ms)",
		    (long long)(clock_mono_ms() - t0));
		row(&r[0], "late", k.id, now);
		t0 = clock_mono_ms();
		ok(ledger_write(pool, r, 1, clock_mono_ms() + 300, &err) == -1,
		    "a write fails at its deadline too: %s", err.msg);
	}
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	is_int(ledger_write(pool, r, 1, 0, &err), 1, "and goes in once it "
	    "is free");

	/* The file deleted under the pool: a new one, not a ghost inode. */
	unlink(path);
	row(&r[0], "after-delete", "static", now);
	is_int(ledger_write(pool, r, 1, 0, &err), 1, "the database deleted: "
	    "the row goes into a new one");
	sqlite3_close(db);
	db = NULL;
	sqlite3_open(path, &db);
	is_int(scalar(db, "SELECT count(*) FROM usage"), 1, "which holds it");

	dbpool_free(pool);
	sqlite3_close(db);
	unlink(path);
	return done_testing();
}
