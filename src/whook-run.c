/*
 * whook-run: runs a flow file of whook programs in one process.  Reads
 * envelopes on standard input and writes what the last stage passes on
 * standard output, exactly as the same programs joined by pipes would.
 * A flow file whose first line is "#!/usr/bin/env whook-run" is an
 * ordinary executable.
 */
#include <getopt.h>
#include <stdlib.h>
#include <unistd.h>

#include "whook.h"

static void
usage(FILE *f)
{
	fprintf(f, "usage: whook-run [-h] [--version] FLOWFILE\n");
}

int
main(int argc, char *argv[])
{
	static const struct option options[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	struct flowfile ff;
	struct chain *c;
	char why[512];
	int ch, status;

	msg_init("whook-run");
	argv[0] = "whook-run";
	while ((ch = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
		switch (ch) {
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			msg_version();
			return 0;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (argc - optind != 1) {
		msg_error("expected one flow file");
		usage(stderr);
		return EX_USAGE;
	}
	if (flowfile_load(argv[optind], &ff, why, sizeof(why)) == -1) {
		msg_error("%s: %s", argv[optind], why);
		return stage_fail_all("whook-run", EX_USAGE);
	}
	c = chain_build(&ff, &status);
	if (c == NULL) {
		flowfile_free(&ff);
		return stage_fail_all("whook-run", status);
	}
	status =
	    chain_status(c, ndjson_run(chain_stage(c), STDIN_FILENO, stdout));
	chain_free(c);
	flowfile_free(&ff);
	return status;
}
