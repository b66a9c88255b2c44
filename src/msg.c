/*
 * Messages on standard error: "whook-NAME: what: why", one line each.
 * Under systemd (JOURNAL_STREAM set) a "<N>" prefix gives the journal
 * the priority, as sd-daemon(3) describes.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "whook.h"

int msg_verbose;
static const char *prog = "whook";
static int journal = -1;

void
msg_init(const char *name)
{
	prog = name;
	journal = getenv("JOURNAL_STREAM") != NULL;
}

const char *
msg_prog(void)
{
	return prog;
}

static void
msg_print(int priority, const char *fmt, va_list ap)
{
	char line[4096];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (journal == 1)
		fprintf(stderr, "<%d>%s: %s\n", priority, prog, line);
	else
		fprintf(stderr, "%s: %s\n", prog, line);
}

void
msg_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	msg_print(3, fmt, ap);
	va_end(ap);
}

void
msg_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	msg_print(4, fmt, ap);
	va_end(ap);
}

void
msg_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	msg_print(6, fmt, ap);
	va_end(ap);
}

void
msg_version(void)
{
	printf("%s %s\n", prog, WHOOK_VERSION);
}
