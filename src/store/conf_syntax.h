/*
 * The syntax of llmgw.conf, for the configuration of the three programs
 * (conf.c) and for their command lines: "key = value" lines, and the
 * kinds of value.  Each parser returns 0 (conf_parse_long(): the count of
 * digits read), or -1 with "err" set to a message without location.
 */
#ifndef CONF_SYNTAX_H
#define CONF_SYNTAX_H

struct err;

/*
 * Split one line into key and value, in place: a value may be quoted
 * ("\"" and "\\" are its escapes), and "#" starts a comment.  Returns 1
 * for a setting, 0 for a blank or comment line, -1 with "err" set.
 */
int	 conf_split(char *line, char **key, char **value, struct err *);

/* A decimal number at the start of "s". */
int	 conf_parse_long(const char *s, long *, struct err *);
/* "500ms", "10s", "5m", "1h", "7d" (no unit: seconds), in ms. */
int	 conf_parse_duration_ms(const char *, long *, struct err *);
/* "4096", "64k", "1M", "1G", in bytes. */
int	 conf_parse_size(const char *, long *, struct err *);
/* yes/no, true/false, on/off, 1/0. */
int	 conf_parse_bool(const char *, int *, struct err *);
/* An octal file mode, "0660". */
int	 conf_parse_mode(const char *, long *, struct err *);

/*
 * Split "s" on commas and white space into a NULL-terminated list (free
 * it with conf_list_free()); NULL with "err" set if it is empty.
 */
char	**conf_list_parse(const char *s, struct err *);
void	  conf_list_free(char **);	/* NULL is fine */

#endif /* CONF_SYNTAX_H */
