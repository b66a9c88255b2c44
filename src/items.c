/*
 * Request items in HTTPie's syntax, for whook-send: each command-line
 * item becomes a header, a query parameter or a field of the JSON body.
 * An item is split at its first unescaped separator, the longest one
 * when several start there, as HTTPie does.  A backslash makes the next
 * ':', '=', '@' or '\' literal.  Field values from ':=' go through
 * json_parse, so integers beyond 2^53 reach the body digit for digit.
 * Header values may come from a file, so that no secret is on the
 * command line; those are flagged for masking in traces.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "whook.h"

enum item_kind {
	ITEM_JSON_FILE,
	ITEM_QUERY,
	ITEM_JSON,
	ITEM_STRING_FILE,
	ITEM_STRING,
	ITEM_HEADER
};

/* Longest first, so that ":=@" wins over ":=" and ":" at one place. */
static const struct {
	const char *text;
	enum item_kind kind;
} separators[] = {
    {":=@", ITEM_JSON_FILE},
    {"==", ITEM_QUERY},
    {":=", ITEM_JSON},
    {"=@", ITEM_STRING_FILE},
    {"=", ITEM_STRING},
    {":", ITEM_HEADER},
};

static int
is_special(char c)
{
	return c == ':' || c == '=' || c == '@' || c == '\\';
}

/* Copies N bytes of S with each backslash escape replaced by its
 * character.  A backslash before any other character stays. */
static char *
unescape(const char *s, size_t n)
{
	char *out = malloc(n + 1);
	size_t i, o = 0;

	if (out == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n && is_special(s[i + 1]))
			i++;
		out[o++] = s[i];
	}
	out[o] = '\0';
	return out;
}

/* Finds ITEM's separator: returns its index in separators[] and its
 * offset in *at, or -1 when the item has none. */
static int
find_separator(const char *item, size_t *at)
{
	size_t i, k, len;

	for (i = 0; item[i] != '\0'; i++) {
		if (item[i] == '\\' && is_special(item[i + 1])) {
			i++;
			continue;
		}
		for (k = 0; k < sizeof(separators) / sizeof(separators[0]);
		     k++) {
			len = strlen(separators[k].text);
			if (strncmp(item + i, separators[k].text, len) == 0) {
				*at = i;
				return (int)k;
			}
		}
	}
	return -1;
}

void
items_init(struct items *it)
{
	memset(it, 0, sizeof(*it));
	it->fields = jv_null();
}

/* Reads all of PATH ("-" for standard input) into a NUL-terminated
 * buffer, for the caller to free. */
int
items_read_file(
    const char *path, char **data, size_t *len, char *why, size_t whylen)
{
	size_t cap = 4096, used = 0;
	char *buf = malloc(cap), *grown;
	ssize_t n = 0;
	int fd = STDIN_FILENO;

	if (buf != NULL && strcmp(path, "-") != 0)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (buf == NULL) {
		snprintf(why, whylen, "%s: %s", path, strerror(ENOMEM));
		return EX_OSERR;
	}
	if (fd == -1) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		free(buf);
		return EX_NOINPUT;
	}
	for (;;) {
		if (used + 1 == cap) {
			grown = realloc(buf, cap * 2);
			if (grown == NULL)
				break;
			buf = grown;
			cap *= 2;
		}
		n = read(fd, buf + used, cap - used - 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		used += n;
	}
	if (fd != STDIN_FILENO)
		close(fd);
	if (used + 1 == cap || n == -1) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		free(buf);
		return EX_IOERR;
	}
	buf[used] = '\0';
	*data = buf;
	*len = used;
	return 0;
}

/* Returns whether NAME is an HTTP field name (RFC 9110 token). */
static int
header_name_valid(const char *name)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";
	size_t i;

	for (i = 0; name[i] != '\0'; i++) {
		unsigned char c = name[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
			(c >= 'A' && c <= 'Z') || strchr(extra, c) != NULL))
			return 0;
	}
	return i > 0;
}

/* Stores header NAME with VALUE (both taken over), with the optional
 * white space around the value removed. */
