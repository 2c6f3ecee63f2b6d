/*
 * What the configuration says of a model: the most max_tokens it may be
 * asked, its prices, whether it may be asked at all.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf_impl.h"

long
conf_max_tokens(const struct conf *c, const char *model)
{
	char	**w;
	size_t	 n = strlen(model);

	for (w = c->model_max_tokens; w != NULL && *w != NULL; w++)
		if (strncmp(*w, model, n) == 0 && (*w)[n] == ':')
			return strtol(*w + n + 1, NULL, 10);
	return c->max_tokens_limit;
}

long
conf_max_tokens_any(const struct conf *c)
{
	char	**w;
	long	 most = c->max_tokens_limit, v;

	for (w = c->model_max_tokens; w != NULL && *w != NULL; w++)
		if ((v = strtol(strchr(*w, ':') + 1, NULL, 10)) > most)
			most = v;
	return most;
}

/* The prices of one model_prices entry: 2 or 4 numbers, or -1. */
int
conf_price_parse(const char *prices, struct model_price *p)
{
	double		 v[4];
	const char	*s = prices;
	char		*end;
	int		 n;

	for (n = 0; n < 4; n++) {
		errno = 0;
		v[n] = strtod(s, &end);
		if (end == s || errno != 0 || !(v[n] >= 0 && v[n] < 1e6))
			return -1;
		if (*end == '\0')
			break;
		if (*end != ':')
			return -1;
		s = end + 1;
	}
	if (n != 1 && n != 3)
		return -1;
	p->input = v[0];
	p->output = v[1];
	p->cache_write = n == 3 ? v[2] : 1.25 * v[0];
	p->cache_read = n == 3 ? v[3] : 0.1 * v[0];
	return 0;
}

int
conf_model_price(const struct conf *c, const char *model,
    struct model_price *p)
{
	char	**w;
	size_t	 n = strlen(model);

	for (w = c->model_prices; w != NULL && *w != NULL; w++)
		if (n > 0 && strncmp(*w, model, n) == 0 && (*w)[n] == ':')
			return conf_price_parse(*w + n + 1, p);
	return -1;
}

int
conf_model_allowed(const struct conf *c, const char *model)
{
	char	**p;

	if (c->allowed_models == NULL)
		return 1;
	for (p = c->allowed_models; *p != NULL; p++)
		if (strcmp(*p, model) == 0)
			return 1;
	return 0;
}
