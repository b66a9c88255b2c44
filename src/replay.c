/*
 * whook-send --replay: resends logged envelopes (NDJSON, one per line, as
 * whook-listen writes its receive log) to one URL.  Each request carries
 * the exact raw body bytes, the original method and headers but the
 * hop-by-hop ones, and "Whook-Envelope-Id: $trigger.id".  Failed requests
 * are retried with capped exponential backoff and full jitter.  Up to
 * --parallel requests are in flight at once on curl's multi interface,
 * which reuses connections.
 *
 * An envelope is done once delivered, written to --failed, skipped or
 * filtered out.  For a regular file the cursor is the end offset of the
 * longest prefix of done lines, with the file's device and inode and the
 * id of the line that ends there.  A run reads no further than the size
 * the file had when it started.  Several writers append to a receive log
 * at once, so its ids are not in file order and only an offset is exact.
 * For a pipe the cursor is the greatest id such that every envelope read
 * before it is done.  Each request in flight records where the lines
 * before it end, so the cursor is that of the earliest one still in
 * flight.  The --failed file is synced before a cursor that covers its
 * lines is written.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "whook.h"

#define ID_MAX REPLAY_ID_MAX
#define CURSOR_LINE_MAX (ID_MAX + 80)
#define RETRY_AFTER_MAX_MS (300 * 1000LL)
#define BACKOFF_MAX_MS (60 * 1000LL)
#define PROGRESS_MS 200
#define CURSOR_EVERY_MS 1000

enum slot_state { SLOT_FREE, SLOT_RUNNING, SLOT_WAITING };
enum outcome_kind { DELIVERED, RETRYABLE, FINAL };

/* The end of one input line: the offset after its newline, its line
 * number and its id, or "-" for a line without one. */
struct mark {
	long long off;
	unsigned long long line;
	char id[ID_MAX];
};

/* One envelope being sent, from its first attempt to its last. */
struct slot {
	enum slot_state state;
	CURL *curl;
	struct curl_slist *headers;
	char *url, *body, *line;
	size_t len, linelen;
	char id[ID_MAX];
	char max_before[ID_MAX]; /* the greatest id read before this one */
	struct mark before;	 /* the end of the line before this one */
	int attempts;
	long long due; /* CLOCK_MONOTONIC ms of the next attempt */
	char errbuf[CURL_ERROR_SIZE];
};

struct input {
	int fd;
	const char *name; /* for messages: FILE or "stdin" */
	char *buf;
	size_t start, len, cap;
	int eof;
	int terminated; /* the last line taken ended with a newline */
	unsigned long lineno;
	long long pos;	 /* the file offset of buf[start] */
	long long limit; /* a regular file's size at the start, or -1 */
};

struct replay {
	const struct replay_options *o;
	const struct send_options *so;
	const char *url;
	CURLM *multi;
	struct slot *slots;
	struct input in;
	char loaded[ID_MAX]; /* an id cursor read at the start, or "" */
	char top[ID_MAX];    /* the greatest id read */
	char stop[ID_MAX];   /* the id limit set by an undone envelope */
	struct mark last;    /* the end of the last line read */
	struct mark stop_at; /* the offset limit set by an undone envelope */
	char written[CURSOR_LINE_MAX + 2]; /* the cursor line last written */
	int stopped;
	int by_offset; /* the input is a regular file */
	unsigned long long dev, ino;
	char echo_tag[EVP_MAX_MD_SIZE]; /* Whook-Replay-Of, or "" */
	int failed_fd, lock_fd;
	int failed_unsynced;
	int retryable, final, write_error, read_error;
	unsigned long sent, failed, skipped, already, filtered;
	long long cursor_at, progress_at;
	int progress; /* standard error is a terminal */
};

/* Headers that curl sets itself or that belong to one connection. */
static const char *const dropped_headers[] = {"connection", "keep-alive",
    "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
    "proxy-authorization", "host", "content-length", "expect",
    "whook-envelope-id", "whook-replay-of"};

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Parses the fraction and zone of an RFC 3339 time after the seconds. */
static int
parse_zone(const char *p, long long *frac_ms, long long *offset_s)
{
	long long scale = 100;
	int hh, mm, used = 0;

	*frac_ms = 0;
	*offset_s = 0;
	if (*p == '.') {
		if (p[1] < '0' || p[1] > '9')
			return -1;
		for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
			*frac_ms += (*p - '0') * scale;
	}
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
		return 0;
	if ((*p != '+' && *p != '-') ||
	    sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &used) != 2 ||
	    p[1 + used] != '\0' || used != 5 || hh > 23 || mm > 59)
		return -1;
	*offset_s = (hh * 3600LL + mm * 60) * (*p == '-' ? -1 : 1);
	return 0;
}

int
replay_parse_time(const char *arg, long long *ms)
{
	struct tm tm;
	const char *p = arg + (arg[0] == '@');
	char *end;
	long long frac, offset, secs;

	if (*p >= '0' && *p <= '9' && p[strspn(p, "0123456789")] == '\0') {
		errno = 0;
		secs = strtoll(p, &end, 10);
		if (errno != 0 || secs > 1000000000000LL)
			return -1;
		*ms = secs * 1000;
		return 0;
	}
	memset(&tm, 0, sizeof(tm));
	p = strptime(arg, "%Y-%m-%d", &tm);
	if (p == NULL || (*p != 'T' && *p != 't' && *p != ' '))
		return -1;
	p = strptime(p + 1, "%H:%M:%S", &tm);
	if (p == NULL || parse_zone(p, &frac, &offset) == -1)
		return -1;
	*ms = ((long long)timegm(&tm) - offset) * 1000 + frac;
	return 0;
}

long long
replay_backoff_ms(long long base_ms, int attempts, long random)
{
	long long cap = base_ms;
	int i;

	for (i = 1; i < attempts && cap < BACKOFF_MAX_MS; i++)
		cap *= 2;
	if (cap > BACKOFF_MAX_MS)
		cap = BACKOFF_MAX_MS;
	/* Full jitter: a uniform delay in [0, cap] spreads the retries of
	 * many clients that failed together. */
	return cap > 0 ? random % (cap + 1) : 0;
}

/* Reads once more into the input buffer, never past in->limit, so that
 * a run does not chase the lines appended while it works. */
