/*
 * The $trigger of an envelope, built from one request that libmicrohttpd
 * has parsed.  It holds a ULID id, the time received, method, raw path,
 * decoded query, lowercased headers and the body by content type.  The
 * exact body bytes go in raw when they are valid UTF-8, else raw_base64.
 * A JSON body that does not parse, or a form that libmicrohttpd's post
 * processor rejects, gives no trigger, and the caller responds 400.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "whook.h"

#define FORM_BUFFER 65536

enum body_kind {
	BODY_NONE,
	BODY_JSON,
	BODY_URLENCODED,
	BODY_MULTIPART,
	BODY_TEXT
};

/* One field of a form body as the post processor hands it over. */
struct form {
	jv fields;
	char *key, *filename, *ctype;
	char *data;
	size_t len, cap;
	int failed;
	int nul; /* a field's value contains a NUL byte */
};

static int
ulid_bit(const unsigned char b[16], int k)
{
	if (k < 0)
		return 0;
	return (b[k / 8] >> (7 - k % 8)) & 1;
}

/* Encodes a ULID: 48 bits of milliseconds and 80 random bits, 128 bits
 * in all, as 26 Crockford base32 digits, the first holding 3 bits. */
void
trigger_ulid(char out[TRIGGER_ID_LEN + 1], unsigned long long ms,
    const unsigned char random[10])
{
	static const char digits[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	unsigned char b[16];
	int i, j, v;

	for (i = 0; i < 6; i++)
		b[i] = (ms >> (40 - 8 * i)) & 0xff;
	memcpy(b + 6, random, 10);
	for (i = 0; i < TRIGGER_ID_LEN; i++) {
		v = 0;
		for (j = 0; j < 5; j++)
			v = v << 1 | ulid_bit(b, 5 * i - 2 + j);
		out[i] = digits[v];
	}
	out[TRIGGER_ID_LEN] = '\0';
}

/* Makes an id from the clock and 10 random bytes.  Each thread draws the
 * bytes of 100 ids at a time, because one RAND_bytes call a request took
 * 2% of a request thread's time. */
int
trigger_new_id(char out[TRIGGER_ID_LEN + 1])
{
	static _Thread_local unsigned char pool[100 * 10];
	static _Thread_local size_t used = sizeof(pool);
	struct timespec now;

	if (used == sizeof(pool)) {
		if (RAND_bytes(pool, sizeof(pool)) != 1)
			return -1;
		used = 0;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	trigger_ulid(out,
	    (unsigned long long)now.tv_sec * 1000 + now.tv_nsec / 1000000,
	    pool + used);
	used += 10;
	return 0;
}

/* Returns whether ID is 26 upper-case Crockford base32 digits, the first
 * of them 0 to 7 (the 3 high bits of 128), as trigger_ulid writes it. */
int
trigger_id_valid(const char *id)
{
	static const char digits[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

	if (strlen(id) != TRIGGER_ID_LEN || id[0] < '0' || id[0] > '7')
		return 0;
	return strspn(id, digits) == TRIGGER_ID_LEN;
}

/* Formats a time as RFC 3339 UTC with milliseconds. */
void
trigger_time(char *buf, size_t len, long long sec, long nsec)
{
	/* Each thread keeps the text of the last second it formatted. */
	static _Thread_local long long last_sec = -1;
	static _Thread_local char last[32];
	struct tm tm;
	time_t t = (time_t)sec;

	if (sec != last_sec) {
		gmtime_r(&t, &tm);
		if (strftime(last, sizeof(last), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
			last[0] = '\0';
		last_sec = sec;
	}
	snprintf(buf, len, "%s.%03ldZ", last, nsec / 1000000);
}

static const char *
skip_space(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* Stores the media type of a Content-Type value, lowercased, in TYPE.
 * Returns 0, or -1 when there is none or it does not fit. */
int
trigger_media_type(const char *ctype, char *type, size_t len)
{
	size_t n = 0;

	ctype = skip_space(ctype);
	while (ctype[n] != '\0' && ctype[n] != ';' && ctype[n] != ' ' &&
	       ctype[n] != '\t') {
		if (n + 1 >= len)
			return -1;
		type[n] = ctype[n] >= 'A' && ctype[n] <= 'Z'
			      ? ctype[n] + 'a' - 'A'
			      : ctype[n];
		n++;
	}
	type[n] = '\0';
	return n > 0 ? 0 : -1;
}

/* Copies one parameter value, a token or a quoted string (RFC 9110
 * section 5.6.6), from S into VALUE. Returns the end of it. */
static const char *
param_value(const char *s, char *value, size_t len, int *fits)
{
	size_t n = 0;
	int quoted = *s == '"';

	if (quoted)
		s++;
	for (; *s != '\0'; s++) {
		if (quoted && *s == '"') {
			s++;
			break;
		}
		if (!quoted && (*s == ';' || *s == ' ' || *s == '\t'))
			break;
		if (quoted && *s == '\\' && s[1] != '\0')
			s++;
		if (n + 1 < len)
			value[n++] = *s;
		else
			*fits = 0;
	}
	value[n] = '\0';
	return s;
}

/* Finds parameter NAME (case-insensitive) of a Content-Type value and
 * stores its value in VALUE. Returns 1, or 0 when it is absent or does
 * not fit. */
int
trigger_param(const char *ctype, const char *name, char *value, size_t len)
{
	const char *s = strchr(ctype, ';'), *eq;
	size_t nlen = strlen(name);
	int fits, match;

	while (s != NULL && *s == ';') {
		s = skip_space(s + 1);
		eq = strchr(s, '=');
		if (eq == NULL)
			return 0;
		match =
		    (size_t)(eq - s) == nlen && strncasecmp(s, name, nlen) == 0;
		fits = 1;
		s = param_value(eq + 1, value, len, &fits);
		if (match)
			return fits;
		s = strchr(s, ';');
	}
	return 0;
}

static enum body_kind
body_kind(const char *ctype)
{
	char type[256];
	size_t n;

	if (ctype == NULL || trigger_media_type(ctype, type, sizeof(type)))
		return BODY_NONE;
	n = strlen(type);
	if (strcmp(type, "application/json") == 0 ||
	    (n > 5 && strcmp(type + n - 5, "+json") == 0))
		return BODY_JSON;
	if (strcmp(type, "application/x-www-form-urlencoded") == 0)
		return BODY_URLENCODED;
	if (strcmp(type, "multipart/form-data") == 0)
		return BODY_MULTIPART;
	if (strncmp(type, "text/", 5) == 0)
		return BODY_TEXT;
	return BODY_NONE;
}

/* Sets KEY in OBJ to VALUE, or makes an array of every value in order
 * when KEY repeats. */
static jv
object_add(jv obj, const char *key, jv value)
{
	jv old = jv_object_get(jv_copy(obj), jv_string(key));

	if (!jv_is_valid(old)) {
		jv_free(old);
		return jv_object_set(obj, jv_string(key), value);
	}
	/* The object lets go of the array first, so that the append below
	 * grows the one copy in place: with the object's reference still
	 * held, jv copies the whole array on each repeat of the key. */
	obj = jv_object_set(obj, jv_string(key), jv_null());
	if (jv_get_kind(old) != JV_KIND_ARRAY)
		old = jv_array_append(jv_array(), old);
	old = jv_array_append(old, value);
	return jv_object_set(obj, jv_string(key), old);
}

static jv
base64(const char *data, size_t len)
{
	unsigned char *out = malloc(4 * ((len + 2) / 3) + 1);
	jv s;

	if (out == NULL)
		return jv_invalid_with_msg(jv_string("out of memory"));
	EVP_EncodeBlock(out, (const unsigned char *)data, (int)len);
	s = jv_string((const char *)out);
	free(out);
	return s;
}

/* Adds the field collected so far, a string, or an object for a part
 * that carries a file name. */
static void
form_flush(struct form *f)
{
	jv v;

	if (f->key == NULL)
		return;
	if (f->filename != NULL) {
		v = jv_object();
		v = jv_object_set(
		    v, jv_string("filename"), jv_string(f->filename));
		v = jv_object_set(v, jv_string("content_type"),
		    f->ctype ? jv_string(f->ctype) : jv_null());
		v = jv_object_set(v, jv_string("size"), jv_number(f->len));
		v = jv_object_set(
		    v, jv_string("data"), base64(f->data, f->len));
	} else {
		/* A NUL and digits would read as a marked big integer. */
		if (f->len > 0 && memchr(f->data, '\0', f->len) != NULL)
			f->nul = 1;
		v = jv_string_sized(f->data ? f->data : "", (int)f->len);
	}
	f->fields = object_add(f->fields, f->key, v);
	free(f->key);
	free(f->filename);
	free(f->ctype);
	f->key = f->filename = f->ctype = NULL;
	f->len = 0;
}

static int
form_append(struct form *f, const char *data, size_t size)
{
	char *grown;
	size_t cap;

	if (f->len + size <= f->cap)
		goto copy;
	cap = f->cap ? f->cap : 256;
	while (cap < f->len + size)
		cap *= 2;
	grown = realloc(f->data, cap);
	if (grown == NULL)
		return -1;
	f->data = grown;
	f->cap = cap;
copy:
	if (size > 0)
		memcpy(f->data + f->len, data, size);
	f->len += size;
	return 0;
}

static char *
strdup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

/* The post processor calls this once for each piece of a field: OFF 0
 * starts a new field, a larger OFF continues the current one. */
static enum MHD_Result
form_field(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *filename, const char *ctype, const char *encoding,
    const char *data, uint64_t off, size_t size)
{
	struct form *f = cls;

	(void)kind;
	(void)encoding;
	if (off == 0 || f->key == NULL || strcmp(f->key, key) != 0) {
		form_flush(f);
		f->key = strdup(key);
		f->filename = strdup_or_null(filename);
		f->ctype = strdup_or_null(ctype);
		if (f->key == NULL) {
			f->failed = 1;
			return MHD_NO;
		}
	}
	if (form_append(f, data, size) == -1) {
		f->failed = 1;
		return MHD_NO;
	}
	return MHD_YES;
}

/*
 * Returns whether the last field of a urlencoded body has no '='
 * ("a=1&flag").  libmicrohttpd 0.9.75's post processor rejects such a
 * body, which form encoders do send, so it gets a "=" appended, which
 * gives that field the value "" as the WHATWG URL standard does.
 */
static int
needs_equals(const char *body, size_t len)
{
	const char *amp = memrchr(body, '&', len);
	const char *last = amp != NULL ? amp + 1 : body;
	size_t n = body + len - last;

	return n > 0 && memchr(last, '=', n) == NULL;
}

static jv
body_form(
    struct MHD_Connection *conn, const char *body, size_t len, int urlencoded)
{
	struct form f = {.fields = jv_object()};
	struct MHD_PostProcessor *pp;
	int ok;

	if (len == 0) {
		jv_free(f.fields);
		return jv_object();
	}
	pp = MHD_create_post_processor(conn, FORM_BUFFER, form_field, &f);
	if (pp == NULL) {
		jv_free(f.fields);
		return jv_invalid_with_msg(
		    jv_string("invalid form body: "
			      "unsupported content type"));
	}
	ok = MHD_post_process(pp, body, len) == MHD_YES;
	if (ok && urlencoded && needs_equals(body, len))
		ok = MHD_post_process(pp, "=", 1) == MHD_YES;
	ok = MHD_destroy_post_processor(pp) == MHD_YES && ok && !f.failed;
	form_flush(&f);
	free(f.data);
	if (!ok || f.nul) {
		jv_free(f.fields);
		return jv_invalid_with_msg(jv_string(
		    f.nul && ok ? "invalid form body: a field value contains "
				  "a NUL byte"
				: "invalid form body"));
	}
	return f.fields;
}

/* Parses a JSON body, and leaves null each long string that READS
 * cannot reach. */
static jv
body_json(const char *body, size_t len, const struct reads *reads)
{
	static const struct place at[] = {{"$trigger", 8, 0}, {"body", 4, 0}};
	const char *why, *cut;
	int left_out;
	jv v, msg;

	if (len >= 3 && memcmp(body, "\xef\xbb\xbf", 3) == 0) {
		body += 3;
		len -= 3;
	}
	if (len == 0)
		return jv_null();
	if (!utf8_valid(body, len))
		return jv_invalid_with_msg(jv_string("invalid JSON body: "
						     "invalid UTF-8"));
	v = json_parse_unread(body, len, reads, at, 2, &left_out);
	if (jv_is_valid(v))
		return v;
	msg = jv_invalid_get_msg(v);
	/* jq 1.6 quotes the whole input after "(while parsing": a body
	 * does not belong in a log line. */
	why = jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg)
						 : "parse error";
	cut = strstr(why, " (while parsing");
	if (cut == NULL)
		cut = why + strlen(why);
	v = jv_invalid_with_msg(
	    jv_string_fmt("invalid JSON body: %.*s", (int)(cut - why), why));
	jv_free(msg);
	return v;
}

/* Returns whether a body of LEN bytes at S can be carried as a string:
 * valid UTF-8 without NUL, which with digits after it would read as a
 * marked big integer.  Other bodies go as raw_base64. */
static int
raw_as_text(const char *s, size_t len)
{
	return memchr(s, '\0', len) == NULL && utf8_valid(s, len);
}

static jv
body_value(struct MHD_Connection *conn, const struct trigger_request *rq)
{
	const char *ctype = MHD_lookup_connection_value(
	    conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);

	switch (body_kind(ctype)) {
	case BODY_JSON:
		return body_json(rq->body, rq->len, rq->reads);
	case BODY_URLENCODED:
		/* libmicrohttpd's post processor would cut a value at a raw
		 * NUL byte. */
		if (memchr(rq->body, '\0', rq->len) != NULL)
			return jv_invalid_with_msg(
			    jv_string("invalid form body: a NUL byte"));
		return body_form(conn, rq->body, rq->len, 1);
	case BODY_MULTIPART:
		return body_form(conn, rq->body, rq->len, 0);
	case BODY_TEXT:
		if (rq->len > 0 && raw_as_text(rq->body, rq->len))
			return jv_string_sized(rq->body, (int)rq->len);
		return jv_null();
	default:
		return jv_null();
	}
}

/* Adds one header, its trailing spaces and tabs removed: they are
 * optional whitespace around the value (RFC 9110 section 5.5). */
static enum MHD_Result
add_header(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
    const char *value, size_t value_size)
{
	jv *headers = cls, joined, name;
	char lower[256], *buf = lower;
	size_t i;

	(void)kind;
	if (key_size > sizeof(lower) && (buf = malloc(key_size)) == NULL)
		return MHD_YES;
	for (i = 0; i < key_size; i++) {
		buf[i] = key[i];
		if (buf[i] >= 'A' && buf[i] <= 'Z')
			buf[i] += 'a' - 'A';
	}
	while (value_size > 0 &&
	       (value[value_size - 1] == ' ' || value[value_size - 1] == '\t'))
		value_size--;
	/* One key for both lookups: libjq hashes a string once. */
	name = jv_string_sized(buf, (int)key_size);
	if (buf != lower)
		free(buf);
	joined = jv_object_get(jv_copy(*headers), jv_copy(name));
	if (jv_get_kind(joined) == JV_KIND_STRING) {
		joined = jv_string_append_str(joined,
		    strcmp(jv_string_value(name), "cookie") == 0 ? "; " : ", ");
		joined = jv_string_append_buf(joined, value, (int)value_size);
	} else {
		jv_free(joined);
		joined = jv_string_sized(value, (int)value_size);
	}
	*headers = jv_object_set(*headers, name, joined);
	return MHD_YES;
}

static enum MHD_Result
add_argument(
    void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	jv *query = cls;

	(void)kind;
	*query = object_add(*query, key, jv_string(value ? value : ""));
	return MHD_YES;
}

/* The state of one header_check pass over the header fields. */
struct header_scan {
	const char *why;     /* the first problem found, or NULL */
	uintptr_t first_key; /* where the first field name is */
	uintptr_t value_end; /* where the previous field value ends */
};

/* Returns whether C is a tchar, a byte of a token (RFC 9110 5.6.2). */
static int
is_tchar(unsigned char c)
{
	return c > ' ' && c < 0x7f && strchr("\"(),/:;<=>?@[\\]{}", c) == NULL;
}

static int
all_bytes(uintptr_t from, uintptr_t to, const char *set)
{
	for (; from < to; from++)
		if (memchr(set, *(const char *)from, strlen(set) + 1) == NULL)
			return 0;
	return 1;
}

/*
 * Checks where libmicrohttpd 0.9.75 left a field in its read buffer,
 * because the field name and value it hands over do not show every
 * malformed line.  It parses each line in place: the colon becomes
 * NUL and the value starts after the spaces that follow, and CR and LF
 * become NUL.  It appends an obs-fold line to the field name, so that
 * "X-A-: v" and " B" make a field "X-A-B", whose value then no longer
 * follows its name.  A NUL byte in a value ends the string early, so
 * the next field no longer starts one or two bytes after it.
 * NOTE: this layout is that of 0.9.75, so other versions skip it.
 */
static void
layout_check(struct header_scan *hs, uintptr_t key, size_t key_size,
    uintptr_t value, size_t value_size)
{
	if (value <= key + key_size ||
	    !all_bytes(key + key_size + 1, value, " \t"))
		hs->why = "invalid header line: obs-fold or no colon after "
			  "the name";
	else if (hs->value_end != 0 &&
		 (key < hs->value_end + 1 || key > hs->value_end + 2 ||
		     !all_bytes(hs->value_end, key, "")))
		hs->why = "invalid header value: NUL byte";
	if (hs->first_key == 0)
		hs->first_key = key;
	hs->value_end = value + value_size;
}

static enum MHD_Result
scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
    size_t key_size, const char *value, size_t value_size)
{
	struct header_scan *hs = cls;
	size_t i;

	(void)kind;
	for (i = 0; i < key_size && is_tchar(key[i]); i++)
		continue;
	if (key_size == 0 || i < key_size)
		hs->why = "invalid header name";
	else if (value == NULL || memchr(value, '\0', value_size) != NULL ||
		 memchr(value, '\r', value_size) != NULL ||
		 memchr(value, '\n', value_size) != NULL)
		hs->why = "invalid header value: NUL, CR or LF";
	else if (MHD_VERSION <= 0x00097500)
		layout_check(
		    hs, (uintptr_t)key, key_size, (uintptr_t)value, value_size);
	return hs->why == NULL ? MHD_YES : MHD_NO;
}

/* Returns whether the request line starts at P: the method, a space or
 * the NUL that replaced it, and the path up to its first '%', which the
 * in-place percent-decoding of the path leaves as it was. */
static int
request_line_at(uintptr_t p, const char *method, const char *path)
{
	const char *s = (const char *)p;
	size_t mlen = strlen(method);

	return memcmp(s, method, mlen) == 0 &&
	       (s[mlen] == ' ' || s[mlen] == '\0') &&
	       memcmp(s + mlen + 1, path, strcspn(path, "%")) == 0;
}

/*
 * Checks that only line ends and the empty line follow the last field
 * value, up to the end of the header block that libmicrohttpd counted,
 * so that a NUL byte cannot hide the rest of the last value either.
 * The block starts with the request line.  The scan goes down from the
 * first field and stops at the first place that looks like the start
 * of it, so it never reads below the real start.
 */
static const char *
tail_check(struct MHD_Connection *conn, const struct header_scan *hs,
    const struct trigger_request *rq)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
	    conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	size_t back, min = strlen(rq->method) + 1 + strcspn(rq->path, "%");
	uintptr_t start = 0, end;

	if (ci == NULL || hs->first_key == 0)
		return NULL;
	for (back = min + 1; back <= ci->header_size && start == 0; back++)
		if (request_line_at(hs->first_key - back, rq->method, rq->path))
			start = hs->first_key - back;
	end = start + ci->header_size;
	if (start == 0 || end < hs->value_end + 2 || end > hs->value_end + 4 ||
	    !all_bytes(hs->value_end, end, ""))
		return "invalid header value: NUL byte";
	return NULL;
}

/* Returns why the request's header block is invalid, or NULL. */
static const char *
header_check(struct MHD_Connection *conn, const struct trigger_request *rq)
{
	struct header_scan hs = {NULL, 0, 0};

	MHD_get_connection_values_n(conn, MHD_HEADER_KIND, scan_header, &hs);
	if (hs.why == NULL && MHD_VERSION <= 0x00097500)
		hs.why = tail_check(conn, &hs, rq);
	if (hs.why != NULL)
		return hs.why;
	/* RFC 9112 6.1: a request with both may be a smuggling attempt. */
	if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		MHD_HTTP_HEADER_CONTENT_LENGTH) != NULL &&
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL)
		return "Content-Length with Transfer-Encoding";
	return NULL;
}

jv
trigger_build(struct MHD_Connection *conn, const struct trigger_request *rq)
{
	jv t = jv_object(), headers = jv_object(), query = jv_object();
	jv body;
	const char *why = header_check(conn, rq);

	if (why != NULL)
		body = jv_invalid_with_msg(jv_string(why));
	else
		body = body_value(conn, rq);
	if (!jv_is_valid(body)) {
		jv_free(t);
		jv_free(headers);
		jv_free(query);
		return body;
	}
	MHD_get_connection_values_n(
	    conn, MHD_HEADER_KIND, add_header, &headers);
	MHD_get_connection_values(
	    conn, MHD_GET_ARGUMENT_KIND, add_argument, &query);
	t = jv_object_set(t, jv_string("id"), jv_string(rq->id));
	t = jv_object_set(
	    t, jv_string("received_at"), jv_string(rq->received_at));
	t = jv_object_set(t, jv_string("method"), jv_string(rq->method));
	t = jv_object_set(t, jv_string("path"), jv_string(rq->path));
	t = jv_object_set(t, jv_string("query"), query);
	t = jv_object_set(t, jv_string("headers"), headers);
	t = jv_object_set(t, jv_string("body"), body);
	if (rq->reads != NULL && !reads_raw(rq->reads))
		; /* the in-process flow reads neither */
	else if (raw_as_text(rq->body, rq->len))
		t = jv_object_set(t, jv_string("raw"),
		    jv_string_sized(rq->body, (int)rq->len));
	else
		t = jv_object_set(
		    t, jv_string("raw_base64"), base64(rq->body, rq->len));
	t = jv_object_set(t, jv_string("remote"), jv_string(rq->remote));
	return t;
}
