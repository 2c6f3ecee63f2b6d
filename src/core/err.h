/*
 * An error message travelling from the code that knows the details to the
 * code that reports them.  Fixed size: setting an error never fails.
 */
#ifndef ERR_H
#define ERR_H

#define ERR_MAX	512

struct err {
	char	 msg[ERR_MAX];
};

/* Replace the message. */
void	 err_set(struct err *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* Put context in front of the message already set: "ctx: old". */
void	 err_prefix(struct err *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));

#endif /* ERR_H */
