/*
 * What a peer on the FastCGI socket sends, through the path a connection
 * takes in llmgw (server.c): the bytes arrive on a socket, in pieces the
 * input chooses, and each is read without waiting and parsed
 * (fcgi_read()); a whole request is served through a conn (its
 * parameters looked at, its body read, an answer written, the request
 * ended), a kept connection goes on to the next, a late one expires.
 *
 * The first byte chooses the pieces' size (1 to 128 bytes, or all at
 * once) and whether the end is a hang-up or a deadline; the rest is what
 * the peer sends.  Beyond not crashing: nothing allocated for what a
 * peer only claims (the target runs with a malloc limit), the parameters
 * are strings without NUL and within FCGI_PARAMS_MAX, a body never
 * exceeds its cap, and everything llmgw writes back is whole records of
 * the kinds a responder sends.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fastcgi.h>

#include "llmgw/conn.h"
#include "llmgw/fcgi.h"
#include "fuzz.h"

#define BODY_MAX	4096

/* What llmgw wrote back so far, read from the peer's end. */
static unsigned char	 back[1 << 20];
static size_t		 nback;

static void
collect(int peer)
{
	ssize_t	 n;

	while (nback < sizeof(back) && (n = recv(peer, back + nback,
	    sizeof(back) - nback, MSG_DONTWAIT)) > 0)
		nback += (size_t)n;
}

/* Every record llmgw wrote is whole and of a kind a responder sends. */
static void
check_back(void)
{
	size_t	 off = 0, len;
	int	 type;

	while (off + FCGI_HEADER_LEN <= nback) {
		FUZZ_CHECK(back[off] == FCGI_VERSION_1);
		type = back[off + 1];
		FUZZ_CHECK(type == FCGI_STDOUT || type == FCGI_END_REQUEST ||
		    type == FCGI_GET_VALUES_RESULT ||
		    type == FCGI_UNKNOWN_TYPE);
		len = (size_t)back[off + 4] << 8 | back[off + 5];
		off += FCGI_HEADER_LEN + len + back[off + 6];
	}
	FUZZ_CHECK(off == nback || nback == sizeof(back));
}

/* Serve a whole request as a route would, looking at all of it. */
static void
serve(struct fcgi *f)
{
	struct conn	 conn;
	char		 body[512];
	size_t		 i, total = 0;
	ssize_t		 n;

	FUZZ_CHECK(f->params.len <= FCGI_PARAMS_MAX);
	for (i = 0; i < f->nenv && f->env != NULL; i++) {
		FUZZ_CHECK(f->env[2 * i][0] != '\0');
		FUZZ_CHECK(fcgi_param(f, f->env[2 * i]) != NULL);
	}
	conn_init_fcgi(&conn, f);
	(void)conn_nparams(&conn);
	(void)conn_param(&conn, "CONTENT_LENGTH");
	while ((n = conn_read(&conn, body, sizeof(body))) > 0)
		total += (size_t)n;
	FUZZ_CHECK(n == 0 || errno == EFBIG || errno == ETIMEDOUT);
	FUZZ_CHECK(total <= BODY_MAX);
	if (conn_puts(&conn, "Status: 200 OK\r\n\r\nok") == 0)
		(void)conn_flush(&conn);
	(void)conn_check(&conn);
	(void)fcgi_end(f, 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fcgi		 f;
	enum fcgi_result	 rc = FCGI_MORE;
	size_t			 piece, off = 1;
	int			 sv[2], late;

	if (size < 1)
		return 0;
	piece = data[0] & 0x7f ? data[0] & 0x7f : size;
	late = data[0] & 0x80;
	signal(SIGPIPE, SIG_IGN);	/* as llmgw does */
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		abort();
	nback = 0;
	fcgi_init(&f, sv[1], BODY_MAX);
	while (rc != FCGI_BAD && rc != FCGI_CLOSED) {
		if (off < size) {
			size_t k = size - off < piece ? size - off : piece;

			FUZZ_CHECK(write(sv[0], data + off, k) == (ssize_t)k);
			off += k;
		} else if (!late)
			shutdown(sv[0], SHUT_WR);
		rc = fcgi_read(&f);
		if (rc == FCGI_MORE && off >= size && late)
			rc = fcgi_expire(&f);
		if (rc == FCGI_BAD)
			FUZZ_CHECK(f.why[0] != '\0');
		if (rc == FCGI_REQUEST) {
			serve(&f);
			if (!fcgi_reusable(&f))
				break;
			fcgi_reset(&f);
			rc = FCGI_MORE;
		}
		collect(sv[0]);
		if (rc == FCGI_MORE && off >= size && late)
			break;
	}
	collect(sv[0]);
	check_back();
	close(sv[0]);
	close(sv[1]);
	fcgi_free(&f);
	return 0;
}
