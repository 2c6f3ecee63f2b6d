#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "reqid.h"
#include "spool.h"

static const char *const spool_subdirs[] = { "tmp", "new", "cur", "failed" };

/* mkdir that is happy when the directory is already there. */
static int
ensure_dir(const char *path, struct err *err)
{
	struct stat	 st;

	if (mkdir(path, 0750) == 0)
		return 0;
	if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	err_set(err, "spool: mkdir %s: %s", path, errno == EEXIST ?
	    "exists and is not a directory" : strerror(errno));
	return -1;
}

int
spool_check(const char *dir, struct err *err)
{
	char	 path[PATH_MAX], id[REQID_LEN + 1];
	size_t	 i;
	int	 fd, n;

	if (ensure_dir(dir, err) == -1)
		return -1;
	for (i = 0; i < sizeof(spool_subdirs) / sizeof(spool_subdirs[0]);
	    i++) {
		n = snprintf(path, sizeof(path), "%s/%s", dir,
		    spool_subdirs[i]);
		if (n < 0 || (size_t)n >= sizeof(path)) {
			err_set(err, "spool: %s: path too long", dir);
			return -1;
		}
		if (ensure_dir(path, err) == -1)
			return -1;
	}
	reqid_new(id);
	snprintf(path, sizeof(path), "%s/tmp/.probe-%s", dir, id);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0640)) == -1) {
		err_set(err, "spool: create %s: %s", path, strerror(errno));
		return -1;
	}
	if (write(fd, "ok\n", 3) != 3) {
		err_set(err, "spool: write %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	unlink(path);
	return 0;
}
