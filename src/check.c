/*
 * The whook-check stage: passes an envelope when every configured check
 * holds, in the order header, signature, rule, jq, so that the cheapest
 * and most decisive check rejects first.  A rejection sets the outcome's
 * reason and HTTP status (403, or 401 for a signature, or --status), and
 * the reason never contains a secret, a header value or a signature.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "whook.h"

#define TEXT_MAX (1024 * 1024) /* a rule or jq program read from @FILE */

struct header_check {
	char *name; /* lowercased, as envelope header names are */
	struct secret secret;
	unsigned char digest[SECRET_DIGEST]; /* of the secret */
};

struct check {
	struct header_check *headers;
	size_t nheaders;
	struct sigscheme *scheme;
	struct secret *secrets;
	size_t nsecrets;
	long long tolerance; /* seconds, 0 turns the clock check off */
	long long now;	     /* when have_now, else the system clock */
	int have_now;
	struct rule **rules;
	size_t nrules;
	char *jq_text;
	struct jqprog *jq;
	int status; /* HTTP status of a rejection, 0 for the default */
	FILE *rejected;
};

enum {
	OPT_HEADER = 256,
	OPT_SIGNATURE,
	OPT_SECRET,
	OPT_TOLERANCE,
	OPT_NOW,
	OPT_RULE,
	OPT_JQ,
	OPT_STATUS,
	OPT_REJECTED,
	OPT_VERSION
};

static const struct option longopts[] = {
    {"header", required_argument, NULL, OPT_HEADER},
    {"signature", required_argument, NULL, OPT_SIGNATURE},
    {"secret", required_argument, NULL, OPT_SECRET},
    {"tolerance", required_argument, NULL, OPT_TOLERANCE},
    {"now", required_argument, NULL, OPT_NOW},
    {"rule", required_argument, NULL, OPT_RULE},
    {"jq", required_argument, NULL, OPT_JQ},
    {"status", required_argument, NULL, OPT_STATUS},
    {"rejected", required_argument, NULL, OPT_REJECTED},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: whook-check [-hv] [--header NAME=@FILE|env:VAR]\n"
	    "           [--signature SCHEME --secret @FILE|env:VAR\n"
	    "           [--tolerance SECONDS] [--now SECONDS]]\n"
	    "           [--rule RULE|@FILE] [--jq FILTER|@FILE] [--status N]\n"
	    "           [--rejected FILE] [--version]\n");
}

