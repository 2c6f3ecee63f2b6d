/*
 * The syntax of llmgw.conf (conf_syntax.h): its lines, and the kinds of
 * value a key may take.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "conf_syntax.h"

int
conf_parse_long(const char *s, long *out, struct err *err)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (end == s || errno != 0) {
		err_set(err, "\"%s\" is not a number", s);
		return -1;
	}
	*out = v;
	return (int)(end - s);
}

struct unit {
	const char	*suffix;
	long		 mul;
};

static const struct unit duration_units[] = {
	{ "", 1000 }, { "s", 1000 }, { "ms", 1 }, { "m", 60 * 1000 },
	{ "h", 3600 * 1000 }, { "d", 86400 * 1000L }, { NULL, 0 }
};

static const struct unit size_units[] = {
	{ "", 1 }, { "k", 1024 }, { "K", 1024 }, { "m", 1024 * 1024 },
	{ "M", 1024 * 1024 }, { "g", 1024L * 1024 * 1024 },
	{ "G", 1024L * 1024 * 1024 }, { NULL, 0 }
};

/* A non-negative number with one of "units" after it, scaled. */
static int
conf_parse_scaled(const char *text, const struct unit *units, long *out)
{
	const struct unit	*u;
	struct err		 ignored;
	long			 v;
	int			 n;

	if ((n = conf_parse_long(text, &v, &ignored)) == -1 || v < 0)
		return -1;
	for (u = units; u->suffix != NULL; u++)
		if (strcmp(text + n, u->suffix) == 0) {
			if (v > LONG_MAX / u->mul)
				return -1;
			*out = v * u->mul;
			return 0;
		}
	return -1;
}

int
conf_parse_duration_ms(const char *text, long *out, struct err *err)
{
	if (conf_parse_scaled(text, duration_units, out) == 0)
		return 0;
	err_set(err, "\"%s\" is not a duration (like 500ms, 10s, 5m, 1h, 7d)",
	    text);
	return -1;
}

int
conf_parse_size(const char *text, long *out, struct err *err)
{
	if (conf_parse_scaled(text, size_units, out) == 0)
		return 0;
	err_set(err, "\"%s\" is not a size (like 4096, 64k, 1M)", text);
	return -1;
}

int
conf_parse_bool(const char *s, int *out, struct err *err)
{
	if (strcmp(s, "yes") == 0 || strcmp(s, "true") == 0 ||
	    strcmp(s, "on") == 0 || strcmp(s, "1") == 0)
		*out = 1;
	else if (strcmp(s, "no") == 0 || strcmp(s, "false") == 0 ||
	    strcmp(s, "off") == 0 || strcmp(s, "0") == 0)
		*out = 0;
	else {
		err_set(err, "\"%s\" is not yes or no", s);
		return -1;
	}
	return 0;
}

void
conf_list_free(char **list)
{
	char	**p;

	if (list == NULL)
		return;
	for (p = list; *p != NULL; p++)
		free(*p);
	free(list);
}

char **
conf_list_parse(const char *s, struct err *err)
{
	char		**list, *item;
	const char	 *p, *start;
	size_t		  n = 0, cap = 8;

	if ((list = calloc(cap + 1, sizeof(*list))) == NULL)
		goto nomem;
	for (p = s; *p != '\0';) {
		while (*p == ',' || isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			break;
		start = p;
		while (*p != '\0' && *p != ',' && !isspace((unsigned char)*p))
			p++;
		if (n == cap) {
			char **nl = realloc(list, (cap * 2 + 1) * sizeof(*nl));
			if (nl == NULL)
				goto nomem;
			list = nl;
			cap *= 2;
		}
		if ((item = strndup(start, (size_t)(p - start))) == NULL)
			goto nomem;
		list[n++] = item;
		list[n] = NULL;
	}
	if (n == 0) {
		free(list);
		err_set(err, "the list is empty");
		return NULL;
	}
	return list;
nomem:
	conf_list_free(list);
	err_set(err, "out of memory");
	return NULL;
}

int
conf_parse_mode(const char *s, long *out, struct err *err)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 8);
	if (errno != 0 || end == s || *end != '\0') {
		err_set(err, "\"%s\" is not an octal mode (like 0660)", s);
		return -1;
	}
	*out = v;
	return 0;
}

int
conf_split(char *line, char **key, char **value, struct err *err)
{
	char	*p, *q, *eq;

	p = line;
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '\0' || *p == '#')
		return 0;
	if ((eq = strchr(p, '=')) == NULL) {
		err_set(err, "expected \"key = value\"");
		return -1;
	}
	*key = p;
	for (q = eq; q > p && isspace((unsigned char)q[-1]); q--)
		;
	*q = '\0';
	for (q = p; *q != '\0'; q++)
		if (!islower((unsigned char)*q) && *q != '_' &&
		    !isdigit((unsigned char)*q)) {
			err_set(err, "\"%s\" is not a valid key name", p);
			return -1;
		}
	if (*p == '\0') {
		err_set(err, "missing key before \"=\"");
		return -1;
	}
	p = eq + 1;
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '"') {
		/* Quoted: \" and \\ are the only escapes. */
		*value = q = ++p;
		for (; *p != '"'; p++) {
			if (*p == '\0') {
				err_set(err, "missing closing quote");
				return -1;
			}
			if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
				p++;
			*q++ = *p;
		}
		*q = '\0';
		p++;
		while (isspace((unsigned char)*p))
			p++;
		if (*p != '\0' && *p != '#') {
			err_set(err, "unexpected text after closing quote");
			return -1;
		}
		return 1;
	}
	*value = p;
	if ((q = strchr(p, '#')) != NULL)
		*q = '\0';
	for (q = p + strlen(p); q > p && isspace((unsigned char)q[-1]); q--)
		;
	*q = '\0';
	if (*p == '\0') {
		err_set(err, "missing value for \"%s\"", *key);
		return -1;
	}
	return 1;
}
