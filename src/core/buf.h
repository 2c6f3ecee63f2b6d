/*
 * A growable byte buffer with a hard cap.  The bytes are always followed by
 * a NUL so that buf_str() can hand them to string functions; the NUL is not
 * counted in "len".
 */
#ifndef BUF_H
#define BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char	*data;		/* NULL until the first append */
	size_t	 len;
	size_t	 cap;
	size_t	 max;		/* appends beyond this fail; BUF_NOCAP */
};

/* No cap but memory: for what llmgw builds itself, of a size it knows. */
#define BUF_NOCAP	0

/*
 * An append's result must be looked at (as curl's dynbuf does): a buffer
 * that silently stops growing is a record or an answer cut short.
 */
#define BUF_CHECK	__attribute__((warn_unused_result))

void	 buf_init(struct buf *, size_t max);
void	 buf_free(struct buf *);		/* leaves an empty buffer */
void	 buf_reset(struct buf *);		/* len = 0, memory kept */
/* Between uses: reset, and let the memory go if it grew past "keep". */
void	 buf_trim(struct buf *, size_t keep);
#define BUF_KEEP	(64 * 1024)	/* what a buffer reused per request keeps */

/*
 * Appenders return 0, or -1 when the cap would be exceeded or memory ran
 * out; on failure the buffer is unchanged.
 */
int	 buf_add(struct buf *, const void *, size_t) BUF_CHECK;
int	 buf_adds(struct buf *, const char *) BUF_CHECK;
int	 buf_addc(struct buf *, char) BUF_CHECK;
int	 buf_addf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3))) BUF_CHECK;
int	 buf_vaddf(struct buf *, const char *, va_list)
	    __attribute__((format(printf, 2, 0))) BUF_CHECK;

/*
 * Room for "n" more bytes at the end, to read into: a pointer to it, or
 * NULL past the cap or out of memory.  buf_commit() then adds the bytes
 * actually written (at most "n").
 */
char	*buf_space(struct buf *, size_t n);
void	 buf_commit(struct buf *, size_t n);

/* The contents as a string; "" for an empty buffer, never NULL. */
const char *buf_str(const struct buf *);

#endif /* BUF_H */
