/*
 * llmgw-spoold: drain the spool directory into the configured sinks.
 *
 * One thread.  It claims files from new/ (until it holds spool_batch
 * records; a file holds one or more), delivers their records to every
 * sink, and removes a file once all sinks have all of it.  A sink that
 * fails is tried again with exponential backoff; after spool_attempts
 * attempts the record goes to failed/ with the reason.  When the records
 * of one file part ways, the file is taken apart (see split()).  Records
 * are never deleted undelivered.  inotify wakes it when a record arrives;
 * it also looks every spool_rescan, and puts back files that a consumer
 * which died left in cur/.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/reqid.h"
#include "core/str.h"
#include "store/conf.h"
#include "store/record.h"
#include "store/spool_reader.h"
#include "sink.h"

#define MAX_SINKS	8
#define TMP_MAX_AGE	(3600L * 1000)	/* a writer that died an hour ago */
#define SEGMENT_MIN_AGE	1000L	/* ms: a newer segment may not be locked yet */

/* A spool file in hand: one record, or several written together. */
struct claim {
	struct spool_item	 item;
	size_t			 records;
	size_t			 left;		/* its records held */
	size_t			 pending;	/* ... and not yet delivered */
	int			 split;		/* to be taken apart */
};

/* A record in hand. */
struct held {
	struct claim		*claim;
	size_t			 index;		/* its line in the file */
	const char		*json;		/* within claim->item.data */
	size_t			 len;
	struct record		 rec;
	unsigned		 done;		/* bit per sink that has it */
	int			 delivered;	/* all have it; its file waits */
	int			 sent;		/* offered to a sink this round */
	int			 tries;		/* failed rounds, this one included */
	int64_t			 next_ms;	/* when to try again */
	char			 why[256];	/* the last failure */
};

struct spoold {
	struct conf	*conf;
	const char	*conf_path;
	int		 conf_required;
	struct spool	*spool;
	struct sink	*sinks[MAX_SINKS];
	int		 nsinks;
	struct held	*held;
	size_t		 nheld;
	size_t		 held_cap;
	int		 once;
	int		 once_failed;	/* --once: a sink failed this run */
	int		 inotify;
	int		 watch;
	unsigned long	 delivered;
	unsigned long	 failed;
	char		 last_error[256];
};

static void
usage(FILE *fp)
{
	fprintf(fp, "usage: llmgw-spoold [--config FILE] [--once] [--version] "
	    "[--help]\n");
}

static void
close_sinks(struct spoold *d)
{
	while (d->nsinks > 0)
		sink_close(d->sinks[--d->nsinks]);
}

static int
open_sinks(struct spoold *d, struct err *err)
{
	char	**p;

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
	return -1;
}

/* Keep a small status file for llmgw-admin spool status. */
static void
write_status(struct spoold *d)
{
	char	 path[4096], tmp[4200];
	FILE	*fp;

	if (snprintf(path, sizeof(path), "%s/.spoold-status",
	    d->conf->spool_dir) >= (int)sizeof(path))
		return;
	snprintf(tmp, sizeof(tmp), "%s.%ld", path, (long)getpid());
	if ((fp = fopen(tmp, "w")) == NULL)
		return;
	fprintf(fp, "pid %ld\ntime %lld\ndelivered %lu\nfailed %lu\n"
	    "last_error %s\n", (long)getpid(), (long long)clock_wall_ms(),
	    d->delivered, d->failed, d->last_error);
	if (fclose(fp) != 0 || rename(tmp, path) == -1)
		unlink(tmp);
}

static void
note_error(struct spoold *d, const char *msg)
{
	char	 when[32];
	time_t	 t = time(NULL);

	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	snprintf(d->last_error, sizeof(d->last_error), "%s %s", when, msg);
	write_status(d);
}

static void
claim_free(struct claim *c)
{
	spool_item_free(&c->item);
	free(c);
}

/* Forget held record "i"; its file too once none of it is held. */
static void
drop_held(struct spoold *d, size_t i)
{
	struct claim	*c = d->held[i].claim;

	if (--c->left == 0)
		claim_free(c);
	d->held[i] = d->held[--d->nheld];
}

static struct held *
held_new(struct spoold *d)
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
fail_file(struct spoold *d, struct spool_item *it, const char *why)
{
	struct err	 err;

	if (spool_fail(d->spool, it, it->attempts + 1, why, &err) == -1)
		log_error("%s", err.msg);
	d->failed++;
}

/*
 * Hold the records of claimed file "c": 0; 1 if it was set aside (and
 * freed) instead; -1 if out of memory.
 */
