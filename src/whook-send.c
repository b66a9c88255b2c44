/*
 * whook-send: send one HTTP request, built from HTTPie-style items or
 * from exact body bytes, and optionally signed the way a webhook sender
 * signs, so that a receiver and its checks can be tested.  Writes the
 * response body to standard output as received and the status line to
 * standard error, and exits with a status derived from the response
 * (see send-http.c).  A secret comes only from a file or the
 * environment.  With --replay it resends logged envelopes instead (see
 * replay.c).
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "whook.h"

#define METHOD_MAX 32

struct options {
	struct send_options send;
	struct items items;
	const char *data;   /* -d: DATA, @FILE or @- */
	const char *method; /* -X */
	const char *sign;   /* --sign SCHEME */
	const char *secret; /* --secret @FILE|env:NAME */
	const char *webhook_id;
	long long timestamp; /* --timestamp, or -1 for the clock */
	char *url;	     /* with the query items appended */
	char *shown_url;     /* without a password */
	char *body;
	size_t len;
	int replay;	 /* --replay */
	int replay_only; /* a replay option was given */
	struct replay_options ro;
};

enum {
	OPT_TIMEOUT = 256,
	OPT_CONNECT_TIMEOUT,
	OPT_SIGN,
	OPT_SECRET,
	OPT_TIMESTAMP,
	OPT_WEBHOOK_ID,
	OPT_VERSION,
	OPT_REPLAY,
	OPT_PATH,
	OPT_SINCE,
	OPT_UNTIL,
	OPT_RETRIES,
	OPT_BACKOFF,
	OPT_CURSOR,
	OPT_FAILED
};

static const struct option longopts[] = {
    {"data", required_argument, NULL, 'd'},
    {"request", required_argument, NULL, 'X'},
    {"header", required_argument, NULL, 'H'},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"insecure", no_argument, NULL, 'k'},
    {"verbose", no_argument, NULL, 'v'},
    {"quiet", no_argument, NULL, 'q'},
    {"sign", required_argument, NULL, OPT_SIGN},
    {"secret", required_argument, NULL, OPT_SECRET},
    {"timestamp", required_argument, NULL, OPT_TIMESTAMP},
    {"webhook-id", required_argument, NULL, OPT_WEBHOOK_ID},
    {"replay", no_argument, NULL, OPT_REPLAY},
    {"path", no_argument, NULL, OPT_PATH},
    {"since", required_argument, NULL, OPT_SINCE},
    {"until", required_argument, NULL, OPT_UNTIL},
    {"retries", required_argument, NULL, OPT_RETRIES},
    {"backoff", required_argument, NULL, OPT_BACKOFF},
    {"parallel", required_argument, NULL, 'j'},
    {"cursor", required_argument, NULL, OPT_CURSOR},
    {"failed", required_argument, NULL, OPT_FAILED},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: whook-send [-kqv] [-d DATA | -d @FILE | -d @-] "
	    "[-H 'Name: value']\n"
	    "                  [-X METHOD] [--timeout SECONDS] "
	    "[--connect-timeout SECONDS]\n"
	    "                  [--sign SCHEME --secret @FILE|env:NAME "
	    "[--timestamp SECONDS]\n"
	    "                  [--webhook-id ID]] URL [ITEM ...]\n"
	    "       whook-send --replay [-kqv] [--path] [--since TIME] "
	    "[--until TIME]\n"
	    "                  [--retries N] [--backoff MS] [-j N] "
	    "[--cursor FILE]\n"
	    "                  [--failed FILE] [--timeout SECONDS] "
	    "[--connect-timeout SECONDS]\n"
	    "                  URL [FILE]\n"
	    "items: Header:Value  Header:@FILE  name==value  field=string\n"
	    "       field=@FILE  field:=json  field:=@FILE\n");
}

/* Parses SECONDS, a decimal number, into *ms. */
static int
parse_seconds(const char *arg, long *ms)
{
	char *end;
	double s;

	errno = 0;
	s = strtod(arg, &end);
	if (errno != 0 || end == arg || *end != '\0' || !(s >= 0) ||
	    s > 86400.0 * 365)
		return -1;
	*ms = (long)(s * 1000 + 0.5);
	if (*ms == 0 && s > 0)
		*ms = 1;
	return 0;
}

/* Parses a decimal integer from MIN to MAX into *n. */
static int
parse_count(const char *arg, long min, long max, long *n)
{
	char *end;

	errno = 0;
	*n = strtol(arg, &end, 10);
	return errno != 0 || end == arg || *end != '\0' || *n < min || *n > max
		   ? -1
		   : 0;
}

