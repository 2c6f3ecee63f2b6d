/*
 * What conf.c and conf_check.c share; private to them.
 */
#ifndef CONF_IMPL_H
#define CONF_IMPL_H

struct conf;
struct err;
struct model_price;

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

/* The prices after "model:" in a model_prices entry: 0, or -1 if they are
 * not 2 or 4 numbers from 0 (conf.c). */
int		 conf_price_parse(const char *prices, struct model_price *);

#endif /* CONF_IMPL_H */
