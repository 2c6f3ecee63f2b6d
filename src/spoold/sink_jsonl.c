/*
 * The JSON lines sink: each record appended as one line to a file (or to
 * standard output for "-"), one write per batch.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "store/conf.h"
#include "store/perm.h"
#include "sink_impl.h"

struct jsonl_sink {
	char	*path;
	int	 fd;
	int	 sync;
};

static int
jsonl_open_fd(struct jsonl_sink *s, struct err *err)
{
	if (strcmp(s->path, "-") == 0) {
		s->fd = STDOUT_FILENO;
		return 0;
	}
	if ((s->fd = open(s->path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL |
	    O_CLOEXEC, perm_file_mode())) != -1) {
		if (perm_fix(s->fd, 0) == -1) {
			err_set(err, "chmod %s: %s", s->path, strerror(errno));
			return -1;
		}
		return 0;
	}
	/* There already: logrotate made it, or the admin; left as it is. */
	if (errno != EEXIST || (s->fd = open(s->path, O_WRONLY | O_APPEND |
	    O_CLOEXEC)) == -1) {
		err_set(err, "open %s: %s", s->path, strerror(errno));
		return -1;
	}
	return 0;
}

static void
jsonl_close(void *arg)
{
	struct jsonl_sink	*s = arg;

	if (s == NULL)
		return;
	if (s->fd > STDERR_FILENO)
		close(s->fd);
	free(s->path);
	free(s);
}

static void *
jsonl_open(const struct conf *c, struct err *err)
{
	struct jsonl_sink	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->path = strdup(c->jsonl_path)) == NULL) {
		free(s);
		err_set(err, "out of memory");
		return NULL;
	}
	s->fd = -1;
	s->sync = c->spool_fsync;
	if (jsonl_open_fd(s, err) == -1) {
		jsonl_close(s);
		return NULL;
	}
	return s;
}

static size_t
jsonl_deliver(void *arg, const struct delivery *d, size_t n,
    struct err *err)
{
	struct jsonl_sink	*s = arg;
	struct buf		 b;
	const char		*p;
	size_t			 i, left;
	ssize_t			 w;

	buf_init(&b, 0);
	for (i = 0; i < n; i++)
		if (buf_add(&b, d[i].json, d[i].len) == -1 ||
		    buf_addc(&b, '\n') == -1) {
			err_set(err, "out of memory");
			buf_free(&b);
			return 0;
		}
	/*
	 * O_APPEND keeps concurrent consumers' lines whole; a short write
	 * (disk full) is reported and the batch is tried again whole.
	 */
	for (p = b.data, left = b.len; left > 0; p += w, left -= (size_t)w) {
		if ((w = write(s->fd, p, left)) == -1) {
			if (errno == EINTR) {
				w = 0;
				continue;
			}
			err_set(err, "write %s: %s", s->path, strerror(errno));
			buf_free(&b);
			return 0;
		}
	}
	buf_free(&b);
	if (s->sync && s->fd > STDERR_FILENO && fsync(s->fd) == -1) {
		err_set(err, "fsync %s: %s", s->path, strerror(errno));
		return 0;
	}
	return n;
}

const struct sink_ops sink_jsonl_ops = {
	"jsonl", jsonl_open, jsonl_close, jsonl_deliver, NULL
};
