/*
 * The main() of a filter program: build its stage from the arguments, run
 * the NDJSON loop from standard input to standard output, exit with the
 * loop's status.
 */
#include <unistd.h>

#include "whook.h"

int
stage_main(const char *prog, int (*build)(struct stage *, int, char **),
    int argc, char *argv[])
{
	struct stage st = { 0 };
	int status;

	msg_init(prog);
	status = build(&st, argc, argv);
	if (status != STAGE_READY)
		return status;
	status = ndjson_run(&st, STDIN_FILENO, stdout);
	if (st.free != NULL)
		st.free(st.ctx);
	return status;
}
