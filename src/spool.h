/*
 * The spool directory: log records handed from the responder to
 * llmgw-spoold, maildir style.  A record is written into tmp/, synced,
 * and renamed into new/; the consumer claims it by renaming it into cur/.
 */
#ifndef SPOOL_H
#define SPOOL_H

struct err;

/*
 * Make sure "dir" and its tmp/ new/ cur/ failed/ exist and that a file
 * can be created in tmp/.  Returns 0, or -1 with "err" saying why not.
 */
int	 spool_check(const char *dir, struct err *);

#endif /* SPOOL_H */
