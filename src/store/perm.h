/*
 * The permissions of what llmgw, llmgw-spoold and llmgw-admin create: the
 * database and its journal, the spool's folders and records,
 * the jsonl sink.  Private to the user llmgw runs as (files 0600,
 * folders 0700), or, with file_group set, readable by that group too
 * (0640, 0750), whatever the umask: each is set with fchmod() once it
 * exists.  One setting per process, from its configuration.
 */
#ifndef PERM_H
#define PERM_H

#include <sys/types.h>

struct conf;

/* Take the setting of "conf" (file_group), at start and on a reload. */
void	 perm_set(const struct conf *);

/* The mode a new file or folder is created with. */
mode_t	 perm_file_mode(void);
mode_t	 perm_dir_mode(void);

/*
 * Give what "fd" is (a file, or a folder when "dir") its mode and group,
 * whatever the umask made of them: 0, or -1 with errno.
 */
int	 perm_fix(int fd, int dir);

/* The same for a path: 0, or -1 with errno. */
int	 perm_fix_path(const char *path, int dir);

#endif /* PERM_H */
