/* Every key the configuration parser accepts is documented. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/conf.h"
#include "../tap.h"

static char *
slurp(const char *path)
{
	FILE	*fp;
	char	*s;
	long	 n;

	if ((fp = fopen(path, "r")) == NULL)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	if ((s = calloc(1, (size_t)n + 1)) != NULL &&
	    fread(s, 1, (size_t)n, fp) != (size_t)n) {
		free(s);
		s = NULL;
	}
	fclose(fp);
	return s;
}

int
main(void)
{
	const char *const	*k;
	const char		*src = getenv("LLMGW_SRCDIR");
	char			 path[1024], item[128], *page, *readme;

	snprintf(path, sizeof(path), "%s/man/llmgw.conf.5.in",
	    src != NULL ? src : ".");
	page = slurp(path);
	ok(page != NULL, "read %s", path);
	snprintf(path, sizeof(path), "%s/README.md", src != NULL ? src : ".");
	readme = slurp(path);
	for (k = conf_keys(); page != NULL && *k != NULL; k++) {
		snprintf(item, sizeof(item), ".It Ic %s ", *k);
		ok(strstr(page, item) != NULL, "llmgw.conf(5) documents %s", *k);
	}
	ok(readme != NULL && strstr(readme, "llmgw.conf(5)") != NULL,
	    "the README points to llmgw.conf(5)");
	free(page);
	free(readme);
	return done_testing();
}