static int
input_fill(struct input *in)
{
	size_t room;
	ssize_t n;
	long long left;
	char *grown;

	if (in->start > 0) {
		memmove(in->buf, in->buf + in->start, in->len - in->start);
		in->len -= in->start;
		in->start = 0;
	}
	if (in->len + 1 >= in->cap) {
		grown = realloc(in->buf, in->cap * 2);
		if (grown == NULL)
			return -1;
		in->buf = grown;
		in->cap *= 2;
	}
	room = in->cap - in->len - 1;
	left = in->limit - (in->pos + (long long)(in->len - in->start));
	if (in->limit != -1 && left <= 0) {
		in->eof = 1;
		return 0;
	}
	if (in->limit != -1 && (unsigned long long)left < room)
		room = (size_t)left;
	do
		n = read(in->fd, in->buf + in->len, room);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	in->eof = n == 0;
	in->len += n;
	return 0;
}

/* Returns 1 and the next buffered line, NUL-terminated, or 0 when no
 * whole line is buffered.  A last line without a newline is one. */
static int
input_line(struct input *in, char **line, size_t *n)
{
	char *nl = memchr(in->buf + in->start, '\n', in->len - in->start);
	size_t old = in->start;

	if (nl == NULL && !(in->eof && in->len > in->start))
		return 0;
	in->terminated = nl != NULL;
	if (nl == NULL)
		nl = in->buf + in->len; /* input_fill kept one byte free */
	*nl = '\0';
	*line = in->buf + in->start;
	*n = nl - *line;
	in->start = nl - in->buf + in->terminated;
	in->pos += in->start - old;
	in->lineno++;
	return 1;
}

static int
input_ready(const struct input *in)
{
	struct pollfd pfd = {.fd = in->fd, .events = POLLIN};

	return poll(&pfd, 1, 0) > 0;
}

/* Decodes standard base64 with OpenSSL into *out (malloc'd). */
static int
base64_decode(const char *text, size_t len, char **out, size_t *outlen)
{
	EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
	int n = 0, last = 0, ok;

	*out = malloc(len / 4 * 3 + 4);
	if (ctx == NULL || *out == NULL || len > INT32_MAX) {
		EVP_ENCODE_CTX_free(ctx);
		return -1;
	}
	EVP_DecodeInit(ctx);
	ok = EVP_DecodeUpdate(ctx, (unsigned char *)*out, &n,
		 (const unsigned char *)text, (int)len) != -1 &&
	     EVP_DecodeFinal(ctx, (unsigned char *)*out + n, &last) == 1;
	EVP_ENCODE_CTX_free(ctx);
	*outlen = (size_t)n + last;
	return ok ? 0 : -1;
}

/* Copies the exact body bytes of TRIGGER (borrowed) into the slot. */
static int
take_body(struct slot *s, jv trigger, const char **why)
{
	jv raw = jv_object_get(jv_copy(trigger), jv_string("raw"));
	int rc = 0;

	if (jv_get_kind(raw) == JV_KIND_STRING) {
		s->len = jv_string_length_bytes(jv_copy(raw));
		s->body = malloc(s->len + 1);
		if (s->body != NULL)
			memcpy(s->body, jv_string_value(raw), s->len + 1);
		rc = s->body != NULL ? 0 : -1;
		*why = "out of memory";
	} else {
		jv_free(raw);
		raw = jv_object_get(jv_copy(trigger), jv_string("raw_base64"));
		*why = "not an envelope: no raw or raw_base64 string";
		rc = -1;
		if (jv_get_kind(raw) == JV_KIND_STRING) {
			*why = "raw_base64: invalid base64";
			rc = base64_decode(jv_string_value(raw),
			    jv_string_length_bytes(jv_copy(raw)), &s->body,
			    &s->len);
		}
	}
	jv_free(raw);
	return rc;
}

static int
header_dropped(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(dropped_headers) / sizeof(dropped_headers[0]);
	     i++)
		if (strcasecmp(name, dropped_headers[i]) == 0)
			return 1;
	return 0;
}

/* Returns whether NAME is an HTTP field name (RFC 9110 token). */
static int
token_valid(const char *name)
{
	static const char chars[] = "!#$%&'*+-.^_`|~0123456789"
				    "abcdefghijklmnopqrstuvwxyz"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

	return name[0] != '\0' && name[strspn(name, chars)] == '\0';
}

/* Appends LINE, a header line in libcurl's syntax. */
static int
append_line(struct curl_slist **list, const char *line)
{
	struct curl_slist *next = curl_slist_append(*list, line);

	if (next == NULL)
		return -1;
	*list = next;
	return 0;
}

/* Appends "NAME: VALUE", or "NAME;" that sends an empty value. */
static int
append_header(struct curl_slist **list, const char *name, const char *value)
{
	size_t size = strlen(name) + strlen(value) + 3;
	char *line = malloc(size);
	int rc;

	if (line == NULL)
		return -1;
	if (value[0] == '\0')
		snprintf(line, size, "%s;", name);
	else
		snprintf(line, size, "%s: %s", name, value);
	rc = append_line(list, line);
	free(line);
	return rc;
}

/* Adds one original header (NAME and VALUE borrowed); returns -1 with
 * *why for one that cannot be sent as it is. */
static int
add_original(struct slot *s, jv name, jv value, const char **why)
{
	const char *n = jv_string_value(name), *v;

	if (header_dropped(n))
		return 0;
	*why = "headers: invalid header name";
	if (!token_valid(n) || jv_get_kind(value) != JV_KIND_STRING)
		return -1;
	v = jv_string_value(value);
	*why = "headers: a value contains a line break or a NUL byte";
	if (strpbrk(v, "\r\n") != NULL ||
	    strlen(v) != (size_t)jv_string_length_bytes(jv_copy(value)))
		return -1;
	*why = "out of memory";
	return append_header(&s->headers, n, v);
}

/* Adds the original headers of HEADERS (borrowed), in their order. */
static int
add_originals(
    struct slot *s, jv headers, int *type, int *accept, const char **why)
{
	jv name, value;
	int i, rc = 0;

	for (i = jv_object_iter(headers);
	     rc == 0 && jv_object_iter_valid(headers, i);
	     i = jv_object_iter_next(headers, i)) {
		name = jv_object_iter_key(headers, i);
		value = jv_object_iter_value(headers, i);
		rc = add_original(s, name, value, why);
		*type |= strcasecmp(jv_string_value(name), "content-type") == 0;
		*accept |= strcasecmp(jv_string_value(name), "accept") == 0;
		jv_free(name);
		jv_free(value);
	}
	return rc;
}

