/*
 * whook-insert's stage: stores $last, or the value --from names, as one
 * row of a sqlite3 table and sets $last to {"table", "rowid", "changes"}.
 * With --dedupe, the default, an envelope whose $trigger.id was committed
 * into the table before inserts nothing and gets the recorded row id and
 * "duplicate": true, so replaying a log is a no-op.
 * The rows of a batch are committed together by the NDJSON loop through
 * the commit callback, so an envelope is written on only once its row is
 * durable.  The database is opened at the first envelope, so a database
 * that is down fails that envelope with 503 rather than the program.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "whook.h"

#define BUSY_MS 5000
/* The defaults of ndjson.c, for the usage text. */
#define BATCH_MAX 512
#define BATCH_MS 100

struct insert {
	struct store_config cfg;
	struct store *store;
	struct path *from;     /* NULL for $last */
	const char *from_name; /* for messages */
	const char *key;       /* --as KEY, or NULL */
	int dedupe;
	size_t batch_max;
	int batch_ms;
};

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: whook-insert [-cv] -d FILE -t TABLE [-a KEY] "
	    "[-b N] [-f KEY]\n"
	    "           [-k COL[,COL...]] [-o fail|ignore|replace|update]\n"
	    "           [--batch-ms MS] [--busy-timeout MS] "
	    "[--dedupe | --no-dedupe]\n"
	    "  -d, --db FILE          sqlite3 database file or file: URI\n"
	    "  -t, --table TABLE      table to insert into\n"
	    "  -c, --create           create the table from the first row\n"
	    "  -k, --key COL[,COL]    primary key for --create, conflict "
	    "target for update\n"
	    "  -o, --on-conflict HOW  fail (default), ignore, replace or "
	    "update\n"
	    "  -f, --from KEY         insert the envelope's KEY or plain "
	    "path, not $last\n"
	    "  -a, --as KEY           also store the result as the "
	    "envelope's KEY\n"
	    "  -b, --batch N          envelopes per transaction (default "
	    "%d)\n"
	    "      --batch-ms MS      commit a batch after MS ms (default "
	    "%d)\n"
	    "      --busy-timeout MS  wait for a locked database, in ms "
	    "(default %d)\n"
	    "      --dedupe           insert each $trigger.id once per table "
	    "(default)\n"
	    "      --no-dedupe        insert every envelope, replays too\n"
	    "  -v, --verbose          log a line for each envelope\n"
	    "  -h, --help             print this help and exit\n"
	    "      --version          print the version and exit\n",
	    BATCH_MAX, BATCH_MS, BUSY_MS);
}

static jv
result_of(const struct insert *ins, const struct store_result *res)
{
	jv last = jv_object();

	last =
	    jv_object_set(last, jv_string("table"), jv_string(ins->cfg.table));
	last = jv_object_set(last, jv_string("rowid"),
	    res->has_rowid ? json_integer(res->rowid) : jv_null());
	last =
	    jv_object_set(last, jv_string("changes"), jv_number(res->changes));
	if (res->duplicate)
		last = jv_object_set(last, jv_string("duplicate"), jv_true());
	return last;
}

/*
 * Returns the $trigger.id of ENV (borrowed) that --dedupe records, or
 * null: without --dedupe, or when the id is missing, empty or not a
 * string.  json.c carries a big integer as a marked string, which is
 * a number and not an id.
 */
static jv
dedupe_id(const struct insert *ins, jv env)
{
	jv trigger, id;

	if (!ins->dedupe)
		return jv_null();
	trigger = jv_object_get(jv_copy(env), jv_string("$trigger"));
	if (jv_get_kind(trigger) != JV_KIND_OBJECT) {
		jv_free(trigger);
		return jv_null();
	}
	id = jv_object_get(trigger, jv_string("id"));
	if (jv_get_kind(id) != JV_KIND_STRING || json_is_bignum(id) ||
	    jv_string_length_bytes(jv_copy(id)) == 0) {
		jv_free(id);
		return jv_null();
	}
	return id;
}

static void
log_result(const struct insert *ins, jv env, const struct store_result *res)
{
	char id[128];

	envelope_id(env, id, sizeof(id));
	if (res->duplicate)
		msg_info("%s: duplicate, not inserted", id);
	else
		msg_info("%s: %s: rowid %lld, changes %d", id, ins->cfg.table,
		    res->rowid, res->changes);
}

