/*
 * Small string helpers missing from C.
 */
#ifndef STR_H
#define STR_H

#include <stddef.h>

/*
 * Copy "src" into "dst" of "size" bytes (size > 0), truncating; the result
 * is always NUL-terminated.  Returns 1 if "src" was cut short, else 0.
 */
int	 str_copy(char *dst, size_t size, const char *src);

#endif /* STR_H */