static int
hold_records(struct spoold *d, struct claim *c)
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
static void
drop_claim(struct spoold *d, struct claim *c, int done)
{
	struct err	 err;
	size_t		 i, k = c->left;

	if (done && spool_done(d->spool, &c->item, &err) == -1)
		log_error("%s", err.msg);
	for (i = d->nheld; i-- > 0 && k > 0;)
		if (d->held[i].claim == c) {
			k--;
			drop_held(d, i);
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
static void
split(struct spoold *d, struct claim *c)
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
		touched |= h->done != 0;
		giveup |= h->tries >= d->conf->spool_attempts;
	}
	/* All in the same state: back whole, a rename. */
	if (!touched && !giveup) {
		if (spool_release(d->spool, &c->item, tries, &err) == -1)
			log_error("%s", err.msg);
		drop_claim(d, c, 0);
		return;
	}
	for (i = 0; ok && i < d->nheld; i++) {
		h = &d->held[i];
		if (h->claim != c || h->delivered)
			continue;
		/* Bases are record ids; a longer one, put by hand, is cut. */
		snprintf(name, sizeof(name), "%.120s.%zu", c->item.base,
		    h->index);
		if (h->tries >= d->conf->spool_attempts) {
			log_warn("record %s not delivered after %d attempts; "
			    "moved to failed/: %s", name, h->tries, h->why);
			d->failed++;
		}
		if (spool_put_name(d->spool, name, h->json, h->len, h->tries,
		    h->tries >= d->conf->spool_attempts ? h->why : NULL,
		    &err) == -1) {
			log_error("%s", err.msg);
			ok = 0;
		}
	}
	if (!ok && spool_release(d->spool, &c->item, tries, &err) == -1)
		log_error("%s", err.msg);
	drop_claim(d, c, ok);
}