/* Builds the header list from TRIGGER's headers (borrowed).  "Name:"
 * with no value stops libcurl from adding its own header of that name,
 * so that a request without one is replayed without one. */
static int
take_headers(struct slot *s, jv trigger, const char *echo_tag, const char **why)
{
	jv headers = jv_object_get(jv_copy(trigger), jv_string("headers"));
	int rc = 0, type = 0, accept = 0;

	if (jv_get_kind(headers) == JV_KIND_OBJECT)
		rc = add_originals(s, headers, &type, &accept, why);
	jv_free(headers);
	if (rc != 0)
		return rc;
	*why = "out of memory";
	if (!type)
		rc |= append_line(&s->headers, "Content-Type:");
	if (!accept)
		rc |= append_line(&s->headers, "Accept:");
	rc |= append_line(&s->headers, "Expect:");
	rc |= append_header(&s->headers, "Whook-Envelope-Id", s->id);
	if (echo_tag[0] != '\0')
		rc |= append_header(&s->headers, "Whook-Replay-Of", echo_tag);
	return rc;
}

/* Appends KEY=VALUE, each percent-encoded, to the query *Q. */
static int
query_append(char **q, const char *key, const char *value)
{
	char *k = curl_easy_escape(NULL, key, 0);
	char *v = value != NULL ? curl_easy_escape(NULL, value, 0) : NULL;
	size_t old = *q != NULL ? strlen(*q) : 0, size;
	char *grown = NULL;

	if (k != NULL && (v != NULL || value == NULL)) {
		size = old + strlen(k) + (v != NULL ? strlen(v) : 0) + 3;
		grown = realloc(*q, size);
	}
	if (grown != NULL) {
		snprintf(grown + old, size - old, "%s%s%s%s", old ? "&" : "", k,
		    v != NULL ? "=" : "", v != NULL ? v : "");
		*q = grown;
	}
	curl_free(k);
	curl_free(v);
	return grown != NULL ? 0 : -1;
}

/* Encodes QUERY (borrowed) in its key order.  A value is a string, or
 * an array of strings for a repeated key.  Any other value gives the key
 * without "=". */
static int
query_encode(jv query, char **q)
{
	jv key, value, item;
	int i, j, rc = 0;

	for (i = jv_object_iter(query);
	     rc == 0 && jv_object_iter_valid(query, i);
	     i = jv_object_iter_next(query, i)) {
		key = jv_object_iter_key(query, i);
		value = jv_object_iter_value(query, i);
		if (jv_get_kind(value) == JV_KIND_ARRAY) {
			for (j = 0;
			     rc == 0 && j < jv_array_length(jv_copy(value));
			     j++) {
				item = jv_array_get(jv_copy(value), j);
				rc = query_append(q, jv_string_value(key),
				    jv_get_kind(item) == JV_KIND_STRING
					? jv_string_value(item)
					: "");
				jv_free(item);
			}
		} else {
			rc = query_append(q, jv_string_value(key),
			    jv_get_kind(value) == JV_KIND_STRING
				? jv_string_value(value)
				: NULL);
		}
		jv_free(key);
		jv_free(value);
	}
	return rc;
}

/* Sets the slot's URL: the URL as given, or under --path its scheme,
 * host and port with $trigger.path and $trigger.query. */
static int
take_url(struct replay *r, struct slot *s, jv trigger, const char **why)
{
	jv path = jv_object_get(jv_copy(trigger), jv_string("path"));
	jv query = jv_object_get(jv_copy(trigger), jv_string("query"));
	CURLU *u = NULL;
	char *q = NULL, *url = NULL;
	int rc = -1;

	*why = "path: not a string that starts with /";
	if (!r->o->use_path)
		url = strdup(r->url);
	else if (jv_get_kind(path) == JV_KIND_STRING &&
		 jv_string_value(path)[0] == '/' &&
		 (jv_get_kind(query) != JV_KIND_OBJECT ||
		     query_encode(query, &q) == 0) &&
		 (u = curl_url()) != NULL &&
		 curl_url_set(u, CURLUPART_URL, r->url, 0) == CURLUE_OK &&
		 curl_url_set(u, CURLUPART_PATH, jv_string_value(path),
		     CURLU_PATH_AS_IS) == CURLUE_OK &&
		 curl_url_set(u, CURLUPART_QUERY, q, 0) == CURLUE_OK &&
		 curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0) == CURLUE_OK)
		curl_url_get(u, CURLUPART_URL, &url, CURLU_PATH_AS_IS);
	if (url != NULL) {
		s->url = strdup(url);
		rc = s->url != NULL ? 0 : -1;
	}
	if (r->o->use_path)
		curl_free(url);
	else
		free(url);
	curl_url_cleanup(u);
	free(q);
	jv_free(path);
	jv_free(query);
	return rc;
}

/* Sets the method and body options of the slot's next attempt.  A
 * method that carries no body in practice goes without one when the
 * logged body is empty. */
static CURLcode
set_method(CURL *c, struct slot *s, const char *method)
{
	int head = strcmp(method, "HEAD") == 0;
	int bodyless = strcmp(method, "GET") == 0 ||
		       strcmp(method, "DELETE") == 0 ||
		       strcmp(method, "OPTIONS") == 0;
	CURLcode rc;

	rc = curl_easy_setopt(c, CURLOPT_NOBODY, (long)head);
	if (rc != CURLE_OK || head)
		return rc;
	if (bodyless && s->len == 0)
		rc = curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	else
		rc = curl_easy_setopt(c, CURLOPT_POSTFIELDS, s->body);
	if (rc == CURLE_OK && !(bodyless && s->len == 0))
		rc = curl_easy_setopt(
		    c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->len);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST,
		    strcmp(method, "GET") == 0 || strcmp(method, "POST") == 0
			? NULL
			: method);
	return rc;
}

/* Prepares the slot's handle for TRIGGER (borrowed). */
static int
take_method(struct slot *s, jv trigger, const char **why)
{
	jv method = jv_object_get(jv_copy(trigger), jv_string("method"));
	const char *m = "POST";
	int rc;

	if (jv_get_kind(method) == JV_KIND_STRING)
		m = jv_string_value(method);
	*why = "method: not an HTTP method";
	rc = token_valid(m) && strlen(m) <= 32 ? 0 : -1;
	if (rc == 0 &&
	    (curl_easy_setopt(s->curl, CURLOPT_URL, s->url) != CURLE_OK ||
		curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, s->headers) !=
		    CURLE_OK ||
		set_method(s->curl, s, m) != CURLE_OK)) {
		*why = "libcurl rejected the request";
		rc = -1;
	}
	jv_free(method);
	return rc;
}