static int
insert_process(void *ctx, jv *env, struct outcome *out)
{
	struct insert *ins = ctx;
	struct store_result res;
	jv row, last, id;
	int code;

	row = ins->from != NULL
		  ? path_get(ins->from, *env)
		  : jv_object_get(jv_copy(*env), jv_string("$last"));
	if (jv_get_kind(row) != JV_KIND_OBJECT) {
		snprintf(out->reason, sizeof(out->reason),
		    "%s: %s, not a JSON object", ins->from_name,
		    jv_is_valid(row) ? jv_kind_name(jv_get_kind(row))
				     : "missing");
		jv_free(row);
		out->exit = EX_DATAERR;
		return EX_DATAERR;
	}
	id = dedupe_id(ins, *env);
	code = store_insert(ins->store, row, id, &res, out);
	jv_free(id);
	jv_free(row);
	if (code != 0)
		return code;
	last = result_of(ins, &res);
	if (ins->key != NULL)
		*env = jv_object_set(*env, jv_string(ins->key), jv_copy(last));
	*env = jv_object_set(*env, jv_string("$last"), last);
	if (msg_verbose)
		log_result(ins, *env, &res);
	return 0;
}

static int
insert_commit(void *ctx, struct outcome *out)
{
	struct insert *ins = ctx;

	return store_commit(ins->store, out);
}

static void
insert_defer(void *ctx)
{
	struct insert *ins = ctx;

	store_defer_sync(ins->store);
}

static int
insert_sync_fds(void *ctx, int *fds, int max, struct outcome *out)
{
	struct insert *ins = ctx;
	int fd;

	if (store_sync_fd(ins->store, &fd, out) != 0)
		return -1;
	if (fd == -1)
		return 0;
	if (max < 1) {
		close(fd);
		snprintf(out->reason, sizeof(out->reason),
		    "more than the descriptors to sync that the flow allows");
		out->exit = EX_SOFTWARE;
		return -1;
	}
	fds[0] = fd;
	return 1;
}

static void
insert_free(void *ctx)
{
	struct insert *ins = ctx;
	size_t i;

	store_free(ins->store);
	path_free(ins->from);
	for (i = 0; i < ins->cfg.nkeys; i++)
		free(ins->cfg.keys[i]);
	free(ins->cfg.keys);
	free(ins);
}

/* Parses a count of MIN or more; returns -1 when ARG is not one. */
static long
parse_count(const char *arg, long min)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || n < min || n > INT_MAX)
		return -1;
	return n;
}

/* Splits "a,b" into the key columns. */
static int
parse_keys(struct insert *ins, const char *arg)
{
	const char *p = arg, *comma;
	char **grown;

	do {
		comma = strchr(p, ',');
		if (comma == p || *p == '\0')
			return -1;
		grown = realloc(
		    ins->cfg.keys, (ins->cfg.nkeys + 1) * sizeof(*grown));
		if (grown == NULL)
			return -1;
		ins->cfg.keys = grown;
		grown[ins->cfg.nkeys] =
		    comma != NULL ? strndup(p, comma - p) : strdup(p);
		if (grown[ins->cfg.nkeys] == NULL)
			return -1;
		ins->cfg.nkeys++;
		p = comma + 1;
	} while (comma != NULL);
	return 0;
}

static int
parse_conflict(struct insert *ins, const char *arg)
{
	static const char *const names[] = {
	    "fail", "ignore", "replace", "update"};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(arg, names[i]) == 0) {
			ins->cfg.conflict = (enum store_conflict)i;
			return 0;
		}
	return -1;
}

/* Handles one option other than -h and --version. */
static int
parse_option(struct insert *ins, int c, const char *arg)
{
	long n = 0;

	switch (c) {
	case 'd':
		ins->cfg.db = arg;
		break;
	case 't':
		ins->cfg.table = arg;
		break;
	case 'c':
		ins->cfg.create = 1;
		break;
	case 'k':
		if (ins->cfg.nkeys > 0 || parse_keys(ins, arg) == -1)
			return msg_usage_error(
			    usage, "--key: invalid column list \"%s\"", arg);
		break;
	case 'o':
		if (parse_conflict(ins, arg) == -1)
			return msg_usage_error(usage,
			    "--on-conflict: invalid value \"%s\", "
			    "expected fail, ignore, replace or update",
			    arg);
		break;
	case 'f':
		ins->from_name = arg;
		break;
	case 'a':
		if (arg[0] == '\0' || arg[0] == '$')
			return msg_usage_error(usage,
			    "--as: invalid key \"%s\": empty or "
			    "starting with '$'",
			    arg);
		ins->key = arg;
		break;
	case 'b':
		n = parse_count(arg, 1);
		ins->batch_max = n;
		break;
	case 'B':
		n = parse_count(arg, 1);
		ins->batch_ms = n;
		break;
	case 'T':
		n = parse_count(arg, 0);
		ins->cfg.busy_ms = n;
		break;
	case 'D':
	case 'N':
		ins->dedupe = c == 'D';
		break;
	case 'v':
		msg_verbose++;
		break;
	default:
		usage(stderr);
		return EX_USAGE;
	}
	if (n == -1)
		return msg_usage_error(usage, "%s: invalid %s \"%s\"",
		    c == 'b'   ? "--batch"
		    : c == 'B' ? "--batch-ms"
			       : "--busy-timeout",
		    c == 'b' ? "count" : "time in ms", arg);
	return STAGE_READY;
}

