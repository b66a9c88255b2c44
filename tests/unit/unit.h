/*
 * A unit test prints one line a check, "ok - NAME" or "not ok - NAME"
 * with the place and the failed expression, as TAP does; tests/run
 * counts them.
 */
#ifndef UNIT_H
#define UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_failures;

#define CHECK(name, cond)                                                      \
	do {                                                                   \
		if (cond) {                                                    \
			printf("ok - %s\n", name);                             \
		} else {                                                       \
			printf("not ok - %s (%s:%d: %s)\n", name, __FILE__,    \
			    __LINE__, #cond);                                  \
			unit_failures++;                                       \
		}                                                              \
	} while (0)

#define CHECK_STR(name, got, want)                                             \
	do {                                                                   \
		const char *got_ = (got), *want_ = (want);                     \
		if (got_ != NULL && strcmp(got_, want_) == 0) {                \
			printf("ok - %s\n", name);                             \
		} else {                                                       \
			printf("not ok - %s (%s:%d: got \"%s\", expected "     \
			       "\"%s\")\n",                                    \
			    name, __FILE__, __LINE__, got_ ? got_ : "(null)",  \
			    want_);                                            \
			unit_failures++;                                       \
		}                                                              \
	} while (0)

#define UNIT_EXIT() return unit_failures ? 1 : 0

#endif