static int
parse_number(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (s[0] == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Reads the file PATH, at most TEXT_MAX bytes, as a NUL-terminated
 * string.  Returns NULL with *why set on failure. */
static char *
read_text(const char *path, size_t *len, char *why, size_t whylen)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (f == NULL) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	buf = malloc(TEXT_MAX + 1);
	n = buf == NULL ? 0 : fread(buf, 1, TEXT_MAX + 1, f);
	if (buf == NULL || ferror(f) || n > TEXT_MAX) {
		if (buf == NULL || ferror(f))
			snprintf(why, whylen, "%s: %s", path, strerror(errno));
		else
			snprintf(why, whylen, "%s: larger than %d bytes", path,
			    TEXT_MAX);
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* Returns a copy of ARG, or of the file it names when it is "@FILE". */
static char *
option_text(const char *arg, size_t *len, char *why, size_t whylen)
{
	char *text;

	if (arg[0] == '@')
		return read_text(arg + 1, len, why, whylen);
	text = strdup(arg);
	if (text == NULL)
		snprintf(why, whylen, "%s", strerror(errno));
	else
		*len = strlen(text);
	return text;
}

/* Adds "--header NAME=@FILE|env:VAR".  Only NAME is ever printed, since
 * a mistyped argument may hold the secret itself. */
static int
add_header(struct check *c, const char *arg)
{
	const char *eq = strchr(arg, '=');
	struct header_check *grown, *h;
	char why[512];
	size_t i;

	if (eq == NULL || eq == arg)
		return msg_usage_error(usage,
		    "--header: expected NAME=@FILE or "
		    "NAME=env:VAR");
	grown = realloc(c->headers, (c->nheaders + 1) * sizeof(*grown));
	if (grown == NULL)
		return msg_usage_error(usage, "--header: %s", strerror(errno));
	c->headers = grown;
	h = &c->headers[c->nheaders];
	h->name = strndup(arg, eq - arg);
	if (h->name == NULL)
		return msg_usage_error(usage, "--header: %s", strerror(errno));
	for (i = 0; h->name[i] != '\0'; i++)
		if (h->name[i] >= 'A' && h->name[i] <= 'Z')
			h->name[i] += 'a' - 'A';
	if (secret_load(eq + 1, &h->secret.data, &h->secret.len, why,
		sizeof(why)) == -1) {
		/* A secret that cannot be read needs no usage text. */
		msg_error("--header %s: %s", h->name, why);
		free(h->name);
		return EX_USAGE;
	}
	if (secret_digest(h->secret.data, h->secret.len, h->digest) == -1) {
		msg_error("--header %s: SHA-256 failed", h->name);
		free(h->name);
		secret_free(h->secret.data, h->secret.len);
		return EX_SOFTWARE;
	}
	c->nheaders++;
	return STAGE_READY;
}

static int
add_secret(struct check *c, const char *arg)
{
	struct secret *grown;
	char why[512];

	grown = realloc(c->secrets, (c->nsecrets + 1) * sizeof(*grown));
	if (grown == NULL)
		return msg_usage_error(usage, "--secret: %s", strerror(errno));
	c->secrets = grown;
	if (secret_load(arg, &c->secrets[c->nsecrets].data,
		&c->secrets[c->nsecrets].len, why, sizeof(why)) == -1) {
		msg_error("--secret: %s", why);
		return EX_USAGE;
	}
	c->nsecrets++;
	return STAGE_READY;
}

static int
add_rule(struct check *c, const char *arg)
{
	struct rule **grown, *r;
	char why[512], *text;
	size_t len;
	jv value, msg;

	text = option_text(arg, &len, why, sizeof(why));
	if (text == NULL)
		return msg_usage_error(usage, "rule: %s", why);
	value = json_parse(text, len);
	free(text);
	if (!jv_is_valid(value)) {
		msg = jv_invalid_get_msg(value);
		snprintf(why, sizeof(why), "invalid JSON: %s",
		    jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg)
						       : "parse error");
		jv_free(msg);
		return msg_usage_error(usage, "rule: %s", why);
	}
	r = rule_compile(value, why, sizeof(why));
	if (r == NULL)
		return msg_usage_error(usage, "rule: %s", why);
	grown = realloc(c->rules, (c->nrules + 1) * sizeof(*grown));
	if (grown == NULL) {
		rule_free(r);
		return msg_usage_error(usage, "rule: %s", strerror(errno));
	}
	c->rules = grown;
	c->rules[c->nrules++] = r;
	return STAGE_READY;
}

static int
set_jq(struct check *c, const char *arg)
{
	char why[512];
	size_t len;

	if (c->jq_text != NULL)
		return msg_usage_error(usage,
		    "--jq given twice: join the filters with "
		    "\"and\"");
	c->jq_text = option_text(arg, &len, why, sizeof(why));
	if (c->jq_text == NULL)
		return msg_usage_error(usage, "--jq: %s", why);
	return STAGE_READY;
}

static int
set_signature(struct check *c, const char *arg)
{
	char why[512];

	if (c->scheme != NULL)
		return msg_usage_error(usage, "--signature given twice");
	c->scheme = signature_scheme(arg, why, sizeof(why));
	if (c->scheme == NULL)
		return msg_usage_error(usage, "--signature %s: %s", arg, why);
	return STAGE_READY;
}

static int
set_rejected(struct check *c, const char *path)
{
	if (c->rejected != NULL)
		fclose(c->rejected);
	c->rejected = fopen(path, "a");
	if (c->rejected == NULL) {
		msg_error("--rejected %s: %s", path, strerror(errno));
		return EX_CANTCREAT;
	}
	return STAGE_READY;
}

/* Handles the option OPT with its argument ARG.  Returns STAGE_READY or
 * the status to exit with. */
static int
parse_option(struct check *c, int opt, const char *arg)
{
	long long n;

	switch (opt) {
	case OPT_HEADER:
		return add_header(c, arg);
	case OPT_SIGNATURE:
		return set_signature(c, arg);
	case OPT_SECRET:
		return add_secret(c, arg);
	case OPT_TOLERANCE:
		if (parse_number(arg, 0, 100LL * 365 * 86400, &n) == -1)
			return msg_usage_error(usage,
			    "--tolerance %s: expected seconds, "
			    "0 or more",
			    arg);
		c->tolerance = n;
		return STAGE_READY;
	case OPT_NOW:
		if (parse_number(arg, 0, 1LL << 40, &c->now) == -1)
			return msg_usage_error(
			    usage, "--now %s: expected Unix seconds", arg);
		c->have_now = 1;
		return STAGE_READY;
	case OPT_RULE:
		return add_rule(c, arg);
	case OPT_JQ:
		return set_jq(c, arg);
	case OPT_STATUS:
		if (parse_number(arg, 400, 599, &n) == -1)
			return msg_usage_error(usage,
			    "--status %s: expected an HTTP "
			    "status from 400 to 599",
			    arg);
		c->status = (int)n;
		return STAGE_READY;
	case OPT_REJECTED:
		return set_rejected(c, arg);
	}
	return msg_usage_error(usage, "unknown option");
}

static int
parse_options(struct check *c, int argc, char *argv[])
{
	int opt, status;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":hv", longopts, NULL)) != -1) {
		switch (opt) {
		case 'h':
			usage(stdout);
			return 0;
		case 'v':
			msg_verbose = 1;
			continue;
		case OPT_VERSION:
			msg_version();
			return 0;
		case ':':
			return msg_usage_error(
			    usage, "%s: missing argument", argv[optind - 1]);
		case '?':
			return msg_usage_error(
			    usage, "%s: unknown option", argv[optind - 1]);
		}
		status = parse_option(c, opt, optarg);
		if (status != STAGE_READY)
			return status;
	}
	if (optind < argc)
		return msg_usage_error(
		    usage, "%s: unexpected argument", argv[optind]);
	return STAGE_READY;
}

