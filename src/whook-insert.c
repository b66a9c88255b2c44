/*
 * whook-insert: reads envelopes on standard input, stores $last (or the
 * value --from names) as a row of a sqlite3 table and writes each
 * envelope on once its row is committed, with the row id as $last.  The
 * stage is in insert.c and store.c, so a flow runner can chain it in one
 * process.
 */
#include "whook.h"

int
main(int argc, char *argv[])
{
	return stage_main("whook-insert", insert_stage, argc, argv);
}