static void
slot_clear(struct slot *s)
{
	curl_slist_free_all(s->headers);
	free(s->url);
	free(s->body);
	free(s->line);
	s->headers = NULL;
	s->url = s->body = s->line = NULL;
	s->len = s->linelen = 0;
	s->attempts = 0;
	s->state = SLOT_FREE;
}

/* Returns TRIGGER's $trigger.received_at in ms, or -1. */
static long long
received_ms(jv trigger)
{
	jv at = jv_object_get(jv_copy(trigger), jv_string("received_at"));
	long long ms = -1;

	if (jv_get_kind(at) != JV_KIND_STRING ||
	    replay_parse_time(jv_string_value(at), &ms) == -1)
		ms = -1;
	jv_free(at);
	return ms;
}

/* Returns $trigger of ENV (consumed) when it has a usable id, copied to
 * ID, or jv_invalid() with *why. */
static jv
trigger_of(jv env, char id[ID_MAX], const char **why)
{
	jv trigger = jv_invalid(), v;

	*why = "not an envelope: not a JSON object";
	if (jv_get_kind(env) == JV_KIND_OBJECT) {
		trigger = jv_object_get(jv_copy(env), jv_string("$trigger"));
		*why = "not an envelope: no $trigger object";
	}
	jv_free(env);
	if (jv_get_kind(trigger) != JV_KIND_OBJECT) {
		jv_free(trigger);
		return jv_invalid();
	}
	v = jv_object_get(jv_copy(trigger), jv_string("id"));
	*why = "not an envelope: no $trigger.id string";
	if (jv_get_kind(v) == JV_KIND_STRING && jv_string_value(v)[0] != '\0' &&
	    strlen(jv_string_value(v)) < ID_MAX &&
	    strpbrk(jv_string_value(v), " \t\r\n") == NULL) {
		snprintf(id, ID_MAX, "%s", jv_string_value(v));
		jv_free(v);
		return trigger;
	}
	jv_free(v);
	jv_free(trigger);
	return jv_invalid();
}

static void
skip_line(struct replay *r, const char *why)
{
	msg_error("%s:%lu: %s, skipped", r->in.name, r->in.lineno, why);
	r->skipped++;
}

static struct slot *
free_slot(struct replay *r)
{
	int i;

	for (i = 0; i < r->o->parallel; i++)
		if (r->slots[i].state == SLOT_FREE)
			return &r->slots[i];
	return NULL;
}

/* Keeps the cursor at or before BEFORE and MAX_BEFORE for the rest of
 * the run, because the envelope after them is not done. */
static void
hold(struct replay *r, const struct mark *before, const char *max_before)
{
	if (!r->stopped || before->off < r->stop_at.off)
		r->stop_at = *before;
	if (!r->stopped || strcmp(max_before, r->stop) < 0)
		snprintf(r->stop, ID_MAX, "%s", max_before);
	r->stopped = 1;
}

/* Returns whether TRIGGER (borrowed) was logged from a replay of this
 * very file: an endpoint that writes the log being replayed appends each
 * replayed request again, and its original is earlier in the file. */
static int
echo_of_input(const struct replay *r, jv trigger)
{
	jv headers = jv_object_get(jv_copy(trigger), jv_string("headers"));
	jv tag = jv_null();
	int echo;

	if (jv_get_kind(headers) == JV_KIND_OBJECT)
		tag = jv_object_get(
		    jv_copy(headers), jv_string("whook-replay-of"));
	echo = r->echo_tag[0] != '\0' && jv_get_kind(tag) == JV_KIND_STRING &&
	       strcmp(jv_string_value(tag), r->echo_tag) == 0;
	jv_free(tag);
	jv_free(headers);
	return echo;
}

/* Counts an envelope the run leaves alone: returns 1 for one already
 * sent or outside --since and --until, 0 for one to send, -1 with *why
 * for one without a usable received_at. */
static int
screen(struct replay *r, jv trigger, const char *id, const struct mark *before,
    const char *max_before, const char **why)
{
	long long at;

	if ((r->loaded[0] != '\0' && strcmp(id, r->loaded) <= 0) ||
	    echo_of_input(r, trigger)) {
		r->already++;
		return 1;
	}
	if (r->o->since_ms == -1 && r->o->until_ms == -1)
		return 0;
	at = received_ms(trigger);
	*why = "$trigger.received_at: not an RFC 3339 time";
	if (at == -1)
		return -1;
	if (at >= r->o->since_ms &&
	    (r->o->until_ms == -1 || at < r->o->until_ms))
		return 0;
	r->filtered++;
	/* An envelope after --until is left for a later run, so the cursor
	 * must not pass it. */
	if (r->o->until_ms != -1 && at >= r->o->until_ms)
		hold(r, before, max_before);
	return 1;
}

/* Fills slot S from TRIGGER (borrowed) and LINE, and starts it. */
static int
slot_start(struct replay *r, struct slot *s, jv trigger, const char *line,
    size_t n, const char **why)
{
	if (take_body(s, trigger, why) == -1 ||
	    take_headers(s, trigger, r->echo_tag, why) == -1 ||
	    take_url(r, s, trigger, why) == -1 ||
	    take_method(s, trigger, why) == -1)
		return -1;
	*why = "out of memory";
	s->line = malloc(n + 1);
	if (s->line == NULL)
		return -1;
	memcpy(s->line, line, n + 1);
	s->linelen = n;
	s->state = SLOT_RUNNING;
	*why = "libcurl could not start the request";
	if (curl_multi_add_handle(r->multi, s->curl) != CURLM_OK) {
		s->state = SLOT_FREE;
		return -1;
	}
	return 0;
}

/* Handles the envelope of one line, whose id goes to ID: one to send
 * takes slot S. */
static void
take_envelope(
    struct replay *r, struct slot *s, const char *line, size_t n, char *id)
{
	char before[ID_MAX];
	const char *why = NULL;
	jv env, trigger, msg;
	int verdict;

