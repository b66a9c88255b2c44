/*
 * The main() of a filter program: build its stage from the arguments, run
 * the NDJSON loop from standard input to standard output, exit with the
 * loop's status.
 */
#include <unistd.h>

#include "whook.h"

struct failure {
	int code;
};

/* Rejects every envelope: the stage could not be built. */
static int
fail_process(void *ctx, jv *env, struct outcome *out)
{
	struct failure *f = ctx;

	(void)env;
	out->status = 500;
	snprintf(out->reason, sizeof(out->reason),
	    "not started: invalid options (exit status %d)", f->code);
	return f->code;
}

/*
 * Under WHOOK_OUTCOMES a program whose options are invalid still writes
 * every envelope, with $error set, so that a misconfigured step fails the
 * request instead of leaving later steps to exit 0 on no input.
 */
int
stage_fail_all(const char *name, int code)
{
	struct failure f = {.code = code};
	struct stage st = {.name = name, .process = fail_process, .ctx = &f};

	if (!ndjson_outcomes() || code == 0)
		return code;
	ndjson_run(&st, STDIN_FILENO, stdout);
	return code;
}

int
stage_main(const char *prog, int (*build)(struct stage *, int, char **),
    int argc, char *argv[])
{
	struct stage st = {0};
	int status;

	msg_init(prog);
	/* getopt_long names argv[0] in its messages: make it the program. */
	argv[0] = (char *)prog;
	status = build(&st, argc, argv);
	if (status != STAGE_READY)
		return stage_fail_all(prog, status);
	status = ndjson_run(&st, STDIN_FILENO, stdout);
	if (st.free != NULL)
		st.free(st.ctx);
	reads_free(st.reads);
	return status;
}
