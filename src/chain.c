/*
 * Stages chained in one process: each envelope goes through the stages of
 * a flow file in order, as jv values, with no serialization between them.
 * The results equal those of the same programs joined by pipes: a stage
 * that rejects an envelope stops it, each stage keeps its own exit status,
 * and the chain exits with the last stage's status, as sh(1) gives a
 * pipeline's.  A stage after a batching one (whook-insert) sees each
 * envelope before the batch commits; its output is still written after.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "whook.h"

struct chain {
	size_t n;
	struct stage stages[16];
	const char *names[16];
	int status[16];
	struct stage self;
};

static int
chain_process(void *ctx, jv *env, struct outcome *out)
{
	struct chain *c = ctx;
	size_t i;
	int code;

	for (i = 0; i < c->n; i++) {
		msg_init(c->names[i]);
		code = c->stages[i].process(c->stages[i].ctx, env, out);
		if (code != 0) {
			if (c->status[i] < code)
				c->status[i] = code;
			out->step = c->names[i];
			return code;
		}
	}
	return 0;
}

static int
chain_commit(void *ctx, struct outcome *out)
{
	struct chain *c = ctx;
	size_t i;
	int code;

	for (i = 0; i < c->n; i++) {
		if (c->stages[i].commit == NULL)
			continue;
		msg_init(c->names[i]);
		code = c->stages[i].commit(c->stages[i].ctx, out);
		if (code != 0) {
			if (c->status[i] < code)
				c->status[i] = code;
			out->step = c->names[i];
			return code;
		}
	}
	return 0;
}

static void
chain_defer(void *ctx)
{
	struct chain *c = ctx;
	size_t i;

	for (i = 0; i < c->n; i++)
		if (c->stages[i].defer != NULL)
			c->stages[i].defer(c->stages[i].ctx);
}

static int
chain_sync_fds(void *ctx, int *fds, int max, struct outcome *out)
{
	struct chain *c = ctx;
	size_t i;
	int n = 0, got;

	for (i = 0; i < c->n; i++) {
		if (c->stages[i].sync_fds == NULL)
			continue;
		got = c->stages[i].sync_fds(
		    c->stages[i].ctx, fds + n, max - n, out);
		if (got < 0) {
			while (n > 0)
				close(fds[--n]);
			out->step = c->names[i];
			return -1;
		}
		n += got;
	}
	return n;
}

static int (*builder(const char *word))(struct stage *, int, char **)
{
	const char *base = strrchr(word, '/');

	base = base != NULL ? base + 1 : word;
	if (strcmp(base, "whook-check") == 0)
		return check_stage;
	if (strcmp(base, "whook-map") == 0)
		return map_stage;
	if (strcmp(base, "whook-insert") == 0)
		return insert_stage;
	return NULL;
}

/* Returns the program's name as a string of its own, because messages
 * keep naming it after the flow file's words are freed. */
static const char *
stage_name(const char *word)
{
	const char *base = strrchr(word, '/');

	base = base != NULL ? base + 1 : word;
	if (strcmp(base, "whook-check") == 0)
		return "whook-check";
	if (strcmp(base, "whook-map") == 0)
		return "whook-map";
	return "whook-insert";
}

/* Builds one stage from a copy of its words that starts with the
 * program's name, because getopt_long names argv[0] in its messages.  The
 * stage keeps pointers to the words, which outlive it, not to the copy. */
static int
build_stage(struct stage *st, const char *name, int argc, char **words)
{
	char **args;
	int i, rc;

	args = calloc(argc + 1, sizeof(char *));
	if (args == NULL)
		return EX_OSERR;
	args[0] = (char *)name;
	for (i = 1; i < argc; i++)
		args[i] = words[i];
	rc = builder(words[0])(st, argc, args);
	free(args);
	return rc;
}

/* Returns whether A and B name one database: the same text, or files
 * that exist and are one. */
static int
same_database(const char *a, const char *b)
{
	struct stat sa, sb;

	if (strcmp(a, b) == 0)
		return 1;
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/*
 * Returns the index of a stage that writes the database of an earlier
 * one, or 0.  In one process the earlier stage holds the database's
 * write lock until its batch commits, so the later one would wait out
 * its busy timeout on every envelope.
 */
static size_t
shared_database(const struct chain *c)
{
	size_t i, j;

	for (j = 1; j < c->n; j++)
		for (i = 0; i < j; i++)
			if (c->stages[i].db != NULL &&
			    c->stages[j].db != NULL &&
			    same_database(c->stages[i].db, c->stages[j].db))
				return j;
	return 0;
}

/*
 * Builds the stages of FF.  Returns the chain, or NULL with *status the
 * exit status a stage's option parsing gave (EX_USAGE after a message).
 */
struct chain *
chain_build(const struct flowfile *ff, int *status)
{
	struct chain *c;
	size_t i;
	int rc;

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		*status = EX_OSERR;
		return NULL;
	}
	for (i = 0; i < ff->nstages; i++) {
		c->names[i] = stage_name(ff->argv[i][0]);
		msg_init(c->names[i]);
		rc = build_stage(
		    &c->stages[i], c->names[i], ff->argc[i], ff->argv[i]);
		if (rc != STAGE_READY) {
			c->n = i;
			chain_free(c);
			*status = rc == 0 ? EX_USAGE : rc;
			return NULL;
		}
		c->n = i + 1;
		if (c->stages[i].sync_fds != NULL) {
			c->self.defer = chain_defer;
			c->self.sync_fds = chain_sync_fds;
		}
		if (c->stages[i].commit != NULL && c->self.commit == NULL) {
			c->self.commit = chain_commit;
			c->self.batch_max = c->stages[i].batch_max;
			c->self.batch_ms = c->stages[i].batch_ms;
		}
	}
	i = shared_database(c);
	if (i > 0) {
		msg_init(c->names[i]);
		msg_error(
		    "--db %s: an earlier step of the flow writes it too, and "
		    "one process cannot: join these programs with a shell "
		    "pipeline",
		    c->stages[i].db);
		chain_free(c);
		*status = EX_USAGE;
		return NULL;
	}
	c->self.reads = c->n > 0 ? reads_new() : NULL;
	for (i = 0; i < c->n; i++)
		c->self.reads = reads_merge(c->self.reads, c->stages[i].reads);
	c->self.name = c->n > 0 ? c->names[0] : "whook-run";
	c->self.process = chain_process;
	c->self.ctx = c;
	return c;
}

struct stage *
chain_stage(struct chain *c)
{
	return &c->self;
}

/* Returns the exit status of the chain after the loop returned
 * LOOP_STATUS: the last stage's, as a pipeline's. */
int
chain_status(const struct chain *c, int loop_status)
{
	if (c->n <= 1 || loop_status == EX_IOERR || loop_status == EX_OSERR)
		return loop_status;
	return c->status[c->n - 1];
}

void
chain_free(struct chain *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++) {
		if (c->stages[i].free != NULL)
			c->stages[i].free(c->stages[i].ctx);
		reads_free(c->stages[i].reads);
	}
	reads_free(c->self.reads);
	free(c);
}
