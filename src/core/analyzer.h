/*
 * Where GCC's -fanalyzer (tests/analyzer.sh, run by CI) reports a leak
 * that is none, the code says so between ANALYZER_LEAKS_OFF and _ON, with
 * the reason.  The analyzer of GCC 12 loses pointers stored through an
 * offset table or into an array it cannot size: conf.c's fields,
 * spool_list()'s names, table_add()'s cells.
 */
#ifndef ANALYZER_H
#define ANALYZER_H

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10
#define ANALYZER_LEAKS_OFF	_Pragma("GCC diagnostic push") \
	_Pragma("GCC diagnostic ignored \"-Wanalyzer-malloc-leak\"")
#define ANALYZER_LEAKS_ON	_Pragma("GCC diagnostic pop")
#else
#define ANALYZER_LEAKS_OFF
#define ANALYZER_LEAKS_ON
#endif

#endif /* ANALYZER_H */