/* Checks what only the whole command line shows, then compiles jq. */
static int
check_finish(struct check *c)
{
	const char *now = getenv("WHOOK_NOW");
	char why[512];

	if (c->nheaders == 0 && c->scheme == NULL && c->nrules == 0 &&
	    c->jq_text == NULL)
		return msg_usage_error(usage, "no check given: use --header, "
					      "--signature, --rule or --jq");
	if (c->scheme != NULL && c->nsecrets == 0)
		return msg_usage_error(usage, "--signature needs --secret");
	if (c->scheme == NULL && c->nsecrets > 0)
		return msg_usage_error(usage, "--secret needs --signature");
	if (!c->have_now && now != NULL && now[0] != '\0') {
		if (parse_number(now, 0, 1LL << 40, &c->now) == -1)
			return msg_usage_error(usage,
			    "WHOOK_NOW %s: expected Unix "
			    "seconds",
			    now);
		c->have_now = 1;
	}
	if (c->jq_text != NULL) {
		c->jq = jqprog_compile(c->jq_text, why, sizeof(why));
		if (c->jq == NULL)
			return msg_usage_error(usage, "--jq: %s", why);
	}
	return STAGE_READY;
}

static int
reject(struct outcome *out, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
	va_end(ap);
	out->status = status;
	return 1;
}

/* Compares each --header in constant time and never prints the value. */
static int
check_headers(const struct check *c, jv trigger, struct outcome *out)
{
	jv headers, value;
	size_t i;
	int equal;

	if (c->nheaders == 0)
		return 0;
	headers = jv_get_kind(trigger) == JV_KIND_OBJECT
		      ? jv_object_get(jv_copy(trigger), jv_string("headers"))
		      : jv_invalid();
	for (i = 0; i < c->nheaders; i++) {
		value = jv_get_kind(headers) == JV_KIND_OBJECT
			    ? jv_object_get(jv_copy(headers),
				  jv_string(c->headers[i].name))
			    : jv_invalid();
		if (jv_get_kind(value) != JV_KIND_STRING) {
			jv_free(value);
			jv_free(headers);
			return reject(
			    out, 403, "header %s: missing", c->headers[i].name);
		}
		equal = secret_matches(jv_string_value(value),
		    (size_t)jv_string_length_bytes(jv_copy(value)),
		    c->headers[i].digest);
		jv_free(value);
		if (!equal) {
			jv_free(headers);
			return reject(out, 403, "header %s: mismatch",
			    c->headers[i].name);
		}
	}
	jv_free(headers);
	return 0;
}

