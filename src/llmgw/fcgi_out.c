/*
 * Records out (fcgi.h): the answers to management records, a request's
 * STDOUT and its end, and whether a write of the answer would wait.
 */
#include "config.h"

#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <fastcgi.h>

#include "core/io.h"
#include "fcgi.h"
#include "fcgi_impl.h"

#define OUT_IOV		64	/* pieces in one writev */
/*
 * What a write of "n" bytes adds at most to what the socket holds as
 * SIOCOUTQ counts it: for a unix socket, the kernel's buffers with their
 * overhead (one of at most a page plus the pages for the rest, and its
 * header); for TCP, the bytes.  Writes up to COUNTED_MAX are one buffer.
 */
#define WRITE_COST(n)	(2 * (n) + 8192)
#define COUNTED_MAX	(16 * 1024)

/* A record header into "h" (FCGI_HEADER_LEN bytes). */
static void
make_header(unsigned char *h, int type, unsigned id, size_t len)
{
	h[0] = FCGI_VERSION_1;
	h[1] = (unsigned char)type;
	h[2] = (unsigned char)(id >> 8);
	h[3] = (unsigned char)id;
	h[4] = (unsigned char)(len >> 8);
	h[5] = (unsigned char)len;
	h[6] = h[7] = 0;
}

/* An END_REQUEST body into "b" (8 bytes). */
static void
end_body(unsigned char *b, int app, int proto)
{
	uint32_t	 a = (uint32_t)app;

	b[0] = (unsigned char)(a >> 24);
	b[1] = (unsigned char)(a >> 16);
	b[2] = (unsigned char)(a >> 8);
	b[3] = (unsigned char)a;
	b[4] = (unsigned char)proto;
	b[5] = b[6] = b[7] = 0;
}

int
fcgi_queue_record(struct fcgi *f, int type, unsigned id, const void *content,
    size_t len)
{
	unsigned char	 h[FCGI_HEADER_LEN];

	make_header(h, type, id, len);
	if (buf_add(&f->ctl, h, sizeof(h)) == -1 ||
	    buf_add(&f->ctl, content, len) == -1)
		return -1;
	return 0;
}

int
fcgi_queue_end(struct fcgi *f, unsigned id, int app, int proto)
{
	unsigned char	 b[8];

	end_body(b, app, proto);
	return fcgi_queue_record(f, FCGI_END_REQUEST, id, b, sizeof(b));
}

int
fcgi_send_ctl(struct fcgi *f)
{
	if (f->ctl.len == 0)
		return 0;
	f->held_known = 0;	/* rare: not counted */
	if (io_write_all(f->fd, f->ctl.data, f->ctl.len) == -1)
		return -1;
	buf_reset(&f->ctl);
	return 0;
}

/* Whether the count alone (room_for()) shows room for "n" more bytes. */
static int
counted_room(const struct fcgi *f, size_t n)
{
	return f->held_known && n <= COUNTED_MAX && f->sndbuf > 0 &&
	    f->held_most + WRITE_COST(n) + 4096 <= (size_t)f->sndbuf;
}

/*
 * Whether "n" more bytes, held with what the socket holds now, leave it
 * below its send buffer with a margin: a write of them goes without
 * waiting.  What it holds is known at most without asking the kernel
 * while every write since it was last asked was counted (send_out()): a
 * socket's queue grows only by what is written to it.  Asked with
 * SIOCOUTQ otherwise, and when the count says no (the peer may have read).
 */
static int
room_for(struct fcgi *f, size_t n)
{
	socklen_t	 len = sizeof(f->sndbuf);
	int		 queued;

	if (counted_room(f, n))
		return 1;
	if (n > COUNTED_MAX)
		return 0;
	if (f->sndbuf == 0 && getsockopt(f->fd, SOL_SOCKET, SO_SNDBUF,
	    &f->sndbuf, &len) == -1)
		f->sndbuf = -1;
	if (f->sndbuf <= 0 || ioctl(f->fd, TIOCOUTQ, &queued) == -1 ||
	    queued < 0) {
		f->held_known = 0;
		return 0;
	}
	f->held_known = 1;
	f->held_most = (size_t)queued;
	return counted_room(f, n);
}

int
fcgi_room(struct fcgi *f, size_t n)
{
	if (f->aborted || f->out.len > 0 || f->ctl.len > 0)
		return 0;
	/* n bytes of STDOUT, in records of FCGI_MAX_LENGTH */
	return room_for(f, n + FCGI_HEADER_LEN * (n / FCGI_MAX_LENGTH + 1));
}

int
fcgi_out(struct fcgi *f, const char *p, size_t n)
{
	if (f->aborted)
		return -1;
	return buf_add(&f->out, p, n);
}

/*
 * Send what is queued: the answers to management records, then "out" as
 * STDOUT records of at most FCGI_MAX_LENGTH bytes, then "tail" (NULL or
 * "tail_len" bytes of whole records), with as few writes as fit in
 * OUT_IOV pieces.  0, or -1 if the peer is gone.
 */
static int
send_out(struct fcgi *f, const void *tail, size_t tail_len)
{
	unsigned char	 hdrs[OUT_IOV / 2][FCGI_HEADER_LEN];
	struct iovec	 iov[OUT_IOV + 2];
	size_t		 off = 0, k, len;
	int		 n, h, counted;

	if (fcgi_send_ctl(f) == -1)
		return -1;
	do {
		len = 0;
		for (n = h = 0; off < f->out.len && h < OUT_IOV / 2; h++) {
			k = f->out.len - off < FCGI_MAX_LENGTH ?
			    f->out.len - off : FCGI_MAX_LENGTH;
			make_header(hdrs[h], FCGI_STDOUT, f->id, k);
			iov[n].iov_base = hdrs[h];
			iov[n++].iov_len = FCGI_HEADER_LEN;
			iov[n].iov_base = f->out.data + off;
			iov[n++].iov_len = k;
			off += k;
			len += FCGI_HEADER_LEN + k;
		}
		if (off == f->out.len && tail != NULL) {
			iov[n].iov_base = (void *)tail;
			iov[n++].iov_len = tail_len;
			len += tail_len;
			tail = NULL;
		}
		if (n == 0)
			break;
		counted = counted_room(f, len);
		if (io_writev_all(f->fd, iov, n) == -1) {
			f->aborted = 1;
			buf_reset(&f->out);
			return -1;
		}
		/* What is counted must have gone in one write, without
		 * waiting: else the kernel's cost of it is not known. */
		f->held_known = counted;
		f->held_most += WRITE_COST(len);
	} while (off < f->out.len || tail != NULL);
	buf_reset(&f->out);
	return 0;
}

int
fcgi_flush(struct fcgi *f)
{
	if (f->aborted)
		return -1;
	return send_out(f, NULL, 0);
}

int
fcgi_end(struct fcgi *f, int app_status)
{
	unsigned char	 tail[2 * FCGI_HEADER_LEN + 8];
	int		 rc;

	/* After an abort, nothing of the answer; the end all the same. */
	if (f->aborted)
		buf_reset(&f->out);
	make_header(tail, FCGI_STDOUT, f->id, 0);
	make_header(tail + FCGI_HEADER_LEN, FCGI_END_REQUEST, f->id, 8);
	end_body(tail + 2 * FCGI_HEADER_LEN, app_status,
	    FCGI_REQUEST_COMPLETE);
	rc = send_out(f, tail, sizeof(tail));
	if (!fcgi_reusable(f))
		f->state = FCGI_ST_ENDED;
	return rc;
}
