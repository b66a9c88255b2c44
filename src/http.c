/*
 * The HTTP side of whook-listen, with libmicrohttpd: a thread per
 * connection, or under --persistent an epoll loop per CPU.  A request's
 * limits are checked from its headers before the body is read, the
 * envelope is built once the body is complete, and the response status
 * comes from the flow (or from writing the envelope to stdout).  Every
 * request gets one log line when it completes.  A jv value is handed on
 * whole or as text: an --async flow gets the envelope as text.
 */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "whook.h"

#define OUTPUT_SLACK (1024 * 1024)
#define REMOTE_LEN 128 /* "[IPv6]:PORT" and its NUL */

struct http_server {
	const struct listen_config *cfg;
	struct MHD_Daemon *daemon;
	struct persist *persist; /* --persistent, or NULL */
	pthread_mutex_t lock;
	pthread_cond_t changed;
	int active;	/* requests not yet completed */
	int background; /* --async flows still running */
	int pending;	/* suspended requests not yet given their answer */
	int pool;	/* a pool of event loops instead of a thread each */
	int closed;	/* inetd mode: the connection is gone */
};

struct request {
	struct http_server *srv;
	char id[TRIGGER_ID_LEN + 1];
	char received_at[32];
	char method[16];
	char remote[REMOTE_LEN];
	char *path;
	char *file; /* the flow file under --flows, resolved once */
	char *body;
	size_t len, cap;
	unsigned long long dropped; /* body bytes beyond --max-body */
	int begun, too_large, status;
	int retry_after; /* send Retry-After: 1 with the response */
	long long start_ms;
	struct MHD_Connection *conn;
	int waiting; /* suspended until the flow's outcome */
	struct persist_answer answer;
};

/* A flow that --async finishes after the response.  Only text crosses the
 * thread boundary. */
struct job {
	struct http_server *srv;
	struct flow_proc proc;
	char id[TRIGGER_ID_LEN + 1];
	char *line;
	size_t len;
};

static pthread_mutex_t stdout_lock = PTHREAD_MUTEX_INITIALIZER;

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
count(struct http_server *srv, int *counter, int delta)
{
	pthread_mutex_lock(&srv->lock);
	*counter += delta;
	pthread_cond_broadcast(&srv->changed);
	pthread_mutex_unlock(&srv->lock);
}

static size_t
max_output(const struct listen_config *cfg)
{
	/* An outcome carries the body twice (body and raw) and more. */
	if (cfg->max_body > (SIZE_MAX - OUTPUT_SLACK) / 4)
		return SIZE_MAX;
	return cfg->max_body * 4 + OUTPUT_SLACK;
}

static void
http_logger(void *cls, const char *fmt, va_list ap)
{
	char line[1024];
	size_t n;

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	msg_warn("libmicrohttpd: %s", line);
}

static void
format_remote(struct MHD_Connection *conn, char *buf, size_t len)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	char host[NI_MAXHOST], port[NI_MAXSERV];
	const struct sockaddr *sa;
	socklen_t salen;

	snprintf(buf, len, "-");
	if (ci == NULL || ci->client_addr == NULL)
		return;
	sa = ci->client_addr;
	salen = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					  : sizeof(struct sockaddr_in);
	if (getnameinfo(sa, salen, host, sizeof(host), port, sizeof(port),
		NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return;
	snprintf(buf, len, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
	    host, port);
}

/* Starts a request from its URI, exactly as the request line carries it.
 * What this returns is the request's context in the other callbacks. */
static void *
http_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct http_server *srv = cls;
	struct request *rq = calloc(1, sizeof(*rq));
	const union MHD_ConnectionInfo *ci;
	struct timespec ts;

	if (rq == NULL)
		return NULL;
	rq->srv = srv;
	rq->start_ms = now_ms();
	clock_gettime(CLOCK_REALTIME, &ts);
	trigger_time(
	    rq->received_at, sizeof(rq->received_at), ts.tv_sec, ts.tv_nsec);
	if (trigger_new_id(rq->id) == -1)
		snprintf(rq->id, sizeof(rq->id), "-");
	rq->path = strndup(uri, strcspn(uri, "?"));
	snprintf(rq->method, sizeof(rq->method), "-");
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci != NULL && ci->socket_context != NULL)
		snprintf(rq->remote, sizeof(rq->remote), "%s",
		    (const char *)ci->socket_context);
	else
		format_remote(conn, rq->remote, sizeof(rq->remote));
	count(srv, &srv->active, 1);
	return rq;
}