/* Claim files from new/ until spool_batch records are held. */
static void
take(struct spoold *d)
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
		note_error(d, err.msg);
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
			note_error(d, err.msg);
			fail_file(d, &c->item, err.msg);
			claim_free(c);
			continue;
		case SPOOL_UNCLAIMED:
			log_error("%s", err.msg);
			note_error(d, err.msg);
			free(c);
			continue;
		}
		switch (hold_records(d, c)) {
		case 0:
			if (c->split)
				split(d, c);
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

/*
 * Exponential backoff from spool_retry_base to spool_retry_max, with
 * jitter "rnd" shared by a round, so that records that failed together
 * are tried again together, in one batch.
 */
static int64_t
backoff_ms(const struct conf *c, int tries, uint64_t rnd)
{
	int64_t	 ms = c->spool_retry_base_ms;
	int	 i;

	for (i = 1; i < tries && ms < c->spool_retry_max_ms; i++)
		ms *= 2;
	if (ms > c->spool_retry_max_ms)
		ms = c->spool_retry_max_ms;
	return ms / 2 + (int64_t)(rnd % (uint64_t)(ms / 2 + 1));
}

/* One delivery round over the held records that are due. */
static void
deliver(struct spoold *d)
{
	struct delivery	 batch[1024];
	size_t		 idx[1024], n, i, k, done;
	struct err	 err;
	int64_t		 now = clock_wall_ms();
	uint64_t	 rnd = reqid_random();
	int		 s;
	char		 msg[512];

	for (i = 0; i < d->nheld; i++)
		d->held[i].sent = 0;
	for (s = 0; s < d->nsinks; s++) {
		n = 0;
		for (i = 0; i < d->nheld && n < 1024; i++) {
			if (d->held[i].next_ms > now ||
			    (d->held[i].done & (1u << s)))
				continue;
			batch[n].json = d->held[i].json;
			batch[n].len = d->held[i].len;
			batch[n].rec = &d->held[i].rec;
			d->held[i].sent = 1;
			idx[n++] = i;
		}
		if (n == 0)
			continue;
		done = sink_deliver(d->sinks[s], batch, n, &err);
		for (k = 0; k < done; k++)
			d->held[idx[k]].done |= 1u << s;
		if (done < n) {
			log_warn("%s (%zu of %zu records delivered)", err.msg,
			    done, n);
			note_error(d, err.msg);
			for (k = done; k < n; k++)
				str_copy(d->held[idx[k]].why,
				    sizeof(d->held[idx[k]].why), err.msg);
		}
	}
	/* Settle each record that was due. */
	for (i = d->nheld; i-- > 0;) {
		struct held *h = &d->held[i];
		struct claim *c = h->claim;

		if (h->next_ms > now || h->delivered)
			continue;
		if (h->done == (1u << d->nsinks) - 1) {
			d->delivered++;
			if (c->records > 1) {
				h->delivered = 1;	/* the file goes with the last */
				c->pending--;
				continue;
			}
			if (spool_done(d->spool, &c->item, &err) == -1)
				log_error("%s", err.msg);
			drop_held(d, i);
			continue;
		}
		if (!h->sent)
			continue;	/* past a full batch: next round */
		h->tries++;
		if (h->tries >= d->conf->spool_attempts) {
			if (c->records > 1) {
				c->split = 1;
				continue;
			}
			snprintf(msg, sizeof(msg), "%s", h->why);
			log_warn("record %s not delivered after %d attempts; "
			    "moved to failed/: %s", c->item.base, h->tries,
			    msg);
			if (spool_fail(d->spool, &c->item, h->tries, msg,
			    &err) == -1)
				log_error("%s", err.msg);
			d->failed++;
			drop_held(d, i);
		} else if (d->once) {
			/* No waiting under cron: try again next run. */
			d->once_failed = 1;
			if (c->records > 1) {
				c->split = 1;
				continue;
			}
			if (spool_release(d->spool, &c->item, h->tries,
			    &err) == -1)
				log_error("%s", err.msg);
			drop_held(d, i);
		} else
			h->next_ms = now + backoff_ms(d->conf, h->tries, rnd);
	}
	/* Files of several records: gone once all are delivered, or apart. */
	for (i = 0; i < d->nheld;) {
		struct claim *c = d->held[i].claim;

		if (c->split)
			split(d, c);
		else if (c->pending == 0)
			drop_claim(d, c, 1);
		else {
			i++;
			continue;
		}
		i = 0;
	}
	write_status(d);
}

/* Give back what we hold (on exit): attempts so far are kept. */
static void
release_all(struct spoold *d)
{
	struct held	*h;
	struct err	 err;

	while (d->nheld > 0) {
		h = &d->held[d->nheld - 1];
		if (h->claim->records > 1) {
			split(d, h->claim);	/* what was delivered stays so */
			continue;
		}
		if (spool_release(d->spool, &h->claim->item, h->tries, &err) ==
		    -1)
			log_error("%s", err.msg);
		drop_held(d, d->nheld - 1);
	}
}

static void
housekeeping(struct spoold *d)
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
watch_new(struct spoold *d)
{
	char	 path[4096];

	if (d->inotify == -1 || d->watch != -1)
		return;
	snprintf(path, sizeof(path), "%s/new", d->conf->spool_dir);
	d->watch = inotify_add_watch(d->inotify, path, IN_MOVED_TO |
	    IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF);
}

static void
drain_inotify(struct spoold *d)
{
	char				 buf[4096]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event	*ev;
	ssize_t				 n;
	char				*p;

	while ((n = read(d->inotify, buf, sizeof(buf))) > 0)
		for (p = buf; p < buf + n; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			if (ev->mask & (IN_IGNORED | IN_DELETE_SELF |
			    IN_MOVE_SELF))
				d->watch = -1;	/* new/ went: watch again */
		}
}

static int
load_conf(struct spoold *d, struct err *err)
{
	struct conf	*c;

	if ((c = conf_load(d->conf_path, d->conf_required, err)) == NULL)
		return -1;
	conf_free(d->conf);
	d->conf = c;
	log_set_level((enum log_level)c->log_level);
	log_use_syslog(strcmp(c->spoold_log, "syslog") == 0);
	if (c->warning[0] != '\0')
		log_warn("%s", c->warning);
	return 0;
}

/* SIGHUP: a new configuration if it is good, and reopened files. */
static void
reload(struct spoold *d)
{
	struct conf	*old = d->conf;
	struct err	 err;

	d->conf = NULL;
	if (load_conf(d, &err) == -1) {
		d->conf = old;
		log_error("reload refused, keeping the old configuration: %s",
		    err.msg);
		return;
	}
	conf_free(old);
	release_all(d);
	close_sinks(d);
	if (open_sinks(d, &err) == -1) {
		log_error("reload: %s; retrying on the next round", err.msg);
		note_error(d, err.msg);
	}
	spool_close(d->spool);
	d->spool = spool_open(d->conf->spool_dir, d->conf->spool_fsync);
	d->watch = -1;
	log_info("configuration reloaded, files reopened");
}

static int
run(struct spoold *d, int sigfd)
{
	struct pollfd		 pfd[2];
	struct signalfd_siginfo	 si;
	struct err		 err;
	int64_t			 now, wake, next_scan = 0, next_house = 0;
	size_t			 i;
	int			 timeout;

	for (;;) {
		now = clock_wall_ms();
		if (d->nsinks == 0 && open_sinks(d, &err) == -1) {
			/* A sink that cannot open is a failing sink. */
			log_error("%s", err.msg);
			note_error(d, err.msg);
		}
		if (now >= next_house) {
			housekeeping(d);
			next_house = now + d->conf->spool_rescan_ms * 6;
		}
		watch_new(d);
		take(d);
		if (d->nsinks > 0 && d->nheld > 0)
			deliver(d);
		if (d->once && (d->once_failed || d->nsinks == 0)) {
			/* A sink is failing: cron tries again later. */
			release_all(d);
			return 1;
		}
		if (d->once && d->nheld == 0) {
			long left;
			char **names;

			if ((left = spool_list(d->spool, SPOOL_NEW, &names, 1,
			    &err)) > 0) {
				spool_names_free(names, left);
				continue;
			}
			spool_names_free(names, left < 0 ? 0 : left);
			return 0;
		}
		/* Sleep until a record comes, a retry is due, or a rescan. */
		now = clock_wall_ms();
		if (next_scan <= now)
			next_scan = now + d->conf->spool_rescan_ms;
		wake = next_scan;
		for (i = 0; i < d->nheld; i++)
			if (d->held[i].next_ms < wake)
				wake = d->held[i].next_ms;
		timeout = wake > now ? (int)(wake - now) : 0;
		pfd[0].fd = sigfd;
		pfd[0].events = POLLIN;
		pfd[1].fd = d->inotify;
		pfd[1].events = POLLIN;
		if (poll(pfd, d->inotify != -1 ? 2 : 1, timeout) == -1 &&
		    errno != EINTR) {
			log_error("poll: %s", strerror(errno));
			return 1;
		}
		if (d->inotify != -1 && (pfd[1].revents & POLLIN))
			drain_inotify(d);
		if (pfd[0].revents & POLLIN) {
			if (read(sigfd, &si, sizeof(si)) != sizeof(si))
				continue;
			if (si.ssi_signo == SIGHUP) {
				reload(d);
				continue;
			}
			log_info("signal %u: stopping", si.ssi_signo);
			release_all(d);
			return 0;
		}
	}
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "config",	required_argument,	NULL, 'c' },
		{ "once",	no_argument,		NULL, 'o' },
		{ "version",	no_argument,		NULL, 'V' },
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL,		0,			NULL, 0 }
	};
	struct spoold	 d;
	struct err	 err;
	sigset_t	 set;
	int		 ch, sigfd, rc;

	memset(&d, 0, sizeof(d));
	d.inotify = d.watch = -1;
	while ((ch = getopt_long(argc, argv, "c:oVh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			d.conf_path = optarg;
			break;
		case 'o':
			d.once = 1;
			break;
		case 'V':
			printf("llmgw-spoold %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "llmgw-spoold: unexpected argument \"%s\"\n",
		    argv[optind]);
		usage(stderr);
		return 2;
	}
	d.conf_path = conf_locate(d.conf_path, &d.conf_required);
	log_init("llmgw-spoold", LOG_LEVEL_INFO);
	if (load_conf(&d, &err) == -1) {
		fprintf(stderr, "llmgw-spoold: %s\n", err.msg);
		return 1;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("curl_global_init failed");
		conf_free(d.conf);
		return 1;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((sigfd = signalfd(-1, &set, SFD_CLOEXEC)) == -1) {
		log_error("signalfd: %s", strerror(errno));
		rc = 1;
		goto out;
	}
	if (!d.once && (d.inotify = inotify_init1(IN_NONBLOCK |
	    IN_CLOEXEC)) == -1)
		log_warn("inotify: %s; looking every %ld ms instead",
		    strerror(errno), d.conf->spool_rescan_ms);
	d.spool = spool_open(d.conf->spool_dir, d.conf->spool_fsync);
	if (d.spool == NULL) {
		log_error("out of memory");
		rc = 1;
		goto out;
	}
	if (!d.once)
		log_info("draining %s", d.conf->spool_dir);
	rc = run(&d, sigfd);
out:
	release_all(&d);
	close_sinks(&d);
	spool_close(d.spool);
	free(d.held);
	if (d.inotify != -1)
		close(d.inotify);
	if (sigfd != -1)
		close(sigfd);
	conf_free(d.conf);
	curl_global_cleanup();
	log_use_syslog(0);
	return rc;
}
