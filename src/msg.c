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
int msg_quiet;
/* The first name given is the process's.  A later msg_init names only its
 * own thread, so that the stages of an in-process flow, which rename their
 * thread as each runs, leave whook-listen's request threads alone. */
static const char *process_prog;
static _Thread_local const char *thread_prog;
static int journal = -1;

void
msg_init(const char *name)
{
	/* The first call comes before any thread starts, so only it writes
	 * what every thread reads. */
	if (process_prog == NULL) {
		process_prog = name;
		journal = getenv("JOURNAL_STREAM") != NULL;
	}
	thread_prog = name;
}

const char *
msg_prog(void)
{
	if (thread_prog != NULL)
		return thread_prog;
	return process_prog != NULL ? process_prog : "whook";
}

/* Rewrites control characters of LINE in place as "?" so that text from a
 * request (a path, a jq message quoting a body) can neither end the line
 * and forge another nor send terminal escapes. */
static void
msg_sanitize(char *line)
{
	unsigned char *p;

	for (p = (unsigned char *)line; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
}

static void
msg_print(int priority, const char *fmt, va_list ap)
{
	char line[4096];

	vsnprintf(line, sizeof(line), fmt, ap);
	msg_sanitize(line);
	if (journal == 1)
		fprintf(stderr, "<%d>%s: %s\n", priority, msg_prog(), line);
	else
		fprintf(stderr, "%s: %s\n", msg_prog(), line);
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

	if (msg_quiet)
		return;
	va_start(ap, fmt);
	msg_print(6, fmt, ap);
	va_end(ap);
}

/* Prints the reason and the program's usage on standard error; returns
 * EX_USAGE, the status of a misused program. */
int
msg_usage_error(void (*usage)(FILE *), const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	msg_print(3, fmt, ap);
	va_end(ap);
	usage(stderr);
	return EX_USAGE;
}

void
msg_version(void)
{
	printf("%s %s\n", msg_prog(), WHOOK_VERSION);
}