/*
 * Each thread keeps the body buffer of one finished request for the next
 * one, in a thread-specific key whose destructor frees it.  A buffer of
 * BODY_FIRST bytes is too large for glibc's per-thread cache, and each
 * new one made malloc consolidate its free lists.
 */
#define BODY_FIRST 4096
static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;

static void
spare_init(void)
{
	pthread_key_create(&spare_key, free);
}

static char *
body_take(void)
{
	char *spare;

	pthread_once(&spare_once, spare_init);
	spare = pthread_getspecific(spare_key);
	if (spare != NULL) {
		pthread_setspecific(spare_key, NULL);
		return spare;
	}
	return malloc(BODY_FIRST);
}

static void
body_release(char *body, size_t cap)
{
	if (body != NULL && cap == BODY_FIRST) {
		pthread_once(&spare_once, spare_init);
		if (pthread_getspecific(spare_key) == NULL &&
		    pthread_setspecific(spare_key, body) == 0)
			return;
	}
	free(body);
}

static void
http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct http_server *srv = cls;
	struct request *rq = *con_cls;
	char status[16];

	(void)conn;
	if (rq == NULL)
		return;
	if (rq->status == 0 && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
		msg_warn("%s: request ended without an answer: %s", rq->id,
		    toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED
			? "read timed out"
			: "connection closed or invalid");
	/* libmicrohttpd sends its own response to some malformed requests,
	 * so those have no status here. */
	snprintf(status, sizeof(status), rq->status ? "%d" : "-", rq->status);
	if (!srv->cfg->quiet)
		msg_info("%s %s %s %s %lld ms %llu bytes %s", rq->id,
		    rq->method, rq->path ? rq->path : "-", status,
		    now_ms() - rq->start_ms,
		    (unsigned long long)rq->len + rq->dropped, rq->remote);
	free(rq->answer.body);
	jv_free(rq->answer.env);
	free(rq->path);
	free(rq->file);
	body_release(rq->body, rq->cap);
	free(rq);
	*con_cls = NULL;
	count(srv, &srv->active, -1);
}

static void
http_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
    enum MHD_ConnectionNotificationCode code)
{
	struct http_server *srv = cls;
	char *remote;

	/* The peer's address is formatted once a connection, for each of
	 * its requests. */
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		remote = malloc(REMOTE_LEN);
		if (remote != NULL)
			format_remote(conn, remote, REMOTE_LEN);
		*socket_ctx = remote;
		return;
	}
	if (code != MHD_CONNECTION_NOTIFY_CLOSED)
		return;
	free(*socket_ctx);
	*socket_ctx = NULL;
	pthread_mutex_lock(&srv->lock);
	srv->closed = 1;
	pthread_cond_broadcast(&srv->changed);
	pthread_mutex_unlock(&srv->lock);
}

/* Queues the response: BODY, or {"id":...,"status":N} when BODY is NULL. */
static enum MHD_Result
reply(struct MHD_Connection *conn, struct request *rq, int status,
    const char *body, size_t len, const char *ctype)
{
	const struct listen_config *cfg = rq->srv->cfg;
	struct MHD_Response *resp;
	char small[128], allow[256] = "";
	enum MHD_Result ret;
	size_t i;

	if (body == NULL) {
		len = snprintf(small, sizeof(small),
		    "{\"id\":\"%s\",\"status\":%d}\n", rq->id, status);
		body = small;
		ctype = "application/json";
	}
	resp = MHD_create_response_from_buffer(
	    len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	for (i = 0; status == 405 && i < cfg->nmethods; i++)
		snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow),
		    "%s%s", i ? ", " : "", cfg->methods[i]);
	if (status == 405)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	if (rq->retry_after)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	ret = MHD_queue_response(conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
	rq->status = status;
	return ret;
}

/* Logs the reason and sends 413 for a body over --max-body. */
static enum MHD_Result
too_large(struct MHD_Connection *conn, struct request *rq)
{
	msg_warn("%s: body over --max-body (%llu bytes)", rq->id,
	    rq->srv->cfg->max_body);
	return reply(conn, rq, 413, NULL, 0, NULL);
}

