/*
 * whook-map's stage: renders one template against each envelope and
 * stores the result as $last and, with --as KEY, as KEY too.  The
 * template is compiled before the first envelope, so a bad one is a usage
 * error at start.  A placeholder that jq fails on, or under --strict one
 * with no value, rejects the envelope with status 422.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "whook.h"

/* A template file is a command-line argument kept in a file, so a limit
 * far above any real one only guards against a wrong file. */
#define TEMPLATE_FILE_MAX (16UL * 1024 * 1024)

struct map {
	struct template *template;
	const char *key; /* --as KEY, or NULL */
	int strict;
};

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: whook-map [-sv] [-a KEY] TEMPLATE | @FILE\n"
	    "  -a, --as KEY    also store the result as the envelope's KEY\n"
	    "  -s, --strict    reject an envelope when a placeholder has "
	    "no value\n"
	    "  -v, --verbose   log a line for each envelope\n"
	    "  -h, --help      print this help and exit\n"
	    "      --version   print the version and exit\n");
}

static int
map_process(void *ctx, jv *env, struct outcome *out)
{
	struct map *m = ctx;
	char id[128];
	jv result;

	if (template_render(m->template, *env, m->strict, &result, out->reason,
		sizeof(out->reason)) == -1) {
		out->exit = EX_DATAERR;
		out->status = 422;
		return out->exit;
	}
	if (m->key != NULL)
		*env = jv_object_set(*env, jv_string(m->key), jv_copy(result));
	*env = jv_object_set(*env, jv_string("$last"), result);
	if (msg_verbose) {
		envelope_id(*env, id, sizeof(id));
		msg_info("%s: rendered into $last%s%s", id,
		    m->key != NULL ? " and " : "",
		    m->key != NULL ? m->key : "");
	}
	return 0;
}

static void
map_free(void *ctx)
{
	struct map *m = ctx;

	template_free(m->template);
	free(m);
}

/* Reads all of PATH into *text (malloc'd, NUL-terminated). */
static int
read_file(const char *path, char **text, size_t *len)
{
	FILE *fp;
	size_t n;

	fp = fopen(path, "r");
	if (fp == NULL)
		return -1;
	*text = malloc(TEMPLATE_FILE_MAX + 1);
	if (*text == NULL) {
		fclose(fp);
		errno = ENOMEM;
		return -1;
	}
	n = fread(*text, 1, TEMPLATE_FILE_MAX + 1, fp);
	if (ferror(fp) || n > TEMPLATE_FILE_MAX) {
		errno = ferror(fp) ? EIO : EFBIG;
		fclose(fp);
		free(*text);
		return -1;
	}
	fclose(fp);
	(*text)[n] = '\0';
	*len = n;
	return 0;
}

/* Compiles the TEMPLATE argument, inline JSON or @FILE, into m. */
static int
load_template(struct map *m, const char *arg)
{
	char why[1024], *text = NULL;
	size_t len;

	if (arg[0] == '@') {
		if (read_file(arg + 1, &text, &len) == -1) {
			msg_error("%s: %s", arg + 1, strerror(errno));
			return EX_NOINPUT;
		}
		arg = text;
	} else {
		len = strlen(arg);
	}
	m->template = template_compile(arg, len, why, sizeof(why));
	free(text);
	if (m->template == NULL) {
		msg_error("template: %s", why);
		return EX_USAGE;
	}
	if (msg_verbose)
		msg_info("template: jq placeholders: %zu, in one program",
		    template_jq_count(m->template));
	return STAGE_READY;
}

static int
misuse(const char *reason)
{
	if (reason != NULL)
		msg_error("%s", reason);
	usage(stderr);
	return EX_USAGE;
}

/* Parses the options into m; returns STAGE_READY or the exit status. */
static int
parse_options(struct map *m, int argc, char *argv[])
{
	static const struct option longopts[] = {
	    {"as", required_argument, NULL, 'a'},
	    {"strict", no_argument, NULL, 's'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'}, {NULL, 0, NULL, 0}};
	char reason[256];
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "a:hsv", longopts, NULL)) != -1) {
		switch (c) {
		case 'a':
			if (optarg[0] == '\0' || optarg[0] == '$') {
				snprintf(reason, sizeof(reason),
				    "--as: invalid "
				    "key \"%.64s\": empty or starting with '$'",
				    optarg);
				return misuse(reason);
			}
			m->key = optarg;
			break;
		case 's':
			m->strict = 1;
			break;
		case 'v':
			msg_verbose++;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			msg_version();
			return 0;
		default:
			return misuse(NULL);
		}
	}
	if (argc - optind != 1)
		return misuse(argc - optind == 0 ? "missing template"
						 : "too many arguments");
	return STAGE_READY;
}

int
map_stage(struct stage *st, int argc, char *argv[])
{
	struct map *m;
	int status;

	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		msg_error("out of memory");
		return EX_OSERR;
	}
	status = parse_options(m, argc, argv);
	if (status == STAGE_READY)
		status = load_template(m, argv[optind]);
	if (status != STAGE_READY) {
		map_free(m);
		return status;
	}
	st->name = "whook-map";
	st->process = map_process;
	st->ctx = m;
	st->reads = template_reads(m->template);
	st->free = map_free;
	return STAGE_READY;
}