/* Checks what the options need of each other. */
static int
check_options(struct insert *ins, int argc)
{
	if (optind != argc)
		return msg_usage_error(usage, "too many arguments");
	if (ins->cfg.db == NULL || ins->cfg.db[0] == '\0')
		return msg_usage_error(usage, "missing --db FILE");
	if (ins->cfg.table == NULL || ins->cfg.table[0] == '\0')
		return msg_usage_error(usage, "missing --table NAME");
	if (strncmp(ins->cfg.db, "postgres://", 11) == 0 ||
	    strncmp(ins->cfg.db, "postgresql://", 13) == 0)
		return msg_usage_error(usage,
		    "--db: PostgreSQL is not supported yet, only "
		    "sqlite3 files");
	if (ins->dedupe && strcasecmp(ins->cfg.table, STORE_SEEN_TABLE) == 0)
		return msg_usage_error(usage,
		    "--table: %s holds the ids that --dedupe "
		    "records: choose another table, or pass "
		    "--no-dedupe",
		    STORE_SEEN_TABLE);
	if (ins->cfg.conflict == STORE_UPDATE && ins->cfg.nkeys == 0)
		return msg_usage_error(
		    usage, "--on-conflict update needs --key");
	if (ins->from_name == NULL) {
		ins->from_name = "$last";
		return STAGE_READY;
	}
	ins->from = path_compile(ins->from_name);
	if (ins->from == NULL)
		return msg_usage_error(usage,
		    "--from: invalid key or plain path \"%s\"", ins->from_name);
	return STAGE_READY;
}

static int
parse_options(struct insert *ins, int argc, char *argv[])
{
	static const struct option longopts[] = {
	    {"db", required_argument, NULL, 'd'},
	    {"table", required_argument, NULL, 't'},
	    {"create", no_argument, NULL, 'c'},
	    {"key", required_argument, NULL, 'k'},
	    {"on-conflict", required_argument, NULL, 'o'},
	    {"from", required_argument, NULL, 'f'},
	    {"as", required_argument, NULL, 'a'},
	    {"batch", required_argument, NULL, 'b'},
	    {"batch-ms", required_argument, NULL, 'B'},
	    {"busy-timeout", required_argument, NULL, 'T'},
	    {"dedupe", no_argument, NULL, 'D'},
	    {"no-dedupe", no_argument, NULL, 'N'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'}, {NULL, 0, NULL, 0}};
	int c, status;

	optind = 0;
	while ((c = getopt_long(
		    argc, argv, "a:b:cd:f:hk:o:t:v", longopts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return 0;
		}
		if (c == 'V') {
			msg_version();
			return 0;
		}
		status = parse_option(ins, c, optarg);
		if (status != STAGE_READY)
			return status;
	}
	return check_options(ins, argc);
}

int
insert_stage(struct stage *st, int argc, char *argv[])
{
	struct insert *ins;
	int status;

	ins = calloc(1, sizeof(*ins));
	if (ins == NULL) {
		msg_error("out of memory");
		return EX_OSERR;
	}
	ins->cfg.busy_ms = BUSY_MS;
	ins->dedupe = 1;
	status = parse_options(ins, argc, argv);
	if (status == STAGE_READY) {
		ins->store = store_new(&ins->cfg);
		if (ins->store == NULL) {
			msg_error("out of memory");
			status = EX_OSERR;
		}
	}
	if (status != STAGE_READY) {
		insert_free(ins);
		return status;
	}
	st->name = "whook-insert";
	st->process = insert_process;
	st->commit = insert_commit;
	/* The row comes from $last or --from, and dedupe reads $trigger.id. */
	st->reads = reads_new();
	if (st->reads != NULL &&
	    ((ins->from != NULL && reads_add(st->reads, ins->from) == -1) ||
		reads_add_text(st->reads, "$trigger.id") == -1)) {
		reads_free(st->reads);
		st->reads = NULL;
	}
	st->db = ins->cfg.db;
	st->defer = insert_defer;
	st->sync_fds = insert_sync_fds;
	st->ctx = ins;
	st->batch_max = ins->batch_max;
	st->batch_ms = ins->batch_ms;
	st->free = insert_free;
	return STAGE_READY;
}
