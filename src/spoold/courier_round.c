/*
 * One round of delivery (courier_deliver()): each due record offered to
 * each sink that has not got it, then settled: delivered, tried again
 * later, or to failed/.
 */
#include "config.h"

#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/reqid.h"
#include "core/str.h"
#include "store/conf.h"
#include "courier_impl.h"
#include "sink.h"

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

/* Note why sink "s" did not take records idx[from..n). */
static void
refused(struct courier *d, const size_t *idx, size_t from, size_t n,
    enum sink_refusal why, const struct err *err)
{
	size_t	 k;

	for (k = from; k < n; k++) {
		struct held *h = &d->held[idx[k]];

		str_copy(h->why, sizeof(h->why), err->msg);
		h->denied |= why == SINK_DENIED;
	}
}

/*
 * Offer each sink the due records it has not got, a batch each.  A record
 * the sink refuses as invalid is marked so, and the rest of the batch is
 * offered again.
 */
static void
offer(struct courier *d, int64_t now)
{
	struct delivery		 batch[DELIVERY_MAX];
	size_t			 idx[DELIVERY_MAX], n, i, k, at, done;
	enum sink_refusal	 why;
	struct err		 err;
	int			 s;

	for (i = 0; i < d->nheld; i++)
		d->held[i].sent = d->held[i].denied = 0;
	for (s = 0; s < d->nsinks; s++) {
		n = 0;
		for (i = 0; i < d->nheld && n < DELIVERY_MAX; i++) {
			if (d->held[i].next_ms > now || d->held[i].invalid ||
			    (d->held[i].done & (1u << s)))
				continue;
			batch[n].json = d->held[i].json;
			batch[n].len = d->held[i].len;
			batch[n].rec = &d->held[i].rec;
			d->held[i].sent = 1;
			idx[n++] = i;
		}
		for (at = 0; at < n;) {
			done = sink_deliver(d->sinks[s], batch + at, n - at,
			    &why, &err);
			for (k = at; k < at + done; k++)
				d->held[idx[k]].done |= 1u << s;
			if ((at += done) == n)
				break;
			log_warn("%s (%zu of %zu records delivered)", err.msg,
			    done, n - (at - done));
			courier_note_error(d, err.msg);
			if (why != SINK_INVALID) {
				refused(d, idx, at, n, why, &err);
				break;
			}
			refused(d, idx, at, at + 1, why, &err);
			d->held[idx[at++]].invalid = 1;
		}
	}
}

/* A record no sink took this time: tried again later, or given up. */
static void
settle_failure(struct courier *d, size_t i, int64_t now, uint64_t rnd)
{
	struct held	*h = &d->held[i];
	struct claim	*c = h->claim;
	struct err	 err;
	char		 why[sizeof(h->why)];

	if (h->denied && !h->invalid) {
		/* Not its fault: kept, at the longest interval once the
		 * credentials are refused again and again. */
		h->denials++;
		if (!d->once) {
			h->next_ms = now + backoff_ms(d->conf, h->denials,
			    rnd);
			return;
		}
	} else
		h->tries++;
	if (!courier_gives_up(d, h) && !d->once) {
		h->next_ms = now + backoff_ms(d->conf, h->tries, rnd);
		return;
	}
	if (!courier_gives_up(d, h))
		d->once_failed = 1;	/* no waiting under cron */
	if (c->records > 1) {
		c->split = 1;		/* its file is taken apart */
		return;
	}
	if (!courier_gives_up(d, h)) {
		if (spool_release(d->spool, &c->item, h->tries, &err) == -1)
			log_error("%s", err.msg);
	} else {
		str_copy(why, sizeof(why), h->why);
		courier_log_failed(c->item.base, h, why);
		if (spool_fail(d->spool, &c->item, h->tries, why, &err) == -1)
			log_error("%s", err.msg);
		d->status.failed++;
	}
	courier_drop_held(d, i);
}

/* Settle each record that was due: delivered, or failed once more. */
static void
settle(struct courier *d, int64_t now)
{
	struct err	 err;
	uint64_t	 rnd = reqid_random();
	size_t		 i;

	for (i = d->nheld; i-- > 0;) {
		struct held *h = &d->held[i];
		struct claim *c = h->claim;

		if (h->next_ms > now || h->delivered)
			continue;
		if (h->done != (1u << d->nsinks) - 1) {
			if (h->sent)	/* past a full batch: next round */
				settle_failure(d, i, now, rnd);
			continue;
		}
		d->status.delivered++;
		if (c->records > 1) {
			h->delivered = 1;	/* the file goes with the last */
			c->pending--;
			continue;
		}
		if (spool_done(d->spool, &c->item, &err) == -1)
			log_error("%s", err.msg);
		courier_drop_held(d, i);
	}
}

/* Files of several records: gone once all are delivered, or apart. */
static void
settle_files(struct courier *d)
{
	size_t	 i;

	for (i = 0; i < d->nheld;) {
		struct claim *c = d->held[i].claim;

		if (c->split)
			courier_split(d, c);
		else if (c->pending == 0)
			courier_drop_claim(d, c, 1);
		else {
			i++;
			continue;
		}
		i = 0;
	}
}

void
courier_deliver(struct courier *d)
{
	int64_t	 now = clock_wall_ms();

	if (d->nsinks == 0 || d->nheld == 0)
		return;
	offer(d, now);
	settle(d, now);
	settle_files(d);
	d->status.changes++;
}