/* Handles one option of --replay. */
static int
set_replay_option(struct options *o, int c, const char *arg)
{
	long n;

	o->replay_only = 1;
	switch (c) {
	case OPT_PATH:
		o->ro.use_path = 1;
		return 0;
	case OPT_SINCE:
	case OPT_UNTIL:
		if (replay_parse_time(arg,
			c == OPT_SINCE ? &o->ro.since_ms : &o->ro.until_ms) ==
		    -1)
			return msg_usage_error(usage,
			    "--%s %s: not an RFC 3339 time, SECONDS "
			    "or @SECONDS",
			    c == OPT_SINCE ? "since" : "until", arg);
		return 0;
	case OPT_RETRIES:
		if (parse_count(arg, 0, 100, &n) == -1)
			return msg_usage_error(usage,
			    "--retries %s: not a count from 0 to 100", arg);
		o->ro.retries = (int)n;
		return 0;
	case OPT_BACKOFF:
		if (parse_count(arg, 0, 60000, &o->ro.backoff_ms) == -1)
			return msg_usage_error(usage,
			    "--backoff %s: not a number of ms from 0 "
			    "to 60000",
			    arg);
		return 0;
	case 'j':
		if (parse_count(arg, 1, 64, &n) == -1)
			return msg_usage_error(
			    usage, "-j %s: not a count from 1 to 64", arg);
		o->ro.parallel = (int)n;
		return 0;
	case OPT_CURSOR:
		o->ro.cursor = arg;
		return 0;
	case OPT_FAILED:
		o->ro.failed = arg;
		return 0;
	}
	return EX_USAGE;
}

static int
parse_timestamp(const char *arg, long long *t)
{
	char *end;

	errno = 0;
	*t = strtoll(arg, &end, 10);
	return errno != 0 || end == arg || *end != '\0' || *t < 0 ? -1 : 0;
}

/* Handles one option other than -h and --version. */
static int
set_option(struct options *o, int c, const char *arg)
{
	char why[512];
	int status;

	switch (c) {
	case 'd':
		if (o->data != NULL)
			return msg_usage_error(
			    usage, "-d: given more than once");
		o->data = arg;
		return 0;
	case 'X':
		if (arg[0] == '\0' || strlen(arg) > METHOD_MAX ||
		    arg[strcspn(arg, " \t\r\n")] != '\0')
			return msg_usage_error(
			    usage, "-X %s: invalid method", arg);
		o->method = arg;
		return 0;
	case 'H':
		status =
		    items_add_header_line(&o->items, arg, why, sizeof(why));
		if (status == EX_USAGE)
			return msg_usage_error(usage, "-H: %s", why);
		if (status != 0)
			msg_error("-H: %s", why);
		return status;
	case OPT_TIMEOUT:
		if (parse_seconds(arg, &o->send.timeout_ms) == -1)
			return msg_usage_error(usage,
			    "--timeout %s: not a number of seconds", arg);
		return 0;
	case OPT_CONNECT_TIMEOUT:
		if (parse_seconds(arg, &o->send.connect_timeout_ms) == -1)
			return msg_usage_error(usage,
			    "--connect-timeout %s: not a number of "
			    "seconds",
			    arg);
		return 0;
	case OPT_TIMESTAMP:
		if (parse_timestamp(arg, &o->timestamp) == -1)
			return msg_usage_error(
			    usage, "--timestamp %s: not Unix seconds", arg);
		return 0;
	case OPT_SIGN:
		o->sign = arg;
		return 0;
	case OPT_SECRET:
		o->secret = arg;
		return 0;
	case OPT_WEBHOOK_ID:
		o->webhook_id = arg;
		return 0;
	}
	return set_replay_option(o, c, arg);
}

/* Rejects what --replay cannot combine with: a replay sends each
 * envelope's own body and headers, and never signs again because the
 * original headers carry the signatures. */
static int
check_replay(struct options *o, int nargs)
{
	if (o->sign != NULL || o->secret != NULL || o->timestamp != -1 ||
	    o->webhook_id != NULL)
		return msg_usage_error(usage,
		    "--replay: the logged headers carry the "
		    "signatures, --sign cannot be used");
	if (o->data != NULL || o->method != NULL || o->items.nheaders > 0)
		return msg_usage_error(
		    usage, "--replay: -d, -X and -H cannot be used");
	if (nargs > 2)
		return msg_usage_error(
		    usage, "--replay: one URL and at most one FILE");
	if (o->ro.since_ms != -1 && o->ro.until_ms != -1 &&
	    o->ro.since_ms >= o->ro.until_ms)
		return msg_usage_error(usage, "--since: not before --until");
	return STAGE_READY;
}

