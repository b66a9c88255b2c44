/*
 * The loop of every filter: read envelopes from a file descriptor one line
 * at a time, hand each to the program's stage, write what passes.  Output
 * is flushed whenever no more input is waiting, so one request is never
 * held back and a burst is not written line by line.  A stage with a
 * commit callback gets its envelopes in batches and each envelope of a
 * batch is written only after the commit that made it durable.
 *
 * Under WHOOK_OUTCOMES=1 every line read gives exactly one line written:
 * a rejected or failed envelope goes on with $error set, and an envelope
 * that already has $error passes untouched.  Otherwise rejections are
 * dropped, as grep(1) drops lines, or go to the stage's rejected file.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "whook.h"

#define LINE_LIMIT (256UL * 1024 * 1024)
#define BATCH_MAX 512
#define BATCH_MS 100

struct reader {
	int fd;
	char *buf;
	size_t start, len, cap;
	size_t scanned; /* bytes after start known to contain no newline */
	int eof;
	int skipped; /* the line reader_line gave was over LINE_LIMIT */
	unsigned long lineno;
};

/* Each envelope is kept with the value and the text it was parsed from, so
 * that the members no stage changed are written back as they came. */
struct ndjson_batch {
	struct stage *st;
	jv *envelopes;
	jv *originals;
	char **texts;
	size_t *lens;
	int *pending;  /* not yet committed, so not yet answered */
	int *left_out; /* set by json_parse_unread */
	size_t n, cap;
	struct timespec opened;
};

int
ndjson_outcomes(void)
{
	const char *v = getenv("WHOOK_OUTCOMES");

	return v != NULL && strcmp(v, "1") == 0;
}

static int
reader_fill(struct reader *r)
{
	ssize_t n;
	char *grown;

	if (r->start > 0) {
		memmove(r->buf, r->buf + r->start, r->len - r->start);
		r->len -= r->start;
		r->start = 0;
	}
	if (r->len == r->cap) {
		grown = realloc(r->buf, r->cap * 2);
		if (grown == NULL)
			return -1;
		r->buf = grown;
		r->cap *= 2;
	}
	do
		n = read(r->fd, r->buf + r->len, r->cap - r->len);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	if (n == 0)
		r->eof = 1;
	r->len += n;
	return 0;
}

/*
 * Returns 1 and the next line (newline removed, NUL added), 0 at end of
 * input, or -1 on a read error.  A line over LINE_LIMIT is skipped: it
 * comes back empty with r->skipped set.  The search for the newline goes
 * on from where the last read left it, so a long line costs one pass.
 */
static int
reader_line(struct reader *r, char **line, size_t *n)
{
	char *nl;
	size_t skipped = 0;

	r->skipped = 0;
	for (;;) {
		nl = memchr(r->buf + r->start + r->scanned, '\n',
		    r->len - r->start - r->scanned);
		if (nl != NULL || (r->eof && (r->len > r->start || skipped)))
			break;
		if (r->eof)
			return 0;
		r->scanned = r->len - r->start;
		if (r->len - r->start > LINE_LIMIT) {
			skipped = 1;
			r->start = r->len;
			r->scanned = 0;
		}
		if (reader_fill(r) == -1)
			return -1;
	}
	r->scanned = 0;
	if (nl == NULL)
		nl = r->buf + r->len;
	/* A read from a file can bring a whole long line at once. */
	if ((size_t)(nl - (r->buf + r->start)) > LINE_LIMIT)
		skipped = 1;
	r->lineno++;
	if (skipped) {
		r->skipped = 1;
		r->start = nl - r->buf + (nl < r->buf + r->len);
		*n = 0;
		*line = r->buf + r->start;
		return 1;
	}
	*line = r->buf + r->start;
	*n = nl - *line;
	if (nl < r->buf + r->len) {
		*nl = '\0';
		r->start = nl - r->buf + 1;
	} else {
		/* The last line has no newline: make room for the NUL. */
		if (r->len == r->cap && reader_fill(r) == -1)
			return -1;
		*line = r->buf + r->start;
		(*line)[*n] = '\0';
		r->start = r->len;
	}
	return 1;
}

/* Returns whether more input can be read at once. */
static int
reader_waiting(struct reader *r)
{
	struct pollfd pfd = {.fd = r->fd, .events = POLLIN};

	if (memchr(r->buf + r->start, '\n', r->len - r->start) != NULL)
		return 1;
	if (r->eof)
		return r->len > r->start;
	return poll(&pfd, 1, 0) > 0;
}

