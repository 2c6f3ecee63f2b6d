#include "config.h"

#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "perm.h"

/* -1: no group, files private to the user. */
static atomic_long	 file_gid = -1;

void
perm_set(const struct conf *c)
{
	atomic_store(&file_gid, c->file_gid);
}

mode_t
perm_file_mode(void)
{
	return atomic_load(&file_gid) == -1 ? 0600 : 0640;
}

mode_t
perm_dir_mode(void)
{
	return atomic_load(&file_gid) == -1 ? 0700 : 0750;
}

int
perm_fix(int fd, int dir)
{
	long	 gid = atomic_load(&file_gid);

	if (gid != -1 && fchown(fd, (uid_t)-1, (gid_t)gid) == -1)
		return -1;
	return fchmod(fd, dir ? perm_dir_mode() : perm_file_mode());
}

int
perm_fix_path(const char *path, int dir)
{
	long	 gid = atomic_load(&file_gid);

	if (gid != -1 && chown(path, (uid_t)-1, (gid_t)gid) == -1)
		return -1;
	return chmod(path, dir ? perm_dir_mode() : perm_file_mode());
}
