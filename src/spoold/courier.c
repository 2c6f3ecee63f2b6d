/*
 * The records llmgw-spoold holds and their files (courier.h); a round of
 * their delivery is courier_round.c.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/reqid.h"
#include "core/str.h"
#include "store/conf.h"
#include "courier_impl.h"
#include "sink.h"

void
courier_log_failed(const char *name, const struct held *h, const char *why)
{
	if (h->invalid)
		log_warn("record %s refused as invalid; moved to failed/: %s",
		    name, why);
	else
		log_warn("record %s not delivered after %d attempts; moved "
		    "to failed/: %s", name, h->tries, why);
}

/* The last error, for llmgw-admin spool status. */
void
courier_note_error(struct courier *d, const char *msg)
{
	char	 when[32];
	time_t	 t = time(NULL);

	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	snprintf(d->status.last_error, sizeof(d->status.last_error), "%s %s",
	    when, msg);
	d->status.changes++;
}

static void
claim_free(struct claim *c)
{
	spool_item_free(&c->item);
	free(c);
}

/* Forget held record "i"; its file too once none of it is held. */
void
courier_drop_held(struct courier *d, size_t i)
{
	struct claim	*c = d->held[i].claim;

	if (--c->left == 0)
		claim_free(c);
	d->held[i] = d->held[--d->nheld];
}

static struct held *
held_new(struct courier *d)
{
	struct held	*h;
	size_t		 cap;

	if (d->nheld == d->held_cap) {
		cap = d->held_cap == 0 ? 64 : d->held_cap * 2;
		if ((h = reallocarray(d->held, cap, sizeof(*h))) == NULL)
			return NULL;
		d->held = h;
		d->held_cap = cap;
	}
	h = &d->held[d->nheld];
	memset(h, 0, sizeof(*h));
	return h;
}

struct span {
	const char	*p;
	size_t		 len;
};

/*
 * The non-empty lines of a file, at most "max", into "spans": ended with
 * NULs in place.  Returns how many.
 */
static size_t
split_lines(struct spool_item *it, struct span *spans, size_t max)
{
	char	*p = it->data, *end = it->data + it->len, *nl;
	size_t	 n = 0;

	while (p < end && n < max) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		*nl = '\0';
		if (nl > p) {
			spans[n].p = p;
			spans[n++].len = (size_t)(nl - p);
		}
		p = nl + 1;
	}
	return n;
}

static size_t
count_lines(const struct spool_item *it)
{
	const char	*p = it->data, *end = it->data + it->len, *nl;
	size_t		 n = 0;

	for (; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		n += nl > p;
	}
	return n;
}

/* A file set aside whole, with the reason. */
static void
fail_file(struct courier *d, struct spool_item *it, const char *why)
{
	struct err	 err;

	if (spool_fail(d->spool, it, it->attempts + 1, why, &err) == -1)
		log_error("%s", err.msg);
	d->status.failed++;
}

/*
 * Hold the records of claimed file "c": 0; 1 if it was set aside (and
 * freed) instead; -1 if out of memory.
 */
static int
hold_records(struct courier *d, struct claim *c)
{
	struct span	*spans;
	struct held	*h;
	struct record	 probe;
	struct err	 err;
	const char	*nl;
	size_t		 n, i;
	int		 single;

	/*
	 * One record: one line, or one JSON value over several (put there
	 * by hand; its first line is no record).  Malformed, it goes to
	 * failed/ whole.  Files of several lines are the common case under
	 * load: only their first line is looked at twice, not all of them.
	 */
	n = count_lines(&c->item);
	single = n <= 1;
	if (!single && (nl = memchr(c->item.data, '\n', c->item.len)) !=
	    NULL && record_from_json(c->item.data, (size_t)(nl -
	    c->item.data), &probe, &err) == -1)
		single = record_from_json(c->item.data, c->item.len, &probe,
		    &err) == 0;
	if (single) {
		if ((h = held_new(d)) == NULL)
			return -1;
		if (record_from_json(c->item.data, c->item.len, &h->rec,
		    &err) == -1) {
			log_warn("record %s is malformed (%s); moved to "
			    "failed/", c->item.base, err.msg);
			fail_file(d, &c->item, err.msg);
			claim_free(c);
			return 1;
		}
		h->claim = c;
		h->json = c->item.data;
		h->len = c->item.len;
		while (h->len > 0 && strchr(" \t\r\n", h->json[h->len - 1]))
			h->len--;	/* the sinks end lines themselves */
		h->tries = c->item.attempts;
		c->records = c->left = c->pending = 1;
		d->nheld++;
		return 0;
	}
	if ((spans = calloc(n, sizeof(*spans))) == NULL)
		return -1;
	n = split_lines(&c->item, spans, n);
	c->records = c->pending = n;
	for (i = 0; i < n; i++) {
		if ((h = held_new(d)) == NULL) {
			/* Let go of what we took of it: the last ones. */
			d->nheld -= c->left;
			c->left = 0;
			free(spans);
			return -1;
		}
		h->claim = c;
		h->index = i;
		h->json = spans[i].p;
		h->len = spans[i].len;
		h->tries = c->item.attempts;
		/* A malformed line: the file is taken apart (see split). */
		if (record_from_json(h->json, h->len, &h->rec, &err) == -1) {
			snprintf(h->why, sizeof(h->why), "malformed: %.200s",
			    err.msg);
			h->tries = d->conf->spool_attempts;
			c->split = 1;
		}
		c->left++;
		d->nheld++;
	}
	free(spans);
	return 0;
}