static int
method_allowed(const struct listen_config *cfg, const char *method)
{
	size_t i;

	for (i = 0; i < cfg->nmethods; i++)
		if (strcmp(cfg->methods[i], method) == 0)
			return 1;
	return 0;
}

/* Reads Content-Length, which must be digits only. Returns 1 with *len,
 * 0 when it is absent, -1 when it is invalid. */
static int
content_length(struct MHD_Connection *conn, unsigned long long *len)
{
	const char *v = MHD_lookup_connection_value(
	    conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

	if (v == NULL)
		return 0;
	if (v[0] == '\0' || v[strspn(v, "0123456789")] != '\0')
		return -1;
	errno = 0;
	*len = strtoull(v, NULL, 10);
	if (errno == ERANGE)
		*len = ULLONG_MAX;
	return 1;
}

/* Marks *first "" when the Content-Length fields differ. */
static enum MHD_Result
count_length(
    void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	const char **first = cls;

	(void)kind;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) != 0)
		return MHD_YES;
	if (*first == NULL)
		*first = value;
	else if (strcmp(*first, value ? value : "") != 0)
		*first = "";
	return MHD_YES;
}

/* Takes the request's Whook-Envelope-Id as its id under --accept-id, so
 * that a replayed envelope keeps the id it was first given.  The header
 * stays in $trigger.headers either way. */
static void
accept_id(struct MHD_Connection *conn, struct request *rq)
{
	const char *id = MHD_lookup_connection_value(
	    conn, MHD_HEADER_KIND, "Whook-Envelope-Id");

	if (id == NULL || !rq->srv->cfg->accept_id)
		return;
	if (!trigger_id_valid(id)) {
		msg_warn("%s: Whook-Envelope-Id ignored: not 26 Crockford "
			 "base32 digits of a whook-listen id",
		    rq->id);
		return;
	}
	msg_info("%s: id taken from Whook-Envelope-Id %s", rq->id, id);
	memcpy(rq->id, id, TRIGGER_ID_LEN + 1);
}

/* Checks what the headers allow to check before the body is read. */
static enum MHD_Result
http_begin(struct MHD_Connection *conn, struct request *rq, const char *method)
{
	const struct listen_config *cfg = rq->srv->cfg;
	char file[4096];
	const char *enc, *first = NULL;
	unsigned long long len;
	int known;

	snprintf(rq->method, sizeof(rq->method), "%s", method);
	accept_id(conn, rq);
	if (rq->path == NULL)
		return reply(conn, rq, 500, NULL, 0, NULL);
	if (cfg->flows != NULL &&
	    flow_resolve(cfg->flows, rq->path, file, sizeof(file)) == -1) {
		msg_warn("%s: no flow for the path %s in %s", rq->id, rq->path,
		    cfg->flows);
		return reply(conn, rq, 404, NULL, 0, NULL);
	}
	if (cfg->flows != NULL && (rq->file = strdup(file)) == NULL)
		return reply(conn, rq, 500, NULL, 0, NULL);
	if (!method_allowed(cfg, method)) {
		msg_warn(
		    "%s: method %s not allowed: see --method", rq->id, method);
		return reply(conn, rq, 405, NULL, 0, NULL);
	}
	enc = MHD_lookup_connection_value(
	    conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_ENCODING);
	if (enc != NULL && strcasecmp(enc, "identity") != 0) {
		msg_warn("%s: Content-Encoding not supported: send the body "
			 "unencoded",
		    rq->id);
		return reply(conn, rq, 415, NULL, 0, NULL);
	}
	MHD_get_connection_values(conn, MHD_HEADER_KIND, count_length, &first);
	known = content_length(conn, &len);
	if ((first != NULL && first[0] == '\0') || known == -1) {
		msg_warn("%s: invalid Content-Length: %s", rq->id,
		    known == -1 ? "not digits" : "two different values");
		return reply(conn, rq, 400, NULL, 0, NULL);
	}
	if (known == 1 && len > cfg->max_body)
		return too_large(conn, rq);
	return MHD_YES;
}

/* Keeps the body up to --max-body and drops what comes beyond.  Returns
 * -1 once the body passes twice --max-body, so that a body without end
 * cannot hold the connection, and 0 otherwise. */
