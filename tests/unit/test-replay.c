/*
 * Unit tests of replay.c's pure parts: the times that --since, --until
 * and $trigger.received_at take, the capped full-jitter backoff and the
 * cursor file's line.
 */
#include "whook.h"
#include "unit.h"

static long long
ms_of(const char *text)
{
	long long ms = -2;

	return replay_parse_time(text, &ms) == 0 ? ms : -1;
}

/* Parses TEXT and checks that it gives OFFSET, LINE, DEV, INO and ID. */
static int
cursor_is(const char *text, long long offset, unsigned long long line,
    unsigned long long dev, unsigned long long ino, const char *id)
{
	struct replay_cursor c;

	return replay_cursor_parse(text, &c) == 0 && c.offset == offset &&
	       c.line == line && c.dev == dev && c.ino == ino &&
	       strcmp(c.id, id) == 0;
}

static int
cursor_invalid(const char *line)
{
	struct replay_cursor c;

	return replay_cursor_parse(line, &c) == -1;
}

int
main(void)
{
	CHECK("time utc", ms_of("2026-12-04T06:12:16Z") == 1796364736000LL);
	CHECK("time fraction",
	    ms_of("2026-12-04T06:12:16.123Z") == 1796364736123LL);
	CHECK("time long fraction",
	    ms_of("2026-12-04T06:12:16.1239Z") == 1796364736123LL);
	CHECK("time offset",
	    ms_of("2026-12-04T07:12:16+01:00") == 1796364736000LL);
	CHECK("time negative offset",
	    ms_of("2026-12-04T01:42:16-04:30") == 1796364736000LL);
	CHECK(
	    "time lowercase", ms_of("2026-12-04t06:12:16z") == 1796364736000LL);
	CHECK("time seconds", ms_of("1796364736") == 1796364736000LL);
	CHECK("time at seconds", ms_of("@1796364736") == 1796364736000LL);
	CHECK("time no zone", ms_of("2026-12-04T06:12:16") == -1);
	CHECK("time empty fraction", ms_of("2026-12-04T06:12:16.Z") == -1);
	CHECK("time bad month", ms_of("2026-13-04T06:12:16Z") == -1);
	CHECK("time trailing text", ms_of("2026-12-04T06:12:16Zx") == -1);
	CHECK("time words", ms_of("yesterday") == -1);
	CHECK("time bare at", ms_of("@") == -1);

	CHECK("backoff first ceiling", replay_backoff_ms(500, 1, 500) == 500);
	CHECK("backoff first wraps", replay_backoff_ms(500, 1, 501) == 0);
	CHECK("backoff doubles", replay_backoff_ms(500, 3, 2000) == 2000);
	CHECK("backoff jitter below", replay_backoff_ms(500, 3, 2001) == 0);
	CHECK("backoff capped", replay_backoff_ms(500, 30, 60000) == 60000);
	CHECK("backoff cap wraps", replay_backoff_ms(500, 30, 60001) == 0);
	CHECK("backoff zero base", replay_backoff_ms(0, 5, 12345) == 0);

	CHECK("cursor offset form", cursor_is("v2 6485 10 65024 10952722 01JX",
					6485, 10, 65024, 10952722, "01JX"));
	CHECK("cursor offset no id line",
	    cursor_is("v2 1 1 0 0 -", 1, 1, 0, 0, "-"));
	CHECK("cursor id form", cursor_is("01JX", -1, 0, 0, 0, "01JX"));
	CHECK("cursor empty", cursor_is("", -1, 0, 0, 0, ""));
	CHECK("cursor big offset", cursor_is("v2 9223372036854775807 3 1 2 a",
				       9223372036854775807LL, 3, 1, 2, "a"));
	CHECK("cursor offset too big",
	    cursor_invalid("v2 9223372036854775808 3 1 2 a"));
	CHECK("cursor offset zero", cursor_invalid("v2 0 3 1 2 a"));
	CHECK("cursor line zero", cursor_invalid("v2 5 0 1 2 a"));
	CHECK("cursor negative offset", cursor_invalid("v2 -5 3 1 2 a"));
	CHECK("cursor signed device", cursor_invalid("v2 5 3 +1 2 a"));
	CHECK("cursor no id", cursor_invalid("v2 5 3 1 2 "));
	CHECK("cursor missing fields", cursor_invalid("v2 5 3 1"));
	CHECK("cursor without line", cursor_invalid("v2 5 1 2 a"));
	CHECK("cursor two spaces", cursor_invalid("v2 5 3  1 2 a"));
	CHECK("cursor id with space", cursor_invalid("v2 5 3 1 2 a b"));
	CHECK("cursor id form with space", cursor_invalid("a b"));
	CHECK("cursor id with tab", cursor_invalid("a\tb"));
	CHECK("cursor id too long, 160 bytes",
	    cursor_invalid("0123456789012345678901234567890123456789"
			   "0123456789012345678901234567890123456789"
			   "0123456789012345678901234567890123456789"
			   "0123456789012345678901234567890123456789"));
	UNIT_EXIT();
}
