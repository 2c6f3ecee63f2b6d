/*
 * What conf.c and conf_check.c share; private to them.
 */
#ifndef CONF_IMPL_H
#define CONF_IMPL_H

struct conf;
struct err;

/*
 * "seen" holds, for each key, the line of the file that set it (0: its
 * default or the environment).  The line of "key", a known key.
 */
unsigned long	 conf_line_of(const unsigned long *seen, const char *key);

/*
 * The checks across keys, once all are set: 0, or -1 with "err" set to
 * "file:line: message" (conf_check.c).
 */
int		 conf_check(struct conf *, const unsigned long *seen,
		    struct err *);

#endif /* CONF_IMPL_H */