static int
http_append(struct request *rq, const char *data, size_t size)
{
	unsigned long long max = rq->srv->cfg->max_body;
	size_t cap;
	char *grown;

	if (rq->too_large || rq->len + size > max) {
		rq->too_large = 1;
		rq->dropped += size;
		return rq->len + rq->dropped > 2 * max ? -1 : 0;
	}
	if (rq->cap == 0 && size + 1 <= BODY_FIRST) {
		rq->body = body_take();
		if (rq->body == NULL) {
			msg_error("%s: body: out of memory", rq->id);
			return -1;
		}
		rq->cap = BODY_FIRST;
	}
	if (rq->len + size + 1 > rq->cap) {
		cap = rq->cap ? rq->cap : BODY_FIRST;
		while (cap < rq->len + size + 1)
			cap *= 2;
		grown = realloc(rq->body, cap);
		if (grown == NULL) {
			msg_error("%s: body: out of memory", rq->id);
			return -1;
		}
		rq->body = grown;
		rq->cap = cap;
	}
	memcpy(rq->body + rq->len, data, size);
	rq->len += size;
	rq->body[rq->len] = '\0';
	return 0;
}

/* Writes the envelope on standard output, one line, flushed. */
static int
write_stdout(const char *line, size_t len)
{
	int ok;

	pthread_mutex_lock(&stdout_lock);
	fwrite(line, 1, len, stdout);
	putchar('\n');
	ok = fflush(stdout) == 0 && !ferror(stdout);
	pthread_mutex_unlock(&stdout_lock);
	return ok ? 200 : 500;
}

static void *
job_run(void *arg)
{
	struct job *job = arg;
	const struct listen_config *cfg = job->srv->cfg;
	struct flow_result r;
	char *body;
	size_t blen;
	const char *ctype;
	int status;

	flow_finish(
	    &job->proc, job->line, job->len, cfg->timeout, max_output(cfg), &r);
	status = r.timed_out ? 504
			     : flow_status(&r, job->id, RESPOND_STATUS, &body,
				   &blen, &ctype);
	msg_info("%s flow finished: status %d, exit %d%s", job->id, status,
	    r.exit, r.timed_out ? ", timed out" : "");
	free(r.output);
	free(job->line);
	count(job->srv, &job->srv->background, -1);
	free(job);
	return NULL;
}

/* Hands the running flow to a thread of its own. Returns 202, or 500. */
static int
run_async(struct request *rq, struct flow_proc *proc, char *line, size_t len)
{
	struct job *job = calloc(1, sizeof(*job));
	pthread_t t;

	if (job == NULL)
		return 500;
	job->srv = rq->srv;
	job->proc = *proc;
	memcpy(job->id, rq->id, sizeof(job->id));
	job->line = line;
	job->len = len;
	count(rq->srv, &rq->srv->background, 1);
	if (pthread_create(&t, NULL, job_run, job) != 0) {
		count(rq->srv, &rq->srv->background, -1);
		free(job);
		return 500;
	}
	pthread_detach(t);
	return 202;
}

/* Runs the flow for LINE and responds with its outcome's status. */
static enum MHD_Result
run_flow(
    struct MHD_Connection *conn, struct request *rq, char *line, size_t len)
{
	const struct listen_config *cfg = rq->srv->cfg;
	char why[512], *argv[2] = {rq->file, NULL}, *body = NULL;
	struct flow_proc proc;
	struct flow_result r;
	const char *ctype = NULL;
	size_t blen = 0;
	int status;
	enum MHD_Result ret;

	if (flow_start(cfg->flows ? argv : cfg->command, cfg->flows == NULL,
		&proc, why, sizeof(why)) == -1) {
		msg_error("%s: flow could not start: %s", rq->id, why);
		free(line);
		return reply(conn, rq, 500, NULL, 0, NULL);
	}
	if (cfg->async) {
		status = run_async(rq, &proc, line, len);
		return reply(conn, rq, status, NULL, 0, NULL);
	}
	flow_finish(&proc, line, len, cfg->timeout, max_output(cfg), &r);
	free(line);
	if (r.timed_out) {
		msg_error(
		    "%s: flow timed out after %u s", rq->id, cfg->timeout);
		status = 504;
	} else {
		status =
		    flow_status(&r, rq->id, cfg->respond, &body, &blen, &ctype);
	}
	ret = reply(conn, rq, status, body, blen, ctype);
	free(body);
	free(r.output);
	return ret;
}

