#include "config.h"

#include <errno.h>
#include <sys/uio.h>
#include <unistd.h>

#include "io.h"

int
io_writev_all(int fd, struct iovec *iov, int n)
{
	ssize_t	 w;

	while (n > 0) {
		if ((w = writev(fd, iov, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

int
io_write_all(int fd, const char *p, size_t n)
{
	struct iovec	 iov;

	iov.iov_base = (void *)p;
	iov.iov_len = n;
	return io_writev_all(fd, &iov, 1);
}
