/*
 * whook-send's HTTP requests with libcurl.  One handle serves every
 * request of a run, so that libcurl keeps the connection open between
 * them.  The response body goes to standard output as received.  The
 * status line, the -v trace and errors go to standard error.  The trace
 * never shows the value of a header that may carry a secret: those named
 * in send_header_masked and those whose value came from a file.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "whook.h"

#define STATUS_LINE_MAX 256

struct sender {
	CURL *curl;
	struct send_options options;
	const struct send_request *request; /* the one being sent */
	char status_line[STATUS_LINE_MAX];
	char errbuf[CURL_ERROR_SIZE];
};

/*
 * Returns whether a header NAME (LEN bytes) may carry a credential, so
 * that its value is masked: Authorization, Cookie, X-Webhook-Secret and
 * any name containing one of the words below, in any case.
 */
int
send_header_masked(const char *name, size_t len)
{
	static const char *const exact[] = {"authorization",
	    "proxy-authorization", "cookie", "set-cookie", "x-webhook-secret"};
	static const char *const words[] = {
	    "secret", "token", "signature", "key", "hmac", "password", "auth"};
	char lower[128];
	size_t i;

	if (len >= sizeof(lower))
		len = sizeof(lower) - 1;
	for (i = 0; i < len; i++)
		lower[i] = tolower((unsigned char)name[i]);
	lower[len] = '\0';
	for (i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (strcmp(lower, exact[i]) == 0)
			return 1;
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strstr(lower, words[i]) != NULL)
			return 1;
	return 0;
}

/* Returns whether the request's header NAME came from a file. */
static int
header_from_file(const struct send_request *r, const char *name, size_t len)
{
	size_t i;

	for (i = 0; r != NULL && i < r->nheaders; i++)
		if (r->headers[i].secret && strlen(r->headers[i].name) == len &&
		    strncasecmp(r->headers[i].name, name, len) == 0)
			return 1;
	return 0;
}

/* Prints one trace line, LEN bytes without the line end, with PREFIX
 * ("> " sent, "< " received).  A line is a header when the text before
 * its first colon has no space, unlike a request or status line. */
static void
trace_line(struct sender *s, const char *prefix, const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len);
	size_t name_len = colon != NULL ? (size_t)(colon - line) : 0;

	if (colon != NULL && name_len > 0 &&
	    memchr(line, ' ', name_len) == NULL &&
	    (send_header_masked(line, name_len) ||
		header_from_file(s->request, line, name_len))) {
		fprintf(stderr, "%s%.*s: ***\n", prefix, (int)name_len, line);
		return;
	}
	fprintf(stderr, "%s%.*s\n", prefix, (int)len, line);
}

static int
trace(CURL *curl, curl_infotype type, char *data, size_t size, void *arg)
{
	struct sender *s = arg;
	const char *prefix, *end, *nl;
	size_t len;

	(void)curl;
	if (type == CURLINFO_HEADER_OUT)
		prefix = "> ";
	else if (type == CURLINFO_HEADER_IN)
		prefix = "< ";
	else
		return 0;
	end = data + size;
	while (data < end) {
		nl = memchr(data, '\n', end - data);
		len = (nl != NULL ? nl : end) - data;
		if (len > 0 && data[len - 1] == '\r')
			len--;
		if (len > 0)
			trace_line(s, prefix, data, len);
		data += len;
		while (data < end && (*data == '\r' || *data == '\n'))
			data++;
	}
	return 0;
}

/* Keeps the last status line received: after a 100 Continue, the final
 * one. */
static size_t
on_header(char *data, size_t size, size_t n, void *arg)
{
	struct sender *s = arg;
	size_t len = size * n;

	if (len > 5 && strncmp(data, "HTTP/", 5) == 0) {
		while (
		    len > 0 && (data[len - 1] == '\r' || data[len - 1] == '\n'))
			len--;
		if (len >= sizeof(s->status_line))
			len = sizeof(s->status_line) - 1;
		memcpy(s->status_line, data, len);
		s->status_line[len] = '\0';
	}
	return size * n;
}

/* Sets the options that every request of the run shares. */
static int
set_common(struct sender *s)
{
	CURL *c = s->curl;
	const struct send_options *o = &s->options;
	int rc = CURLE_OK;

	rc |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, s->errbuf);
	rc |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	rc |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	rc |= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o->timeout_ms);
	rc |= curl_easy_setopt(
	    c, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
	rc |=
	    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, o->insecure ? 0L : 1L);
	rc |=
	    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, o->insecure ? 0L : 2L);
	rc |= curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	rc |= curl_easy_setopt(c, CURLOPT_HEADERDATA, s);
	rc |= curl_easy_setopt(c, CURLOPT_WRITEDATA, stdout);
	if (o->verbose) {
		rc |= curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, trace);
		rc |= curl_easy_setopt(c, CURLOPT_DEBUGDATA, s);
		rc |= curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
	}
	return rc == CURLE_OK ? 0 : -1;
}

struct sender *
send_open(const struct send_options *o, char *why, size_t whylen)
{
	struct sender *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	s->options = *o;
	s->curl = curl_easy_init();
	if (s->curl == NULL || set_common(s) == -1) {
		snprintf(why, whylen, "libcurl could not be set up");
		send_close(s);
		return NULL;
	}
	return s;
}