/* Logs why the persistent flow's result A is not an outcome, if so, and
 * sends A as the response. */
static enum MHD_Result
answer_persistent(
    struct MHD_Connection *conn, struct request *rq, struct persist_answer *a)
{
	const struct listen_config *cfg = rq->srv->cfg;
	enum MHD_Result ret;

	if (a->busy) {
		msg_warn("%s: flow busy: %zu requests in flight, try again",
		    rq->id, cfg->max_inflight);
		rq->retry_after = 1;
	} else if (a->status == 504 && !a->outcome) {
		msg_error("%s: flow gave no outcome within %u s", rq->id,
		    cfg->timeout);
	} else if (a->status == 503 && !a->outcome) {
		msg_error("%s: flow exited or is stopping before its outcome",
		    rq->id);
	}
	ret = reply(conn, rq, a->status, a->body, a->len, a->ctype);
	free(a->body);
	a->body = NULL;
	jv_free(a->env);
	a->env = jv_invalid();
	return ret;
}

/* Stores the result of a suspended request, on whichever thread returns
 * it, and resumes the connection: libmicrohttpd then calls http_access
 * again, which sends the response. */
static void
persistent_answered(void *arg, const struct persist_answer *a)
{
	struct request *rq = arg;
	struct http_server *srv = rq->srv;

	rq->answer = *a;
	MHD_resume_connection(rq->conn);
	count(srv, &srv->pending, -1);
}

/* Hands the envelope ENV (consumed) to its persistent flow and responds
 * with the outcome.  With the pool of event loops, the connection is
 * suspended until then, so that its thread serves the others. */
static enum MHD_Result
run_persistent(struct MHD_Connection *conn, struct request *rq, jv env,
    const char *line, size_t len)
{
	struct http_server *srv = rq->srv;
	const char *file = rq->file;
	struct persist_answer a;

	if (!srv->pool) {
		persist_submit(srv->persist, file, rq->id, env, line, len, &a);
		return answer_persistent(conn, rq, &a);
	}
	rq->conn = conn;
	rq->waiting = 1;
	count(srv, &srv->pending, 1);
	MHD_suspend_connection(conn);
	persist_submit_async(srv->persist, file, rq->id, env, line, len,
	    persistent_answered, rq);
	return MHD_YES;
}

static char *
envelope_line(jv trigger, size_t *len)
{
	jv env = jv_object_set(jv_object(), jv_string("$trigger"), trigger);
	jv text = json_dump(env);
	char *line;

	*len = jv_string_length_bytes(jv_copy(text));
	line = malloc(*len + 1);
	if (line != NULL)
		memcpy(line, jv_string_value(text), *len + 1);
	jv_free(text);
	return line;
}

/* Appends the envelope to the --log file, without the --log-redact
 * headers, and waits until it is synced.  Returns 0 or an errno value. */
static int
log_envelope(
    const struct listen_config *cfg, jv trigger, const char *line, size_t len)
{
	jv headers;
	char *redacted;
	size_t i, n;
	int err;

	if (cfg->nredact == 0) {
		jv_free(trigger);
		return recvlog_append(cfg->log, line, len);
	}
	headers = jv_object_get(jv_copy(trigger), jv_string("headers"));
	for (i = 0; i < cfg->nredact && jv_get_kind(headers) == JV_KIND_OBJECT;
	     i++)
		headers = jv_object_delete(headers, jv_string(cfg->redact[i]));
	trigger = jv_object_set(trigger, jv_string("headers"), headers);
	redacted = envelope_line(trigger, &n);
	if (redacted == NULL)
		return ENOMEM;
	err = recvlog_append(cfg->log, redacted, n);
	free(redacted);
	return err;
}

/* Builds the envelope of the complete request and responds to it. */
/* Returns whether RQ goes to a flow kept running: every flow under
 * --persistent, and in inetd mode a flow file of whook programs, which
 * then runs in this process for each request of the connection instead
 * of a whook-run process a request. */
static int
uses_persist(const struct request *rq)
{
	const struct listen_config *cfg = rq->srv->cfg;

	if (rq->srv->persist == NULL)
		return 0;
	if (cfg->persistent)
		return 1;
	return rq->file != NULL && flowfile_is_runnable(rq->file);
}