static int
push_header(struct items *it, char *name, char *value, int secret, char *why,
    size_t whylen)
{
	struct items_header *grown;
	size_t start = strspn(value, " \t"), end = strlen(value);
	size_t len = end;

	if (!header_name_valid(name)) {
		snprintf(why, whylen, "\"%s\": invalid header name", name);
		goto fail;
	}
	if (strpbrk(value, "\r\n") != NULL) {
		snprintf(why, whylen,
		    "%s: header value contains a line "
		    "break",
		    name);
		goto fail;
	}
	while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'))
		end--;
	/* The bytes moved out of place may be a secret's: clear them. */
	memmove(value, value + start, end - start);
	memset(value + (end - start), 0, len - (end - start));
	grown = realloc(it->headers, (it->nheaders + 1) * sizeof(*grown));
	if (grown == NULL) {
		snprintf(why, whylen, "%s", strerror(errno));
		goto fail;
	}
	it->headers = grown;
	it->headers[it->nheaders++] =
	    (struct items_header){name, value, secret};
	return 0;
fail:
	free(name);
	secret_free(value, strlen(value));
	return EX_USAGE;
}

/* Adds header NAME whose value is RAW, or the contents of a file when
 * RAW is "@FILE" and its '@' was not escaped. */
static int
add_header(struct items *it, char *name, char *raw, int from_file, char *why,
    size_t whylen)
{
	char *value;
	size_t len;

	if (!from_file)
		return push_header(it, name, raw, 0, why, whylen);
	if (secret_load(raw, &value, &len, why, whylen) == -1) {
		free(name);
		free(raw);
		return EX_NOINPUT;
	}
	free(raw);
	if (memchr(value, '\0', len) != NULL) {
		snprintf(
		    why, whylen, "%s: header value contains a NUL byte", name);
		free(name);
		secret_free(value, len);
		return EX_DATAERR;
	}
	return push_header(it, name, value, 1, why, whylen);
}

/* Appends name=value, each percent-encoded, to the query string. */
static int
add_query(struct items *it, const char *name, const char *value)
{
	char *ename = curl_easy_escape(NULL, name, 0);
	char *evalue = curl_easy_escape(NULL, value, 0);
	size_t old = it->query != NULL ? strlen(it->query) : 0;
	char *grown = NULL;

	if (ename != NULL && evalue != NULL)
		grown = realloc(
		    it->query, old + strlen(ename) + strlen(evalue) + 3);
	if (grown != NULL) {
		snprintf(grown + old, strlen(ename) + strlen(evalue) + 3,
		    "%s%s=%s", old > 0 ? "&" : "", ename, evalue);
		it->query = grown;
	}
	curl_free(ename);
	curl_free(evalue);
	return grown != NULL ? 0 : EX_OSERR;
}

static void
set_field(struct items *it, const char *name, jv value)
{
	if (jv_get_kind(it->fields) != JV_KIND_OBJECT) {
		jv_free(it->fields);
		it->fields = jv_object();
	}
	it->fields = jv_object_set(it->fields, jv_string(name), value);
}

/* Parses TEXT, N bytes from WHERE (the item or a file), as a field's
 * JSON value. */
static int
parse_field_json(const char *text, size_t n, const char *where, jv *value,
    char *why, size_t whylen)
{
	jv msg;

	*value = json_parse(text, n);
	if (jv_is_valid(*value))
		return 0;
	msg = jv_invalid_get_msg(*value);
	snprintf(why, whylen, "%s: invalid JSON: %s", where,
	    jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg)
					       : "parse error");
	jv_free(msg);
	return 1;
}

/* Adds a field whose value is a file's contents, as a string (JSON 0)
 * or as JSON text (JSON 1). */
