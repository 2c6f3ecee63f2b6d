#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"

unsigned long long
proc_start(long pid)
{
	char			 path[64], buf[1024], *p;
	unsigned long long	 start = 0;
	FILE			*fp;
	int			 i;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((fp = fopen(path, "r")) == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), fp) != NULL &&
	    (p = strrchr(buf, ')')) != NULL) {
		/* Field 22 is starttime; the text after ')' is field 3 on. */
		for (i = 3, p++; i < 22 && p != NULL; i++)
			p = strchr(p + 1, ' ');
		if (p != NULL)
			start = strtoull(p + 1, NULL, 10);
	}
	fclose(fp);
	return start;
}

unsigned long long
proc_self_start(void)
{
	static unsigned long long	 self;
	static long			 self_pid;

	/* Read again after a fork. */
	if (self == 0 || self_pid != (long)getpid()) {
		self_pid = (long)getpid();
		self = proc_start(self_pid);
	}
	return self;
}

int
proc_alive(long pid, unsigned long long start)
{
	return pid > 0 && start != 0 && proc_start(pid) == start;
}