static enum MHD_Result
http_finish(struct MHD_Connection *conn, struct request *rq)
{
	struct trigger_request tr = {rq->id, rq->received_at, rq->method,
	    rq->path, rq->body ? rq->body : "", rq->len, rq->remote, NULL};
	const struct listen_config *cfg = rq->srv->cfg;
	jv trigger, msg, keep;
	char *line;
	size_t len;
	int status, err, persist;
	enum MHD_Result ret;

	if (rq->too_large)
		return too_large(conn, rq);
	persist = uses_persist(rq);
	/* An in-process flow gets envelopes without the long strings that
	 * its steps cannot read, unless --log writes them. */
	if (persist && cfg->log == NULL)
		tr.reads = persist_reads(rq->srv->persist, rq->file);
	trigger = trigger_build(conn, &tr);
	if (!jv_is_valid(trigger)) {
		msg = jv_invalid_get_msg(trigger);
		msg_warn("%s: %s", rq->id,
		    jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg)
						       : "invalid body");
		jv_free(msg);
		return reply(conn, rq, 400, NULL, 0, NULL);
	}
	/* Without a log, only an external flow needs the text: an in-process
	 * one takes the value, so persist_submit writes it when needed. */
	if (persist && cfg->log == NULL)
		return run_persistent(conn, rq,
		    jv_object_set(jv_object(), jv_string("$trigger"), trigger),
		    NULL, 0);
	line = envelope_line(jv_copy(trigger), &len);
	if (line == NULL) {
		jv_free(trigger);
		return reply(conn, rq, 500, NULL, 0, NULL);
	}
	keep = persist ? jv_copy(trigger) : jv_invalid();
	err = cfg->log != NULL ? log_envelope(cfg, trigger, line, len) : 0;
	if (cfg->log == NULL)
		jv_free(trigger);
	if (err != 0) {
		msg_error("%s: receive log: append failed: %s", rq->id,
		    strerror(err));
		jv_free(keep);
		free(line);
		return reply(conn, rq, 503, NULL, 0, NULL);
	}
	if (persist) {
		ret = run_persistent(conn, rq,
		    jv_object_set(jv_object(), jv_string("$trigger"), keep),
		    line, len);
		free(line);
		return ret;
	}
	if (cfg->flows != NULL || cfg->command != NULL)
		return run_flow(conn, rq, line, len);
	status = write_stdout(line, len);
	if (status != 200)
		msg_error("%s: stdout: write failed", rq->id);
	free(line);
	return reply(conn, rq, status, NULL, 0, NULL);
}