static int
check_signature(const struct check *c, jv trigger, struct outcome *out)
{
	char reason[400];
	long long now = c->have_now ? c->now : (long long)time(NULL);

	if (c->scheme == NULL)
		return 0;
	if (jv_get_kind(trigger) != JV_KIND_OBJECT)
		return reject(out, 401,
		    "signature: the envelope has no "
		    "$trigger");
	reason[0] = '\0';
	if (signature_verify(c->scheme, trigger, c->secrets, c->nsecrets, now,
		c->tolerance, reason, sizeof(reason)) == 0)
		return 0;
	return reject(
	    out, 401, "signature: %s", reason[0] != '\0' ? reason : "invalid");
}

static int
check_rules(const struct check *c, jv env, struct outcome *out)
{
	char reason[400];
	size_t i;

	for (i = 0; i < c->nrules; i++)
		if (!rule_match(c->rules[i], env, reason, sizeof(reason)))
			return reject(out, 403, "rule: %s", reason);
	return 0;
}

/* Passes when the filter's first output is neither false nor null.  A
 * runtime error rejects this envelope alone, with jq's message. */
static int
check_jq(const struct check *c, jv env, struct outcome *out)
{
	char why[400];
	jv result;
	jv_kind kind;

	if (c->jq == NULL)
		return 0;
	switch (jqprog_first(c->jq, env, &result, why, sizeof(why))) {
	case 0:
		kind = jv_get_kind(result);
		jv_free(result);
		if (kind == JV_KIND_FALSE || kind == JV_KIND_NULL)
			return reject(out, 403, "jq: the filter returned %s",
			    kind == JV_KIND_FALSE ? "false" : "null");
		return 0;
	case 1:
		return reject(out, 403, "jq: no output");
	default:
		return reject(out, 403, "jq: %s", why);
	}
}

static int
check_process(void *ctx, jv *env, struct outcome *out)
{
	const struct check *c = ctx;
	char id[128];
	jv trigger;
	int r;

	trigger = jv_get_kind(*env) == JV_KIND_OBJECT
		      ? jv_object_get(jv_copy(*env), jv_string("$trigger"))
		      : jv_invalid();
	r = check_headers(c, trigger, out);
	if (r == 0)
		r = check_signature(c, trigger, out);
	if (r == 0)
		r = check_rules(c, *env, out);
	if (r == 0)
		r = check_jq(c, *env, out);
	jv_free(trigger);
	if (r != 0) {
		if (c->status != 0)
			out->status = c->status;
		out->exit = 1;
		return 1;
	}
	if (msg_verbose) {
		envelope_id(*env, id, sizeof(id));
		msg_info("%s: passed", id);
	}
	out->exit = 0;
	return 0;
}

static void
check_free(void *ctx)
{
	struct check *c = ctx;
	size_t i;

	for (i = 0; i < c->nheaders; i++) {
		free(c->headers[i].name);
		secret_free(
		    c->headers[i].secret.data, c->headers[i].secret.len);
	}
	free(c->headers);
	for (i = 0; i < c->nsecrets; i++)
		secret_free(c->secrets[i].data, c->secrets[i].len);
	free(c->secrets);
	if (c->scheme != NULL)
		signature_scheme_free(c->scheme);
	for (i = 0; i < c->nrules; i++)
		rule_free(c->rules[i]);
	free(c->rules);
	free(c->jq_text);
	jqprog_free(c->jq);
	if (c->rejected != NULL)
		fclose(c->rejected);
	free(c);
}

int
check_stage(struct stage *st, int argc, char *argv[])
{
	struct check *c = calloc(1, sizeof(*c));
	int status;

	if (c == NULL) {
		msg_error("%s", strerror(errno));
		return EX_OSERR;
	}
	c->tolerance = 300;
	status = parse_options(c, argc, argv);
	if (status == STAGE_READY)
		status = check_finish(c);
	if (status != STAGE_READY) {
		check_free(c);
		return status;
	}
	st->name = "whook-check";
	st->process = check_process;
	st->ctx = c;
	st->rejected = c->rejected;
	/* The header check reads only $trigger.headers.  The other checks
	 * and the rejected file may read anything. */
	if (c->scheme == NULL && c->nrules == 0 && c->jq == NULL &&
	    c->rejected == NULL) {
		st->reads = reads_new();
		if (st->reads != NULL &&
		    reads_add_text(st->reads, "$trigger.headers") == -1) {
			reads_free(st->reads);
			st->reads = NULL;
		}
	}
	st->free = check_free;
	return STAGE_READY;
}