/* Forget the held records of "c" (and "c"), first settling its file. */
void
courier_drop_claim(struct courier *d, struct claim *c, int done)
{
	struct err	 err;
	size_t		 i, k = c->left;

	if (done && spool_done(d->spool, &c->item, &err) == -1)
		log_error("%s", err.msg);
	for (i = d->nheld; i-- > 0 && k > 0;)
		if (d->held[i].claim == c) {
			k--;
			courier_drop_held(d, i);
		}
}

/*
 * Take file "c" of several records apart: each record not yet delivered
 * everywhere becomes a file of its own, <file>.<line>, in new/ with its
 * attempts, or in failed/ with its reason once it has used them all; then
 * the file goes.  For when its records' fates differ (one failed, one is
 * malformed) or part of it was delivered and the rest is given back.
 * Should a piece not be written, the file goes back whole: records are
 * sent again rather than lost.
 */
void
courier_split(struct courier *d, struct claim *c)
{
	struct held	*h;
	struct err	 err;
	char		 name[SPOOL_NAME_MAX];
	size_t		 i;
	int		 ok = 1, tries = 0, touched = 0, giveup = 0;

	for (i = 0; i < d->nheld; i++) {
		h = &d->held[i];
		if (h->claim != c)
			continue;
		if (h->tries > tries)
			tries = h->tries;
		touched |= (h->done & ~(1u << USAGE_SINK)) != 0;
		giveup |= courier_gives_up(d, h);
	}
	/* All in the same state: back whole, a rename. */
	if (!touched && !giveup) {
		if (spool_release(d->spool, &c->item, tries, &err) == -1)
			log_error("%s", err.msg);
		courier_drop_claim(d, c, 0);
		return;
	}
	for (i = 0; ok && i < d->nheld; i++) {
		h = &d->held[i];
		if (h->claim != c || h->delivered)
			continue;
		/* Bases are record ids; a longer one, put by hand, is cut. */
		snprintf(name, sizeof(name), "%.120s.%zu", c->item.base,
		    h->index);
		if (courier_gives_up(d, h)) {
			courier_log_failed(name, h, h->why);
			d->status.failed++;
		}
		if (spool_put_name(d->spool, name, h->json, h->len, h->tries,
		    courier_gives_up(d, h) ? h->why : NULL, &err) == -1) {
			log_error("%s", err.msg);
			ok = 0;
		}
	}
	if (!ok && spool_release(d->spool, &c->item, tries, &err) == -1)
		log_error("%s", err.msg);
	courier_drop_claim(d, c, ok);
}