/* Parses argv into *o; returns STAGE_READY to go on, or the status to
 * exit with at once. */
static int
parse_options(struct options *o, int argc, char *argv[])
{
	int c, status;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":d:X:H:j:kvqh", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case OPT_VERSION:
			msg_version();
			return 0;
		case 'k':
			o->send.insecure = 1;
			break;
		case 'v':
			o->send.verbose = 1;
			break;
		case 'q':
			o->send.quiet = 1;
			break;
		case OPT_REPLAY:
			o->replay = 1;
			break;
		case ':':
			return msg_usage_error(
			    usage, "%s: missing argument", argv[optind - 1]);
		case '?':
			return msg_usage_error(
			    usage, "%s: unknown option", argv[optind - 1]);
		default:
			status = set_option(o, c, optarg);
			if (status != 0)
				return status;
		}
	}
	if (optind >= argc)
		return msg_usage_error(usage, "missing URL");
	if (o->replay)
		return check_replay(o, argc - optind);
	if (o->replay_only)
		return msg_usage_error(usage,
		    "--path, --since, --until, --retries, --backoff, "
		    "-j, --cursor and --failed need --replay");
	if ((o->sign == NULL) != (o->secret == NULL))
		return msg_usage_error(
		    usage, "--sign and --secret go together");
	if (o->sign == NULL && (o->timestamp != -1 || o->webhook_id != NULL))
		return msg_usage_error(
		    usage, "--timestamp and --webhook-id need --sign");
	return STAGE_READY;
}

/* Adds the items after the URL. */
static int
add_items(struct options *o, int argc, char *argv[])
{
	char why[1024];
	int i, status;

	for (i = 0; i < argc; i++) {
		status = items_add(&o->items, argv[i], why, sizeof(why));
		if (status == EX_USAGE)
			return msg_usage_error(usage, "%s", why);
		if (status != 0) {
			msg_error("%s", why);
			return status;
		}
	}
	return 0;
}

/* Sets o->url to URL with the query items appended, and o->shown_url
 * without a password; rejects a URL libcurl cannot parse or whose
 * scheme is not http or https. */
static int
build_url(struct options *o, const char *url)
{
	CURLU *u = curl_url();
	CURLUcode rc;
	char *scheme = NULL;

	rc = curl_url_set(u, CURLUPART_URL, url, 0);
	if (rc == CURLUE_OK && o->items.query != NULL)
		rc = curl_url_set(
		    u, CURLUPART_QUERY, o->items.query, CURLU_APPENDQUERY);
	if (rc == CURLUE_OK)
		rc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
	if (rc == CURLUE_OK)
		rc = curl_url_get(u, CURLUPART_URL, &o->url, 0);
	if (rc == CURLUE_OK)
		rc = curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
	if (rc == CURLUE_OK)
		rc = curl_url_get(u, CURLUPART_URL, &o->shown_url, 0);
	curl_url_cleanup(u);
	if (rc != CURLUE_OK) {
		msg_error("%s: invalid URL: %s", url, curl_url_strerror(rc));
		return EX_USAGE;
	}
	rc = strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0;
	curl_free(scheme);
	if (!rc) {
		msg_error(
		    "%s: invalid URL: the scheme is not http or https", url);
		return EX_USAGE;
	}
	return 0;
}

/* Sets the body: -d's bytes, or the fields as one JSON object. */
static int
build_body(struct options *o)
{
	char why[512];
	jv text;
	int status;

	if (o->data != NULL && jv_get_kind(o->items.fields) != JV_KIND_NULL)
		return msg_usage_error(
		    usage, "-d: cannot be mixed with field items");
	if (o->data != NULL && o->data[0] == '@') {
		status = items_read_file(
		    o->data + 1, &o->body, &o->len, why, sizeof(why));
		if (status != 0)
			msg_error("-d: %s", why);
		return status;
	}
	if (o->data != NULL)
		text = jv_string(o->data);
	else if (jv_get_kind(o->items.fields) == JV_KIND_OBJECT)
		text = json_dump(jv_copy(o->items.fields));
	else
		return 0;
	o->len = jv_string_length_bytes(jv_copy(text));
	o->body = malloc(o->len + 1);
	if (o->body != NULL)
		memcpy(o->body, jv_string_value(text), o->len + 1);
	jv_free(text);
	return o->body != NULL ? 0 : EX_OSERR;
}