	env = json_parse(line, n);
	if (!jv_is_valid(env)) {
		msg = jv_invalid_get_msg(env);
		msg_error("%s:%lu: invalid JSON: %s, skipped", r->in.name,
		    r->in.lineno,
		    jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg)
						       : "parse error");
		jv_free(msg);
		r->skipped++;
		return;
	}
	trigger = trigger_of(env, id, &why);
	if (!jv_is_valid(trigger)) {
		skip_line(r, why);
		return;
	}
	snprintf(before, ID_MAX, "%s", r->top);
	if (strcmp(id, r->top) > 0)
		snprintf(r->top, ID_MAX, "%s", id);
	verdict = screen(r, trigger, id, &r->last, before, &why);
	if (verdict == 0) {
		snprintf(s->id, ID_MAX, "%s", id);
		snprintf(s->max_before, ID_MAX, "%s", before);
		s->before = r->last;
		verdict = slot_start(r, s, trigger, line, n, &why);
		if (verdict == -1)
			slot_clear(s);
	}
	if (verdict == -1)
		skip_line(r, why);
	jv_free(trigger);
}

/* Reads one line and moves r->last past it.  A blank line is done at
 * once. */
static void
take_line(struct replay *r, struct slot *s, const char *line, size_t n)
{
	char id[ID_MAX] = "-";

	if (line[strspn(line, " \t\r")] != '\0')
		take_envelope(r, s, line, n, id);
	r->last.off = r->in.pos;
	r->last.line = r->in.lineno;
	snprintf(r->last.id, ID_MAX, "%s", id);
}

/* Leaves a last line without a newline for the next run: in a log that
 * is still written it may be a line cut short. */
static void
hold_partial(struct replay *r)
{
	msg_warn("%s:%lu: no newline at the end, left for the next run",
	    r->in.name, r->in.lineno);
	hold(r, &r->last, r->top);
}

/* Classifies an attempt and writes its reason into WHY. */
static enum outcome_kind
classify(struct slot *s, CURLcode rc, long status, char *why, size_t len)
{
	long os_errno = 0;

	if (rc != CURLE_OK) {
		/* For a failed connect the system's reason, such as
		 * "Connection refused", is more specific than libcurl's. */
		if (rc == CURLE_COULDNT_CONNECT)
			curl_easy_getinfo(
			    s->curl, CURLINFO_OS_ERRNO, &os_errno);
		if (os_errno != 0)
			snprintf(why, len, "%s", strerror((int)os_errno));
		else if (s->errbuf[0] != '\0')
			snprintf(why, len, "%s", s->errbuf);
		else
			snprintf(why, len, "%s", curl_easy_strerror(rc));
		/* A URL libcurl cannot use fails the same way every time. */
		return rc == CURLE_URL_MALFORMAT ||
			       rc == CURLE_UNSUPPORTED_PROTOCOL
			   ? FINAL
			   : RETRYABLE;
	}
	snprintf(why, len, "HTTP %ld", status);
	if (status >= 200 && status <= 299)
		return DELIVERED;
	if (status == 429 || (status >= 500 && status <= 599))
		return RETRYABLE;
	return FINAL;
}

/* Appends the slot's line to --failed, to be replayed later. */
static int
write_failed(struct replay *r, struct slot *s)
{
	size_t off = 0;
	ssize_t n;

	s->line[s->linelen] = '\n';
	while (off < s->linelen + 1) {
		n = write(r->failed_fd, s->line + off, s->linelen + 1 - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += n;
	}
	r->failed_unsynced = 1;
	return 0;
}

/* Gives up on the slot's envelope, which stays in the cursor's way
 * unless --failed keeps it. */
static void
give_up(
    struct replay *r, struct slot *s, enum outcome_kind kind, const char *why)
{
	if (kind == RETRYABLE)
		msg_error("%s: %s, failed after %d attempts", s->id, why,
		    s->attempts);
	else
		msg_error("%s: %s, rejected for good", s->id, why);
	r->failed++;
	r->retryable |= kind == RETRYABLE;
	r->final |= kind == FINAL;
	if (r->failed_fd != -1 && write_failed(r, s) == -1) {
		msg_error("%s: %s", r->o->failed, strerror(errno));
		r->write_error = 1;
	}
	if (r->failed_fd == -1 || r->write_error)
		hold(r, &s->before, s->max_before);
}

/* Waits before the next attempt: Retry-After when the response has
 * one, else the backoff. */
static void
schedule_retry(struct replay *r, struct slot *s, const char *why)
{
	curl_off_t after = 0;
	long long delay;

	curl_easy_getinfo(s->curl, CURLINFO_RETRY_AFTER, &after);
	if (after > 0)
		delay = after * 1000 > RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS
							  : after * 1000;
	else
		delay =
		    replay_backoff_ms(r->o->backoff_ms, s->attempts, random());
	msg_warn("%s: %s, retry %d of %d in %lld ms", s->id, why, s->attempts,
	    r->o->retries, delay);
	s->due = now_ms() + delay;
	s->state = SLOT_WAITING;
}

static void
finish(struct replay *r, struct slot *s, CURLcode rc)
{
	enum outcome_kind kind;
	long status = 0;
	char why[CURL_ERROR_SIZE + 64];

	curl_multi_remove_handle(r->multi, s->curl);
	curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
	s->attempts++;
	kind = classify(s, rc, status, why, sizeof(why));
	s->errbuf[0] = '\0';
	if (kind == RETRYABLE && s->attempts <= r->o->retries) {
		schedule_retry(r, s, why);
		return;
	}
	if (kind == DELIVERED) {
		r->sent++;
		if (r->so->verbose)
			msg_info("%s: %s", s->id, why);
	} else {
		give_up(r, s, kind, why);
	}
	slot_clear(s);
}

/* Returns the id cursor: the greatest id read before the earliest
 * envelope not yet done, never below the cursor loaded. */
static const char *
cursor_id(const struct replay *r)
{
	const char *best = r->stopped ? r->stop : NULL;
	int i;

	for (i = 0; i < r->o->parallel; i++)
		if (r->slots[i].state != SLOT_FREE &&
		    (best == NULL || strcmp(r->slots[i].max_before, best) < 0))
			best = r->slots[i].max_before;
	if (best == NULL)
		best = r->top;
	return strcmp(best, r->loaded) < 0 ? r->loaded : best;
}

/* Returns the offset cursor: the end of the line before the earliest
 * envelope not yet done. */
static const struct mark *
cursor_mark(const struct replay *r)
{
	const struct mark *best = r->stopped ? &r->stop_at : &r->last;
	int i;

	for (i = 0; i < r->o->parallel; i++)
		if (r->slots[i].state != SLOT_FREE &&
		    r->slots[i].before.off < best->off)
			best = &r->slots[i].before;
	return best;
}

/* Formats the cursor line; returns -1 when there is none yet. */
static int
cursor_line(const struct replay *r, char *line, size_t size)
{
	const struct mark *m;
	const char *id;

	if (!r->by_offset) {
		id = cursor_id(r);
		snprintf(line, size, "%s", id);
		return id[0] != '\0' ? 0 : -1;
	}
	m = cursor_mark(r);
	snprintf(line, size, "v2 %lld %llu %llu %llu %s", m->off, m->line,
	    r->dev, r->ino, m->id);
	return m->off > 0 ? 0 : -1;
}

/* Syncs the directory of PATH, so that a rename in it survives a crash. */
static int
sync_dir(const char *path)
{
	char *copy = strdup(path);
	int fd = -1, rc = -1;

	if (copy != NULL)
		fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd != -1) {
		rc = fsync(fd);
		close(fd);
	}
	free(copy);
	return rc;
}

