/*
 * What every fuzz target shares.  Each target defines
 * LLVMFuzzerTestOneInput(); built with clang -fsanitize=fuzzer it is run
 * by libFuzzer (make fuzz), built with replay.c it reads its corpus and
 * regression files once (make check), so that a crash found once stays
 * fixed.  FUZZ_CHECK aborts, which both report as a crash with the input.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define FUZZ_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,	\
		    __LINE__, #cond);					\
		abort();						\
	}								\
} while (0)

#endif /* FUZZ_H */