/* Adds a default header unless an item or -H gave one of that name. */
static int
add_default(struct options *o, const char *name, const char *value)
{
	char why[256];

	if (items_header(&o->items, name) != NULL)
		return 0;
	if (items_set_header(&o->items, name, value, 0, why, sizeof(why)) == 0)
		return 0;
	msg_error("%s: %s", name, why);
	return EX_OSERR;
}

static int
add_defaults(struct options *o)
{
	int status = 0;

	if (o->body != NULL) {
		status = add_default(o, "Content-Type", "application/json");
		if (status == 0)
			status = add_default(o, "Accept", "application/json");
	} else {
		status = add_default(o, "Accept", "*/*");
	}
	if (status == 0)
		status =
		    add_default(o, "User-Agent", "whook-send/" WHOOK_VERSION);
	return status;
}

/* Adds the headers that SIGNED ("Name: value" strings) holds. */
static int
add_signed(struct options *o, char *signed_headers[5])
{
	char why[256], *colon;
	int i, status = 0;

	for (i = 0; i < 5 && signed_headers[i] != NULL; i++) {
		colon = strchr(signed_headers[i], ':');
		if (status == 0 && colon != NULL) {
			*colon = '\0';
			status = items_set_header(&o->items, signed_headers[i],
			    colon + 1, 0, why, sizeof(why));
			if (status != 0)
				msg_error("--sign: %s", why);
		}
		free(signed_headers[i]);
	}
	return status;
}

/* Signs the exact body bytes with --sign's scheme and --secret. */
static int
sign_body(struct options *o)
{
	struct sigscheme *scheme;
	struct secret secret = {NULL, 0};
	char why[512], *headers[5] = {NULL};
	long long now =
	    o->timestamp != -1 ? o->timestamp : (long long)time(NULL);
	int status = EX_USAGE;

	scheme = signature_scheme(o->sign, why, sizeof(why));
	if (scheme == NULL)
		return msg_usage_error(usage, "--sign: %s", why);
	if (secret_load(
		o->secret, &secret.data, &secret.len, why, sizeof(why)) == -1) {
		msg_error("--secret: %s", why);
		status = secret_spec_valid(o->secret) ? EX_NOINPUT : EX_USAGE;
	} else if (signature_sign(scheme, &secret,
		       o->body != NULL ? o->body : "", o->len, now,
		       o->webhook_id, headers, why, sizeof(why)) == -1) {
		msg_error("--sign: %s", why);
	} else {
		status = add_signed(o, headers);
	}
	secret_free(secret.data, SECRET_MAX + 2);
	signature_scheme_free(scheme);
	return status;
}

/* Builds the request from the options, the URL and the items. */
static int
build_request(struct options *o, int argc, char *argv[])
{
	int status;

	status = add_items(o, argc - 1, argv + 1);
	if (status == 0)
		status = build_url(o, argv[0]);
	if (status == 0)
		status = build_body(o);
	if (status == 0 && o->sign != NULL)
		status = sign_body(o);
	if (status == 0)
		status = add_defaults(o);
	return status;
}

static int
send_built(struct options *o)
{
	struct send_request r = {o->method, o->url, o->shown_url,
	    o->items.headers, o->items.nheaders, o->body, o->len};
	struct sender *s;
	char why[256];
	int status;

	s = send_open(&o->send, why, sizeof(why));
	if (s == NULL) {
		msg_error("%s", why);
		return EX_OSERR;
	}
	status = send_request(s, &r);
	send_close(s);
	return status;
}

/* Resends the envelopes of FILE (NULL: standard input) to URL. */
static int
replay(struct options *o, const char *url, const char *file)
{
	int status = build_url(o, url);

	if (status == 0)
		status = replay_run(&o->ro, &o->send, o->url, file);
	return status;
}

int
main(int argc, char *argv[])
{
	struct options o = {.send = {.timeout_ms = 30000},
	    .timestamp = -1,
	    .ro = {.since_ms = -1,
		.until_ms = -1,
		.retries = 3,
		.backoff_ms = 500,
		.parallel = 1}};
	int status;

	msg_init("whook-send");
	items_init(&o.items);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		msg_error("libcurl could not be initialized");
		return EX_OSERR;
	}
	status = parse_options(&o, argc, argv);
	if (status == STAGE_READY && o.replay) {
		status = replay(&o, argv[optind],
		    optind + 1 < argc ? argv[optind + 1] : NULL);
	} else if (status == STAGE_READY) {
		status = build_request(&o, argc - optind, argv + optind);
		if (status == 0)
			status = send_built(&o);
	}
	items_free(&o.items);
	curl_free(o.url);
	curl_free(o.shown_url);
	free(o.body);
	curl_global_cleanup();
	return status;
}