void
courier_take(struct courier *d)
{
	struct claim	*c;
	struct err	 err;
	char		**names;
	long		 n, i;
	size_t		 room;

	if (d->nheld >= (size_t)d->conf->spool_batch)
		return;
	room = (size_t)d->conf->spool_batch - d->nheld;
	if ((n = spool_list(d->spool, SPOOL_NEW, &names, room, &err)) == -1) {
		log_error("%s", err.msg);
		courier_note_error(d, err.msg);
		return;
	}
	for (i = 0; i < n && d->nheld < (size_t)d->conf->spool_batch; i++) {
		if ((c = calloc(1, sizeof(*c))) == NULL) {
			log_error("out of memory claiming records");
			break;
		}
		switch (spool_claim(d->spool, names[i], &c->item, &err)) {
		case SPOOL_CLAIMED:
			break;
		case SPOOL_TAKEN:
			free(c);
			continue;	/* another consumer has it */
		case SPOOL_UNREADABLE:
			/* Claimed but unreadable: set aside, carry on. */
			log_error("%s; moved to failed/", err.msg);
			courier_note_error(d, err.msg);
			fail_file(d, &c->item, err.msg);
			claim_free(c);
			continue;
		case SPOOL_UNCLAIMED:
			log_error("%s", err.msg);
			courier_note_error(d, err.msg);
			free(c);
			continue;
		}
		switch (hold_records(d, c)) {
		case 0:
			if (c->split)
				courier_split(d, c);
			break;
		case -1:
			log_error("out of memory holding records of %s",
			    c->item.base);
			if (spool_release(d->spool, &c->item, c->item.attempts,
			    &err) == -1)
				log_error("%s", err.msg);
			claim_free(c);
			goto out;
		}
	}
out:
	spool_names_free(names, n);
}

void
courier_release_all(struct courier *d)
{
	struct held	*h;
	struct err	 err;

	while (d->nheld > 0) {
		h = &d->held[d->nheld - 1];
		if (h->claim->records > 1) {
			/* What was delivered stays so. */
			courier_split(d, h->claim);
			continue;
		}
		if (spool_release(d->spool, &h->claim->item, h->tries, &err) ==
		    -1)
			log_error("%s", err.msg);
		courier_drop_held(d, d->nheld - 1);
	}
}

void
courier_housekeeping(struct courier *d)
{
	struct err	 err;
	long		 n;

	if ((n = spool_reclaim(d->spool, d->conf->spool_reclaim_ms, &err)) ==
	    -1)
		log_error("%s", err.msg);
	else if (n > 0)
		log_info("reclaimed %ld records from consumers that died", n);
	if ((n = spool_recover(d->spool, SEGMENT_MIN_AGE, &err)) == -1)
		log_error("%s", err.msg);
	else if (n > 0)
		log_info("recovered %ld spool segments from writers that died",
		    n);
	if (spool_clean_tmp(d->spool, TMP_MAX_AGE, &err) == -1)
		log_error("%s", err.msg);
}

static void
close_sinks(struct courier *d)
{
	while (d->nsinks > 0)
		sink_close(d->sinks[--d->nsinks]);
}

int
courier_open_sinks(struct courier *d, struct err *err)
{
	char	**p;

	if (d->nsinks > 0)
		return 0;
	if ((d->sinks[USAGE_SINK] = sink_open("usage", d->conf, err)) == NULL)
		goto fail;
	d->nsinks++;
	for (p = d->conf->sinks; *p != NULL; p++) {
		if (d->nsinks == MAX_SINKS) {
			err_set(err, "more than %d sinks", MAX_SINKS);
			goto fail;
		}
		if ((d->sinks[d->nsinks] = sink_open(*p, d->conf, err)) ==
		    NULL)
			goto fail;
		d->nsinks++;
	}
	return 0;
fail:
	close_sinks(d);
	courier_note_error(d, err->msg);
	return -1;
}

struct courier *
courier_new(const struct conf *conf, struct spool *spool, int once)
{
	struct courier	*d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	d->conf = conf;
	d->spool = spool;
	d->once = once;
	return d;
}

void
courier_free(struct courier *d)
{
	if (d == NULL)
		return;
	courier_release_all(d);
	close_sinks(d);
	free(d->held);
	free(d);
}

void
courier_reset(struct courier *d, const struct conf *conf,
    struct spool *spool)
{
	courier_release_all(d);
	close_sinks(d);
	d->conf = conf;
	d->spool = spool;
}

size_t
courier_held(const struct courier *d)
{
	return d->nheld;
}

int64_t
courier_next_ms(const struct courier *d, int64_t until)
{
	size_t	 i;

	for (i = 0; i < d->nheld; i++)
		if (d->held[i].next_ms < until)
			until = d->held[i].next_ms;
	return until;
}

int
courier_failing(const struct courier *d)
{
	return d->once_failed || d->nsinks == 0;
}

void
courier_status(const struct courier *d, struct courier_status *st)
{
	*st = d->status;
}
