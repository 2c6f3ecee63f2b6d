#include "config.h"

#include <string.h>

#include "str.h"

int
str_copy(char *dst, size_t size, const char *src)
{
	size_t	 n = strlen(src);
	int	 cut = n >= size;

	if (cut)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return cut;
}
