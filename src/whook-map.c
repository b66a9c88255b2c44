/*
 * whook-map: reads envelopes on standard input, renders a JSON template
 * against each and writes it on with the result as $last.  The stage
 * itself is in map.c, so a flow runner can chain it in one process.
 */
#include "whook.h"

int
main(int argc, char *argv[])
{
	return stage_main("whook-map", map_stage, argc, argv);
}