/* Replaces the cursor file with LINE: written to FILE.tmp, synced, renamed
 * over FILE, so that a crash leaves the old cursor or the new one. */
static int
cursor_store(const char *path, const char *line)
{
	char tmp[4096];
	int fd, rc;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1)
		return -1;
	rc = dprintf(fd, "%s\n", line) < 0 || fsync(fd) == -1 ? -1 : 0;
	if (close(fd) == -1)
		rc = -1;
	if (rc == 0)
		rc = rename(tmp, path);
	if (rc == 0)
		rc = sync_dir(path);
	return rc;
}

/* Writes the cursor when it moved, after syncing --failed, whose lines
 * it covers. */
static void
checkpoint(struct replay *r)
{
	char line[CURSOR_LINE_MAX];

	r->cursor_at = now_ms();
	if (r->o->cursor == NULL || cursor_line(r, line, sizeof(line)) == -1 ||
	    strcmp(line, r->written) == 0)
		return;
	if (r->failed_unsynced && fsync(r->failed_fd) == -1) {
		msg_error("%s: %s", r->o->failed, strerror(errno));
		r->write_error = 1;
		return;
	}
	r->failed_unsynced = 0;
	if (cursor_store(r->o->cursor, line) == -1) {
		msg_error("%s: %s", r->o->cursor, strerror(errno));
		r->write_error = 1;
		return;
	}
	snprintf(r->written, sizeof(r->written), "%s", line);
}

/* Takes the lock FILE.lock beside the cursor without waiting. */
static int
cursor_lock(struct replay *r)
{
	char path[4096];

	if ((size_t)snprintf(path, sizeof(path), "%s.lock", r->o->cursor) >=
	    sizeof(path)) {
		msg_error("%s: %s", r->o->cursor, strerror(ENAMETOOLONG));
		return EX_CANTCREAT;
	}
	r->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (r->lock_fd == -1) {
		msg_error("%s: %s", path, strerror(errno));
		return EX_CANTCREAT;
	}
	if (flock(r->lock_fd, LOCK_EX | LOCK_NB) == -1) {
		msg_error("%s: %s", path,
		    errno == EWOULDBLOCK
			? "locked by another replay, try again later"
			: strerror(errno));
		return errno == EWOULDBLOCK ? EX_TEMPFAIL : EX_CANTCREAT;
	}
	return 0;
}

/* Parses a decimal field and the space after it at *P into *N. */
static int
parse_field(const char **p, unsigned long long *n)
{
	char *end;

	if (**p < '0' || **p > '9')
		return -1;
	errno = 0;
	*n = strtoull(*p, &end, 10);
	if (errno != 0 || *end != ' ')
		return -1;
	*p = end + 1;
	return 0;
}

int
replay_cursor_parse(const char *line, struct replay_cursor *c)
{
	unsigned long long off;
	const char *p = line + 3;

	c->offset = -1;
	c->line = c->dev = c->ino = 0;
	if (strncmp(line, "v2 ", 3) == 0) {
		if (parse_field(&p, &off) == -1 || off == 0 ||
		    off > LLONG_MAX || parse_field(&p, &c->line) == -1 ||
		    c->line == 0 || parse_field(&p, &c->dev) == -1 ||
		    parse_field(&p, &c->ino) == -1 || *p == '\0')
			return -1;
		c->offset = (long long)off;
		line = p;
	}
	if (strlen(line) >= REPLAY_ID_MAX || strpbrk(line, " \t\r\n") != NULL)
		return -1;
	snprintf(c->id, REPLAY_ID_MAX, "%s", line);
	return 0;
}

/* Reads the cursor into C: its first line, or none when the file is
 * absent. */
static int
cursor_load(struct replay *r, struct replay_cursor *c)
{
	FILE *f = fopen(r->o->cursor, "re");
	char line[CURSOR_LINE_MAX + 2];
	size_t n;
	int too_long;

	c->offset = -1;
	c->id[0] = '\0';
	if (f == NULL && errno == ENOENT)
		return 0;
	if (f == NULL) {
		msg_error("%s: %s", r->o->cursor, strerror(errno));
		return EX_CANTCREAT;
	}
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	n = strcspn(line, "\r\n");
	too_long = line[n] == '\0' && n == sizeof(line) - 1;
	line[n] = '\0';
	if (too_long || replay_cursor_parse(line, c) == -1) {
		msg_error("%s: invalid cursor: not an envelope id nor "
			  "\"v2 OFFSET LINE DEV INODE ID\"",
		    r->o->cursor);
		return EX_DATAERR;
	}
	snprintf(r->written, sizeof(r->written), "%s", line);
	return 0;
}

