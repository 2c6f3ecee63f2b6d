/*
 * Writing all of something to a file descriptor.
 */
#ifndef IO_H
#define IO_H

#include <stddef.h>
#include <sys/uio.h>

/*
 * Write all "n" pieces of "iov" (which is advanced past what was written,
 * so it is the caller's to lose), resuming after signals and partial
 * writes: 0, or -1 with errno.
 */
int	 io_writev_all(int fd, struct iovec *iov, int n);
/* The same for "n" bytes at "p". */
int	 io_write_all(int fd, const char *p, size_t n);

#endif /* IO_H */