static void
batch_grow(struct ndjson_batch *b)
{
	b->cap = b->cap ? b->cap * 2 : 16;
	b->envelopes = realloc(b->envelopes, b->cap * sizeof(jv));
	b->originals = realloc(b->originals, b->cap * sizeof(jv));
	b->texts = realloc(b->texts, b->cap * sizeof(char *));
	b->lens = realloc(b->lens, b->cap * sizeof(size_t));
	b->pending = realloc(b->pending, b->cap * sizeof(int));
	b->left_out = realloc(b->left_out, b->cap * sizeof(int));
	if (b->envelopes == NULL || b->originals == NULL || b->texts == NULL ||
	    b->lens == NULL || b->pending == NULL || b->left_out == NULL) {
		msg_error("out of memory");
		exit(EX_OSERR);
	}
}

static void
batch_push(struct ndjson_batch *b, jv env, jv original, const char *text,
    size_t len, int pending, int left_out)
{
	if (b->n == b->cap)
		batch_grow(b);
	if (b->n == 0)
		clock_gettime(CLOCK_MONOTONIC, &b->opened);
	b->texts[b->n] = malloc(len + 1);
	if (b->texts[b->n] == NULL) {
		msg_error("out of memory");
		exit(EX_OSERR);
	}
	if (len > 0)
		memcpy(b->texts[b->n], text, len);
	b->lens[b->n] = len;
	b->envelopes[b->n] = env;
	b->originals[b->n] = original;
	b->pending[b->n] = pending;
	b->left_out[b->n] = left_out;
	b->n++;
}

static long
batch_age_ms(const struct ndjson_batch *b)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - b->opened.tv_sec) * 1000 +
	       (now.tv_nsec - b->opened.tv_nsec) / 1000000;
}

static int
max_status(int a, int b)
{
	return a > b ? a : b;
}

/* Logs and marks a rejected or failed envelope; returns it for output, or
 * jv_invalid() when it is dropped. */
static jv
reject(struct stage *st, jv env, int code, struct outcome *oc)
{
	char id[128];
	int status = oc->status ? oc->status : envelope_status_of_exit(code);
	jv text;

	envelope_id(env, id, sizeof(id));
	if (oc->reason[0] == '\0')
		snprintf(oc->reason, sizeof(oc->reason), "failed");
	if (code == 1)
		msg_warn("%s: rejected: %s", id, oc->reason);
	else
		msg_error("%s: %s", id, oc->reason);
	env = envelope_set_error(
	    env, status, oc->step != NULL ? oc->step : st->name, oc->reason);
	if (ndjson_outcomes())
		return env;
	if (code == 1 && st->rejected != NULL) {
		text = json_dump(env);
		fprintf(st->rejected, "%s\n", jv_string_value(text));
		fflush(st->rejected);
		jv_free(text);
		return jv_invalid();
	}
	jv_free(env);
	return jv_invalid();
}

/* Writes one envelope of a flushed batch on the FILE in ARG. */
static void
emit_line(
    void *arg, jv env, jv original, const char *text, size_t len, int left_out)
{
	FILE *out = arg;

	json_write_reusing(out, env, original, text, len, left_out);
	putc('\n', out);
}

int
ndjson_batch_flush(struct ndjson_batch *b, ndjson_emit *emit, void *arg)
{
	struct stage *st = b->st;
	struct outcome oc;
	int status = 0, code = 0, any = 0;
	size_t i;

	for (i = 0; i < b->n; i++)
		any |= b->pending[i];
	if (st->commit != NULL && any) {
		memset(&oc, 0, sizeof(oc));
		code = st->commit(st->ctx, &oc);
	}
	for (i = 0; i < b->n; i++) {
		jv env = b->envelopes[i];

		if (code != 0 && b->pending[i]) {
			struct outcome copy = oc;

			env = reject(st, env, code, &copy);
			status = max_status(status, code);
		}
		if (!jv_is_valid(env)) {
			jv_free(b->originals[i]);
			free(b->texts[i]);
			continue;
		}
		emit(arg, env, b->originals[i], b->texts[i], b->lens[i],
		    b->left_out[i]);
		free(b->texts[i]);
	}
	b->n = 0;
	return status;
}

static int
is_blank(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return 0;
	return 1;
}

