/*
 * whook-check: reads envelopes on standard input and writes on those
 * that pass every check given (shared-secret header, sender signature,
 * Directus rule, jq filter).  A rejected envelope is logged and dropped,
 * or written to --rejected FILE, and the exit status is then 1.
 */
#include "whook.h"

int
main(int argc, char *argv[])
{
	return stage_main("whook-check", check_stage, argc, argv);
}