/* Reads LEN bytes at OFF of FD into BUF; returns -1 when fewer came. */
static int
pread_full(int fd, char *buf, size_t len, long long off)
{
	ssize_t n;

	while (len > 0) {
		n = pread(fd, buf, len, (off_t)off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= n;
		off += n;
	}
	return 0;
}

/* Returns the line of FD that ends with a newline at OFF - 1, without
 * it and NUL-terminated (malloc'd), or NULL.  The window read back
 * doubles until it holds the newline before that line. */
static char *
line_before(int fd, long long off, size_t *n)
{
	long long window = 4096, from;
	char *buf, *nl;
	size_t len;

	for (;;) {
		from = off > window ? off - window : 0;
		len = (size_t)(off - from);
		buf = malloc(len);
		if (buf == NULL || pread_full(fd, buf, len, from) == -1 ||
		    buf[len - 1] != '\n') {
			free(buf);
			return NULL;
		}
		buf[len - 1] = '\0';
		nl = memrchr(buf, '\n', len - 1);
		if (nl != NULL || from == 0)
			break;
		free(buf);
		window *= 2;
	}
	*n = nl != NULL ? len - 1 - (nl + 1 - buf) : len - 1;
	if (nl != NULL)
		memmove(buf, nl + 1, *n + 1);
	return buf;
}

/* Writes to ID the id that take_line gives LINE: "-" for a blank line
 * or one that is no envelope. */
static void
line_id(const char *line, size_t n, char id[ID_MAX])
{
	const char *why;

	snprintf(id, ID_MAX, "-");
	if (line[strspn(line, " \t\r")] != '\0')
		jv_free(trigger_of(json_parse(line, n), id, &why));
}

/* Returns why the offset cursor C does not fit the input, or NULL. */
static const char *
cursor_mismatch(const struct replay *r, const struct replay_cursor *c)
{
	char id[ID_MAX], *line;
	size_t n;

	if (c->dev != r->dev || c->ino != r->ino)
		return "not the file the cursor names (rotated or replaced)";
	if (c->offset > r->in.limit)
		return "shorter than the cursor offset (truncated)";
	line = line_before(r->in.fd, c->offset, &n);
	if (line != NULL)
		line_id(line, n, id);
	free(line);
	if (line == NULL || strcmp(id, c->id) != 0)
		return "the line before the cursor offset is not the one "
		       "recorded (truncated or rewritten)";
	return NULL;
}

/* Sets where the run starts from the cursor C.  An id cursor skips the
 * ids up to it.  An offset cursor is used when it still fits the file,
 * and otherwise the whole file is replayed: the receiver's dedupe on
 * envelope ids drops what it already has. */
static void
cursor_apply(struct replay *r, const struct replay_cursor *c)
{
	const char *why;

	if (c->offset != -1 && !r->by_offset)
		msg_warn("%s: not a regular file, so the cursor's offset is "
			 "unused and ids up to %s are skipped",
		    r->in.name, c->id);
	if (c->offset == -1 || !r->by_offset) {
		snprintf(r->loaded, ID_MAX, "%s", c->id);
		return;
	}
	why = cursor_mismatch(r, c);
	if (why != NULL) {
		msg_warn("%s: %s, replaying from the start", r->in.name, why);
		return;
	}
	r->last.off = c->offset;
	r->last.line = c->line;
	r->in.lineno = (unsigned long)c->line;
	snprintf(r->last.id, ID_MAX, "%s", c->id);
}

static void
print_counts(const struct replay *r, const char *start, const char *end)
{
	fprintf(stderr,
	    "%s%s: replay: %lu sent, %lu failed, %lu skipped, "
	    "%lu already sent, %lu filtered out%s",
	    start, msg_prog(), r->sent, r->failed, r->skipped, r->already,
	    r->filtered, end);
}

/* Writes the cursor every CURSOR_EVERY_MS and, on a terminal, redraws
 * the progress line every PROGRESS_MS. */
static void
tick(struct replay *r)
{
	long long now = now_ms();

	if (now - r->cursor_at >= CURSOR_EVERY_MS)
		checkpoint(r);
	if (r->progress && now - r->progress_at >= PROGRESS_MS) {
		print_counts(r, "\r", "\033[K");
		r->progress_at = now;
	}
}

/* Starts the retries that are due; returns the ms until the next one,
 * at most PROGRESS_MS. */
static long
start_due(struct replay *r)
{
	long long now = now_ms(), wait = PROGRESS_MS;
	int i;

	for (i = 0; i < r->o->parallel; i++) {
		struct slot *s = &r->slots[i];

		if (s->state != SLOT_WAITING)
			continue;
		if (s->due <= now &&
		    curl_multi_add_handle(r->multi, s->curl) == CURLM_OK)
			s->state = SLOT_RUNNING;
		else if (s->due - now < wait)
			wait = s->due > now ? s->due - now : 0;
	}
	return (long)wait;
}

static int
busy(const struct replay *r)
{
	int i, n = 0;

	for (i = 0; i < r->o->parallel; i++)
		n += r->slots[i].state != SLOT_FREE;
	return n;
}

/* Reads lines while a slot is free.  Blocks on the input only when no
 * request is in flight, so that a slow pipe stalls no transfer. */
static void
fill(struct replay *r)
{
	struct slot *s;
	char *line;
	size_t n;

	while (!r->in.eof || r->in.start < r->in.len) {
		s = free_slot(r);
		if (s == NULL)
			return;
		if (input_line(&r->in, &line, &n) == 1) {
			if (!r->in.terminated && r->by_offset &&
			    r->o->cursor != NULL)
				hold_partial(r);
			else
				take_line(r, s, line, n);
			continue;
		}
		if (r->in.eof || (busy(r) > 0 && !input_ready(&r->in)))
			return;
		if (input_fill(&r->in) == -1) {
			msg_error("%s: %s", r->in.name, strerror(errno));
			r->read_error = 1;
			r->in.eof = 1;
		}
	}
}

static void
collect(struct replay *r)
{
	struct slot *s;
	CURLMsg *m;
	int queued;

	while ((m = curl_multi_info_read(r->multi, &queued)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(
		    m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
		finish(r, s, m->data.result);
	}
}

static void
replay_loop(struct replay *r)
{
	struct curl_waitfd wfd = {.fd = r->in.fd, .events = CURL_WAIT_POLLIN};
	int running;
	long wait;

	for (;;) {
		fill(r);
		if (busy(r) == 0 && r->in.eof && r->in.start >= r->in.len)
			break;
		wait = start_due(r);
		curl_multi_perform(r->multi, &running);
		collect(r);
		tick(r);
		if (busy(r) == 0 ||
		    (running == 0 && free_slot(r) == NULL && wait == 0))
			continue;
		/* Input that arrives while a slot is free wakes the wait. */
		curl_multi_poll(r->multi, &wfd,
		    !r->in.eof && free_slot(r) != NULL, (int)wait, NULL);
	}
}

static size_t
discard(char *data, size_t size, size_t n, void *arg)
{
	(void)data;
	(void)arg;
	return size * n;
}

/* Makes the slots' handles with the options that every request shares. */
static int
slots_open(struct replay *r)
{
	const struct send_options *o = r->so;
	CURLcode rc = CURLE_OK;
	int i;

	r->multi = curl_multi_init();
	r->slots = calloc(r->o->parallel, sizeof(*r->slots));
	if (r->multi == NULL || r->slots == NULL)
		return -1;
	for (i = 0; i < r->o->parallel && rc == CURLE_OK; i++) {
		struct slot *s = &r->slots[i];
		CURL *c = s->curl = curl_easy_init();

		if (c == NULL)
			return -1;
		rc |= curl_easy_setopt(c, CURLOPT_PRIVATE, (char *)s);
		rc |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, s->errbuf);
		rc |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		rc |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
		rc |= curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
		rc |= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o->timeout_ms);
		rc |= curl_easy_setopt(
		    c, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
		rc |= curl_easy_setopt(
		    c, CURLOPT_SSL_VERIFYPEER, o->insecure ? 0L : 1L);
		rc |= curl_easy_setopt(
		    c, CURLOPT_SSL_VERIFYHOST, o->insecure ? 0L : 2L);
		rc |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	}
	return rc == CURLE_OK ? 0 : -1;
}

static void
slots_close(struct replay *r)
{
	int i;

	for (i = 0; r->slots != NULL && i < r->o->parallel; i++) {
		if (r->slots[i].state == SLOT_RUNNING)
			curl_multi_remove_handle(r->multi, r->slots[i].curl);
		slot_clear(&r->slots[i]);
		if (r->slots[i].curl != NULL)
			curl_easy_cleanup(r->slots[i].curl);
	}
	free(r->slots);
	if (r->multi != NULL)
		curl_multi_cleanup(r->multi);
}

/* Sets the tag that marks this file's replays: a digest of the host
 * name, device and inode, so that another file's replays, relayed from
 * another host, are not taken for echoes. */
static void
echo_tag_set(struct replay *r)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;
	char text[512], host[256] = "";

	gethostname(host, sizeof(host) - 1);
	snprintf(text, sizeof(text), "%s %llu %llu", host, r->dev, r->ino);
	if (EVP_Digest(text, strlen(text), md, &len, EVP_sha256(), NULL) != 1)
		return;
	for (i = 0; i < 8 && i < len; i++)
		snprintf(r->echo_tag + 2 * i, 3, "%02x", md[i]);
}

/* Opens FILE, or takes standard input, and notes whether it is a
 * regular file: its identity, its size now and the offset read from. */
static int
input_open(struct replay *r, const char *file)
{
	struct stat st;
	int regular;

	r->in.name = file != NULL && strcmp(file, "-") != 0 ? file : "stdin";
	if (file != NULL && strcmp(file, "-") != 0)
		r->in.fd = open(file, O_RDONLY | O_CLOEXEC);
	if (r->in.fd == -1) {
		msg_error("%s: %s", file, strerror(errno));
		return EX_NOINPUT;
	}
	r->in.limit = -1;
	regular = fstat(r->in.fd, &st) == 0 && S_ISREG(st.st_mode);
	if (regular)
		r->in.pos = lseek(r->in.fd, 0, SEEK_CUR);
	if (regular && r->in.pos != -1) {
		r->by_offset = 1;
		r->dev = st.st_dev;
		r->ino = st.st_ino;
		r->in.limit = st.st_size;
		r->last.off = r->in.pos;
		echo_tag_set(r);
	} else {
		r->in.pos = 0;
	}
	r->in.cap = 64 * 1024;
	r->in.buf = malloc(r->in.cap);
	return r->in.buf != NULL ? 0 : EX_OSERR;
}

/* Takes the lock, reads the cursor and moves the input to where it
 * says. */
static int
cursor_open(struct replay *r)
{
	struct replay_cursor c;
	int status;

	status = cursor_lock(r);
	if (status == 0)
		status = cursor_load(r, &c);
	if (status != 0)
		return status;
	if (r->by_offset)
		r->last.off = 0;
	cursor_apply(r, &c);
	if (r->by_offset) {
		r->in.pos = lseek(r->in.fd, (off_t)r->last.off, SEEK_SET);
		if (r->in.pos == -1) {
			msg_error("%s: %s", r->in.name, strerror(errno));
			return EX_IOERR;
		}
	}
	return 0;
}

/* Opens the input, the lock, the cursor and --failed, in that order. */
static int
replay_open(struct replay *r, const char *file)
{
	int status;

	status = input_open(r, file);
	if (status == 0 && r->o->cursor != NULL)
		status = cursor_open(r);
	if (status == 0 && r->o->failed != NULL) {
		r->failed_fd = open(r->o->failed,
		    O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (r->failed_fd == -1) {
			msg_error("%s: %s", r->o->failed, strerror(errno));
			status = EX_CANTCREAT;
		}
	}
	if (status == 0 && slots_open(r) == -1) {
		msg_error("libcurl could not be set up");
		status = EX_OSERR;
	}
	return status;
}

/* Ends the run: the last cursor, --failed synced, the summary. */
static int
replay_close(struct replay *r)
{
	checkpoint(r);
	if (r->failed_fd != -1 && r->failed_unsynced &&
	    fsync(r->failed_fd) == -1) {
		msg_error("%s: %s", r->o->failed, strerror(errno));
		r->write_error = 1;
	}
	if (r->progress)
		fputs("\r\033[K", stderr);
	if (!r->so->quiet)
		print_counts(r, "", "\n");
	if (r->write_error)
		return EX_CANTCREAT;
	if (r->read_error)
		return EX_IOERR;
	if (r->retryable)
		return EX_TEMPFAIL;
	return r->final ? EX_DATAERR : 0;
}

int
replay_run(const struct replay_options *o, const struct send_options *so,
    const char *url, const char *file)
{
	struct replay r = {
	    .o = o, .so = so, .url = url, .failed_fd = -1, .lock_fd = -1};
	int status;

	srandom((unsigned)time(NULL) ^ (unsigned)getpid());
	r.in.fd = STDIN_FILENO;
	status = replay_open(&r, file);
	if (status == 0) {
		r.progress = !so->quiet && isatty(STDERR_FILENO);
		r.cursor_at = now_ms();
		replay_loop(&r);
		status = replay_close(&r);
	}
	slots_close(&r);
	free(r.in.buf);
	if (r.in.fd != STDIN_FILENO && r.in.fd != -1)
		close(r.in.fd);
	if (r.failed_fd != -1)
		close(r.failed_fd);
	if (r.lock_fd != -1)
		close(r.lock_fd);
	return status;
}