static int
add_file_field(struct items *it, const char *name, const char *path, int json,
    char *why, size_t whylen)
{
	char *data;
	size_t len;
	jv value = jv_invalid();
	int status;

	status = items_read_file(path, &data, &len, why, whylen);
	if (status != 0)
		return status;
	if (json && parse_field_json(data, len, path, &value, why, whylen))
		status = EX_DATAERR;
	else if (!json &&
		 (memchr(data, '\0', len) != NULL || !utf8_valid(data, len))) {
		snprintf(why, whylen,
		    "%s: not UTF-8 text; send binary data "
		    "with -d @%s",
		    path, path);
		status = EX_DATAERR;
	} else if (!json) {
		value = jv_string_sized(data, (int)len);
	}
	free(data);
	if (status == 0)
		set_field(it, name, value);
	return status;
}

/* Adds the item whose unescaped parts are KEY and VALUE. */
static int
add_parts(struct items *it, enum item_kind kind, char *key, char *value,
    int at_sign, char *why, size_t whylen)
{
	jv json;
	int status = 0;

	switch (kind) {
	case ITEM_HEADER:
		return add_header(it, key, value, at_sign, why, whylen);
	case ITEM_QUERY:
		status = add_query(it, key, value);
		break;
	case ITEM_STRING:
		set_field(it, key, jv_string(value));
		break;
	case ITEM_JSON:
		if (parse_field_json(
			value, strlen(value), key, &json, why, whylen))
			status = EX_USAGE;
		else
			set_field(it, key, json);
		break;
	case ITEM_STRING_FILE:
	case ITEM_JSON_FILE:
		status = add_file_field(
		    it, key, value, kind == ITEM_JSON_FILE, why, whylen);
		break;
	}
	free(key);
	free(value);
	if (status == EX_OSERR)
		snprintf(why, whylen, "%s", strerror(ENOMEM));
	return status;
}

int
items_add(struct items *it, const char *item, char *why, size_t whylen)
{
	size_t at, len;
	char *key, *value;
	int k;

	k = find_separator(item, &at);
	if (k == -1) {
		snprintf(why, whylen,
		    "\"%s\": not a request item (Header:Value"
		    ", name==value, field=value or field:=json)",
		    item);
		return EX_USAGE;
	}
	len = strlen(separators[k].text);
	key = unescape(item, at);
	value = unescape(item + at + len, strlen(item + at + len));
	if (key == NULL || value == NULL) {
		free(key);
		free(value);
		snprintf(why, whylen, "%s", strerror(ENOMEM));
		return EX_OSERR;
	}
	return add_parts(it, separators[k].kind, key, value,
	    item[at + len] == '@', why, whylen);
}

int
items_add_header_line(
    struct items *it, const char *line, char *why, size_t whylen)
{
	const char *colon = strchr(line, ':');
	const char *raw;
	char *name, *value;

	if (colon == NULL) {
		snprintf(
		    why, whylen, "\"%s\": not a header (Name: value)", line);
		return EX_USAGE;
	}
	raw = colon + 1 + strspn(colon + 1, " \t");
	name = strndup(line, colon - line);
	value = strdup(raw);
	if (name == NULL || value == NULL) {
		free(name);
		free(value);
		snprintf(why, whylen, "%s", strerror(ENOMEM));
		return EX_OSERR;
	}
	return add_header(it, name, value, raw[0] == '@', why, whylen);
}

int
items_set_header(struct items *it, const char *name, const char *value,
    int secret, char *why, size_t whylen)
{
	char *n = strdup(name), *v = strdup(value);

	if (n == NULL || v == NULL) {
		free(n);
		free(v);
		snprintf(why, whylen, "%s", strerror(ENOMEM));
		return EX_OSERR;
	}
	return push_header(it, n, v, secret, why, whylen);
}

const struct items_header *
items_header(const struct items *it, const char *name)
{
	size_t i;

	for (i = 0; i < it->nheaders; i++)
		if (strcasecmp(it->headers[i].name, name) == 0)
			return &it->headers[i];
	return NULL;
}

void
items_free(struct items *it)
{
	size_t i;

	for (i = 0; i < it->nheaders; i++) {
		free(it->headers[i].name);
		secret_free(it->headers[i].value, strlen(it->headers[i].value));
	}
	free(it->headers);
	free(it->query);
	jv_free(it->fields);
	items_init(it);
}