static int
batch_add(
    struct ndjson_batch *b, jv env, const char *text, size_t len, int left_out)
{
	struct stage *st = b->st;
	struct outcome oc;
	jv original;
	int code;

	if (ndjson_outcomes() && envelope_has_error(env)) {
		batch_push(b, env, jv_copy(env), text, len, 0, left_out);
		return 0;
	}
	original = jv_copy(env);
	memset(&oc, 0, sizeof(oc));
	code = st->process(st->ctx, &env, &oc);
	if (code == 0) {
		batch_push(
		    b, env, original, text, len, st->commit != NULL, left_out);
		return 0;
	}
	env = reject(st, env, code, &oc);
	if (jv_is_valid(env))
		batch_push(b, env, original, text, len, 0, left_out);
	else
		jv_free(original);
	return code;
}

int
ndjson_batch_add(struct ndjson_batch *b, jv env, const char *text, size_t len)
{
	return batch_add(b, env, text, len, 0);
}

/* Runs one line through the stage; returns its exit status. */
static int
process_line(
    struct ndjson_batch *b, const char *line, size_t n, unsigned long lineno)
{
	jv env, msg;
	int left_out = 0;

	/* The long strings that the stage cannot read are left out, and
	 * written back from the line. */
	env = json_parse_unread(line, n, b->st->reads, NULL, 0, &left_out);
	if (!jv_is_valid(env)) {
		/* In a chain the message belongs to the first program. */
		msg_init(b->st->name);
		msg = jv_invalid_get_msg(env);
		msg_error("stdin:%lu: invalid JSON: %s", lineno,
		    jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg)
						       : "parse error");
		jv_free(msg);
		return EX_DATAERR;
	}
	if (jv_get_kind(env) != JV_KIND_OBJECT) {
		msg_init(b->st->name);
		msg_error(
		    "stdin:%lu: invalid envelope: not a JSON object", lineno);
		jv_free(env);
		return EX_DATAERR;
	}
	return batch_add(b, env, line, n, left_out);
}

struct ndjson_batch *
ndjson_batch_new(struct stage *st)
{
	struct ndjson_batch *b = calloc(1, sizeof(*b));

	if (b != NULL)
		b->st = st;
	return b;
}

size_t
ndjson_batch_size(const struct ndjson_batch *b)
{
	return b->n;
}

static void
batch_release(struct ndjson_batch *b)
{
	free(b->envelopes);
	free(b->originals);
	free(b->texts);
	free(b->lens);
	free(b->pending);
	free(b->left_out);
}

/* Frees B, which a flush has emptied. */
void
ndjson_batch_free(struct ndjson_batch *b)
{
	if (b == NULL)
		return;
	batch_release(b);
	free(b);
}

int
ndjson_run(struct stage *st, int infd, FILE *out)
{
	struct reader r = {.fd = infd, .cap = 64 * 1024};
	struct ndjson_batch b = {.st = st};
	size_t batch_max = st->batch_max ? st->batch_max : BATCH_MAX;
	int batch_ms = st->batch_ms ? st->batch_ms : BATCH_MS;
	int status = 0, got, waiting;
	char *line;
	size_t n;

	if (st->commit == NULL)
		batch_max = 1;
	r.buf = malloc(r.cap);
	if (r.buf == NULL) {
		msg_error("out of memory");
		return EX_OSERR;
	}
	while ((got = reader_line(&r, &line, &n)) == 1) {
		if (r.skipped) {
			msg_error("stdin:%lu: line longer than %lu bytes, "
				  "skipped",
			    r.lineno, LINE_LIMIT);
			status = max_status(status, EX_DATAERR);
		}
		if (!is_blank(line, n))
			status = max_status(
			    status, process_line(&b, line, n, r.lineno));
		waiting = reader_waiting(&r);
		if (!waiting || b.n >= batch_max ||
		    (b.n > 0 && batch_age_ms(&b) >= batch_ms))
			status = max_status(
			    status, ndjson_batch_flush(&b, emit_line, out));
		if (!waiting)
			fflush(out);
	}
	if (got == -1) {
		msg_error("stdin: %s", strerror(errno));
		status = max_status(status, EX_IOERR);
	}
	status = max_status(status, ndjson_batch_flush(&b, emit_line, out));
	if (fflush(out) == EOF || ferror(out)) {
		msg_error("stdout: %s", strerror(errno));
		status = max_status(status, EX_IOERR);
	}
	batch_release(&b);
	free(r.buf);
	return status;
}