void
send_close(struct sender *s)
{
	if (s == NULL)
		return;
	if (s->curl != NULL)
		curl_easy_cleanup(s->curl);
	free(s);
}

/* Builds libcurl's header list: "Name;" sends a header with an empty
 * value, and an empty Expect stops libcurl's "100-continue" wait. */
static struct curl_slist *
header_list(const struct send_request *r)
{
	struct curl_slist *list = NULL, *next;
	char line[8192];
	size_t i;
	int expect = 0;

	for (i = 0; i < r->nheaders; i++) {
		const struct items_header *h = &r->headers[i];

		if (h->value[0] == '\0')
			snprintf(line, sizeof(line), "%s;", h->name);
		else
			snprintf(
			    line, sizeof(line), "%s: %s", h->name, h->value);
		expect |= strcasecmp(h->name, "Expect") == 0;
		next = curl_slist_append(list, line);
		if (next == NULL)
			break;
		list = next;
	}
	if (!expect && (next = curl_slist_append(list, "Expect:")) != NULL)
		list = next;
	explicit_bzero(line, sizeof(line));
	return list;
}

/* Sets the method and the body of R; returns the first failure. */
static CURLcode
set_method(CURL *c, const struct send_request *r)
{
	CURLcode rc;
	int head = r->method != NULL && strcmp(r->method, "HEAD") == 0;

	rc = curl_easy_setopt(c, CURLOPT_NOBODY, (long)head);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(
		    c, CURLOPT_CUSTOMREQUEST, head ? NULL : r->method);
	if (rc != CURLE_OK || head)
		return rc;
	if (r->body == NULL)
		return curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	rc = curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(
		    c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->len);
	return rc;
}

/* Maps a libcurl failure onto sysexits(3): 69 when no connection could
 * be made, 75 when one may succeed later, 64 for a URL libcurl rejects. */
static int
exit_of_curl(CURLcode rc)
{
	switch (rc) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
		return EX_USAGE;
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return EX_TEMPFAIL;
	case CURLE_WEIRD_SERVER_REPLY:
		return EX_PROTOCOL;
	case CURLE_WRITE_ERROR:
	case CURLE_READ_ERROR:
		return EX_IOERR;
	case CURLE_OUT_OF_MEMORY:
		return EX_OSERR;
	default:
		return EX_UNAVAILABLE;
	}
}

int
send_exit_of_status(long status)
{
	if (status >= 200 && status <= 299)
		return 0;
	if (status == 401 || status == 403)
		return 1;
	if (status == 429)
		return EX_TEMPFAIL;
	if (status >= 400 && status <= 499)
		return EX_DATAERR;
	if (status == 500 || status == 501)
		return EX_SOFTWARE;
	if (status >= 500 && status <= 599)
		return EX_TEMPFAIL;
	/* 1xx and 3xx are no final outcome, because redirects are not
	 * followed. */
	return EX_PROTOCOL;
}

/* Prints the status line, or one made from libcurl's info when the
 * response had none that could be kept. */
static void
print_status(struct sender *s, long status)
{
	long version = 0;

	if (s->status_line[0] != '\0') {
		fprintf(stderr, "%s\n", s->status_line);
		return;
	}
	curl_easy_getinfo(s->curl, CURLINFO_HTTP_VERSION, &version);
	fprintf(stderr, "HTTP/%s %ld\n",
	    version == CURL_HTTP_VERSION_2_0   ? "2"
	    : version == CURL_HTTP_VERSION_1_0 ? "1.0"
					       : "1.1",
	    status);
}

/* Prints libcurl's error text; for a failed connect, the system's
 * reason ("Connection refused") is more specific than libcurl's. */
static void
print_error(struct sender *s, const struct send_request *r, CURLcode rc)
{
	long os_errno = 0;

	if (rc == CURLE_COULDNT_CONNECT)
		curl_easy_getinfo(s->curl, CURLINFO_OS_ERRNO, &os_errno);
	if (os_errno != 0)
		msg_error("%s: %s", r->shown_url, strerror((int)os_errno));
	else
		msg_error("%s: %s", r->shown_url,
		    s->errbuf[0] != '\0' ? s->errbuf : curl_easy_strerror(rc));
}

int
send_request(struct sender *s, const struct send_request *r)
{
	struct curl_slist *headers = header_list(r);
	CURLcode rc;
	long status = 0;

	s->request = r;
	s->status_line[0] = '\0';
	s->errbuf[0] = '\0';
	rc = curl_easy_setopt(s->curl, CURLOPT_URL, r->url);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, headers);
	if (rc == CURLE_OK)
		rc = set_method(s->curl, r);
	if (rc == CURLE_OK)
		rc = curl_easy_perform(s->curl);
	curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(headers);
	s->request = NULL;
	if (fflush(stdout) == EOF && rc == CURLE_OK)
		rc = CURLE_WRITE_ERROR;
	if (rc != CURLE_OK) {
		print_error(s, r, rc);
		return exit_of_curl(rc);
	}
	curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
	if (!s->options.quiet)
		print_status(s, status);
	return send_exit_of_status(status);
}
