/*
 * Unit tests of replay.c's pure parts: the times that --since, --until
 * and $trigger.received_at take, and the capped full-jitter backoff.
 */
#include "whook.h"
#include "unit.h"

static long long
ms_of(const char *text)
{
	long long ms = -2;

	return replay_parse_time(text, &ms) == 0 ? ms : -1;
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
	UNIT_EXIT();
}