static enum MHD_Result
http_access(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
	struct request *rq = *con_cls;

	(void)cls;
	(void)url;
	(void)version;
	if (rq == NULL)
		return MHD_NO;
	if (rq->waiting) {
		rq->waiting = 0;
		return answer_persistent(conn, rq, &rq->answer);
	}
	if (!rq->begun) {
		rq->begun = 1;
		return http_begin(conn, rq, method);
	}
	if (*upload_size > 0) {
		if (http_append(rq, upload, *upload_size) == -1) {
			msg_warn("%s: body over twice --max-body: connection "
				 "closed",
			    rq->id);
			return MHD_NO;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	return http_finish(conn, rq);
}

/* A persistent server on a socket of its own runs an epoll loop on each
 * CPU.  A connection that waits for its flow is suspended, so one thread
 * serves many connections, and a batch of responses costs a few wakeups,
 * not one for each request.  Otherwise each connection gets a thread,
 * which may wait for its flow or its process. */
static unsigned
daemon_flags(struct http_server *srv, int listenfd)
{
	unsigned flags =
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;

	if (listenfd == -1)
		return flags | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
		       MHD_USE_NO_LISTEN_SOCKET;
	if (srv->persist == NULL)
		return flags | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
	srv->pool = 1;
	return flags | MHD_USE_EPOLL_LINUX_ONLY | MHD_ALLOW_SUSPEND_RESUME;
}

static unsigned
pool_size(const struct http_server *srv)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (!srv->pool || n < 1)
		return 0;
	if (n > 64)
		n = 64;
	return (unsigned)n;
}

struct http_server *
http_start(const struct listen_config *cfg, int listenfd)
{
	struct http_server *srv = calloc(1, sizeof(*srv));
	/* Options that apply only to some modes; libmicrohttpd warns about a
	 * thread pool of size 0, so the pool option is left out then. */
	struct MHD_OptionItem extra[3];
	unsigned flags, pool;
	size_t n = 0;

	if (srv == NULL)
		return NULL;
	srv->cfg = cfg;
	if ((cfg->persistent && (cfg->flows != NULL || cfg->command != NULL)) ||
	    (cfg->inproc_files && cfg->flows != NULL)) {
		srv->persist = persist_new(cfg);
		if (srv->persist == NULL) {
			free(srv);
			return NULL;
		}
	}
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->changed, NULL);
	flags = daemon_flags(srv, listenfd);
	pool = pool_size(srv);
	if (pool > 0)
		extra[n++] = (struct MHD_OptionItem){
		    MHD_OPTION_THREAD_POOL_SIZE, pool, NULL};
	if (listenfd != -1)
		extra[n++] = (struct MHD_OptionItem){
		    MHD_OPTION_LISTEN_SOCKET, listenfd, NULL};
	extra[n] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	srv->daemon = MHD_start_daemon(flags, 0, NULL, NULL, http_access, srv,
	    MHD_OPTION_EXTERNAL_LOGGER, http_logger, NULL,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, cfg->max_header,
	    MHD_OPTION_CONNECTION_TIMEOUT, cfg->read_timeout,
	    MHD_OPTION_URI_LOG_CALLBACK, http_uri, srv,
	    MHD_OPTION_NOTIFY_COMPLETED, http_completed, srv,
	    MHD_OPTION_NOTIFY_CONNECTION, http_connection, srv,
	    MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_ARRAY, extra,
	    MHD_OPTION_END);
	if (srv->daemon == NULL) {
		msg_error("libmicrohttpd: server could not start");
		free(srv);
		return NULL;
	}
	return srv;
}

int
http_serve_inetd(struct http_server *srv, int fd)
{
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &sslen) == -1)
		return -1;
	if (MHD_add_connection(
		srv->daemon, fd, (struct sockaddr *)&ss, sslen) != MHD_YES)
		return -1;
	pthread_mutex_lock(&srv->lock);
	while (!srv->closed)
		pthread_cond_wait(&srv->changed, &srv->lock);
	pthread_mutex_unlock(&srv->lock);
	return 0;
}

/* Waits for the results of the suspended requests, which persist_stop
 * makes due: their flows were stopped or killed, and an external flow's
 * wait ends at --timeout.  Returns 0, or -1 when some never came. */
static int
wait_pending(struct http_server *srv)
{
	struct timespec until;
	int busy = 1, left;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += srv->cfg->timeout + 2;
	pthread_mutex_lock(&srv->lock);
	while (srv->pending > 0 && busy)
		busy = pthread_cond_timedwait(
			   &srv->changed, &srv->lock, &until) == 0;
	left = srv->pending;
	pthread_mutex_unlock(&srv->lock);
	if (left > 0)
		msg_warn("stopping with %d requests still waiting for their "
			 "flow",
		    left);
	return left > 0 ? -1 : 0;
}

void
http_stop(struct http_server *srv, unsigned grace)
{
	struct timespec until;
	int busy = 1;
	MHD_socket fd = MHD_quiesce_daemon(srv->daemon);

	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += grace;
	pthread_mutex_lock(&srv->lock);
	while ((srv->active > 0 || srv->background > 0) && busy)
		busy = pthread_cond_timedwait(
			   &srv->changed, &srv->lock, &until) == 0;
	if (srv->active > 0 || srv->background > 0)
		msg_warn("stopping with %d requests and %d flows in progress",
		    srv->active, srv->background);
	pthread_mutex_unlock(&srv->lock);
	if (srv->persist != NULL)
		persist_stop(srv->persist, grace);
	/* NOTE: one sanitizer run saw whook-listen end in SIGABRT on SIGTERM
	 * under load, and about 60 more did not.  Whether libmicrohttpd's
	 * panic on suspended connections can still be reached is not known. */
	if (wait_pending(srv) != 0)
		return; /* libmicrohttpd aborts on a suspended connection */
	MHD_stop_daemon(srv->daemon);
	if (srv->persist != NULL)
		persist_free(srv->persist);
	free(srv);
}
