/*
 * Run a fuzz target once over files, without libFuzzer: each argument is
 * an input file, or a folder whose files are inputs.  TAP, one test point
 * per file; a crash is a crash.
 */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int	n;

static void
run_file(const char *path)
{
	FILE	*fp;
	uint8_t	*data = NULL;
	size_t	 len = 0, cap = 0, got;

	if ((fp = fopen(path, "rb")) == NULL) {
		printf("not ok %d - %s: %s\n", ++n, path, strerror(errno));
		return;
	}
	do {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			if ((data = realloc(data, cap)) == NULL)
				abort();
		}
		got = fread(data + len, 1, cap - len, fp);
		len += got;
	} while (got > 0);
	fclose(fp);
	LLVMFuzzerTestOneInput(data, len);
	free(data);
	printf("ok %d - %s\n", ++n, path);
}

static int
by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static void
run_dir(const char *dir, int missing_ok)
{
	struct dirent	**ents;
	char		  path[4096];
	int		  k, m;

	if ((m = scandir(dir, &ents, NULL, by_name)) == -1) {
		if (!(missing_ok && errno == ENOENT))
			printf("not ok %d - %s: %s\n", ++n, dir,
			    strerror(errno));
		return;
	}
	for (k = 0; k < m; k++) {
		if (ents[k]->d_name[0] != '.' &&
		    strcmp(ents[k]->d_name, "README") != 0) {
			snprintf(path, sizeof(path), "%s/%s", dir,
			    ents[k]->d_name);
			run_file(path);
		}
		free(ents[k]);
	}
	free(ents);
}

/* No arguments: this target's seeds and regressions in the source tree. */
int
main(int argc, char **argv)
{
	struct stat	 sb;
	const char	*top;
	char		 dir[4096];
	int		 i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 1) {
		if ((top = getenv("LLMGW_SRCDIR")) == NULL)
			top = ".";
		snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s", top,
		    FUZZ_NAME);
		run_dir(dir, 0);
		snprintf(dir, sizeof(dir), "%s/tests/fuzz/regressions/%s", top,
		    FUZZ_NAME);
		run_dir(dir, 1);
	}
	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &sb) == 0 && S_ISDIR(sb.st_mode))
			run_dir(argv[i], 0);
		else
			run_file(argv[i]);
	}
	printf("1..%d\n", n);
	return 0;
}
