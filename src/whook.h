/*
 * Shared declarations of whook's programs.  Each block names the file in
 * src/ that defines it.  Functions that take or return a jv follow libjq's
 * convention: a jv argument is consumed unless the comment says borrowed.
 */
#ifndef WHOOK_H
#define WHOOK_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include <sysexits.h>

#include <jv.h>

#define WHOOK_VERSION "0.1.0"

/* msg.c: every message on standard error goes through these. */
void msg_init(const char *prog);
const char *msg_prog(void);
void msg_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int msg_usage_error(void (*usage)(FILE *), const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void msg_version(void);
extern int msg_verbose;
extern int msg_quiet; /* msg_info writes nothing */

/* secret.c: secrets come from "@FILE" or "env:NAME", never argv. */
#define SECRET_MAX (64 * 1024)
int secret_spec_valid(const char *spec);
int secret_load(
    const char *spec, char **data, size_t *len, char *why, size_t whylen);
void secret_free(char *data, size_t len);
int secret_equal(const void *a, size_t alen, const void *b, size_t blen);
/* The size of the SHA-256 digest that secret_equal compares.  A fixed
 * secret is digested once, and secret_matches compares A with it. */
#define SECRET_DIGEST 32
int secret_digest(
    const void *data, size_t len, unsigned char out[SECRET_DIGEST]);
int secret_matches(
    const void *a, size_t alen, const unsigned char digest[SECRET_DIGEST]);

/*
 * json.c: JSON text to jv and back.  Integers beyond 2^53, which a jq 1.6
 * double would round, travel as a string of their digits behind a NUL
 * marker and are written back as the number they were.
 */
jv json_parse(const char *text, size_t len);
struct place;
struct reads;
jv json_parse_unread(const char *text, size_t len, const struct reads *reads,
    const struct place *at, size_t n, int *left_out);
jv json_dump(jv value);
void json_write_reusing(FILE *out, jv value, jv original, const char *text,
    size_t len, int left_out);
jv json_integer(long long value);	  /* a number, or marked beyond 2^53 */
int json_is_bignum(jv value);		  /* borrowed */
const char *json_bignum_digits(jv value); /* borrowed; NULL if not one */
jv json_text(jv value);			  /* text for interpolation */
int utf8_valid(const char *s, size_t len);

/* path.c: plain paths such as $trigger.body.items[0].sku, without jq. */
struct path;
struct path *path_compile(const char *expr);
jv path_get(const struct path *p, jv envelope); /* envelope borrowed */
void path_free(struct path *p);

/*
 * The place of a value in an envelope: a key for each object and an index
 * for each array on the way down from the top.
 */
struct place {
	const char *key; /* NULL for an index */
	size_t len;
	long index;
};
int path_reaches(const struct path *p, const struct place *at, size_t n);

/*
 * The paths of an envelope that a stage may read, with what they contain
 * and what contains them.  A stage whose reads are NULL may read all of
 * it.  A set is read by many threads once built, and never changed.
 */
struct reads;
struct reads *reads_new(void);
int reads_add(struct reads *r, const struct path *p); /* copies P */
int reads_add_text(struct reads *r, const char *expr);
struct reads *reads_merge(struct reads *a, const struct reads *b);
int reads_reach(const struct reads *r, const struct place *at, size_t n);
int reads_raw(const struct reads *r); /* $trigger.raw or raw_base64 */
void reads_free(struct reads *r);

/* jqprog.c: a jq program run with . = $trigger and $trigger, $last, $env. */
struct jqprog;
struct jqprog *jqprog_compile(const char *program, char *why, size_t whylen);
int jqprog_first(struct jqprog *p, jv envelope, jv *result, char *why,
    size_t whylen); /* envelope borrowed; 0, 1 for no output, -1 */
void jqprog_free(struct jqprog *p);
/* Copies a jq error message with its quoted values cut out. */
void jqprog_error_text(const char *msg, char *why, size_t whylen);

/*
 * template.c: whook-map's templates, JSON whose strings may hold
 * {{ expression }} placeholders, compiled once.  template_render borrows
 * ENVELOPE and returns 0 with *result, or -1 with *why naming the
 * placeholder: a jq error, or under STRICT a placeholder with no value.
 */
struct template;
struct template *template_compile(
    const char *text, size_t len, char *why, size_t whylen);
int template_render(struct template *t, jv envelope, int strict, jv *result,
    char *why, size_t whylen);
size_t template_jq_count(const struct template *t); /* jq placeholders */
struct reads *template_reads(const struct template *t);
void template_free(struct template *t);

/*
 * rule.c: Directus filter rules, evaluated without jq.  rule_compile
 * consumes RULE; rule_match borrows ENVELOPE and returns 1 when the rule
 * holds, or 0 with *reason naming the failed field path and operator,
 * never a value.
 */
struct rule;
struct rule *rule_compile(jv rule, char *why, size_t whylen);
int rule_match(
    const struct rule *r, jv envelope, char *reason, size_t reasonlen);
void rule_free(struct rule *r);

/* envelope.c: access to the envelope's fixed keys. */
void envelope_id(jv envelope, char *buf, size_t len); /* borrowed */
jv envelope_set_error(
    jv envelope, int status, const char *step, const char *reason);
int envelope_has_error(jv envelope); /* borrowed */
int envelope_status_of_exit(int code);

/*
 * ndjson.c: the loop that every filter runs.  A stage is built once from
 * a program's options and called with one envelope at a time.
 */
struct outcome {
	int exit;	  /* sysexits(3) code; 0 passes the envelope on */
	int status;	  /* HTTP status for $error, 0 to derive from exit */
	char reason[512]; /* no secret, no computed signature */
	const char *step; /* the program that set it, NULL for the stage's */
};

struct stage {
	const char *name;
	/* Processes *env in place; returns outcome.exit. */
	int (*process)(void *ctx, jv *env, struct outcome *out);
	/* Makes the envelopes processed since the last call durable. */
	int (*commit)(void *ctx, struct outcome *out);
	/* Optional, as store_defer_sync and store_sync_fd.  defer makes
	 * commit leave the syncing to the caller.  After each commit,
	 * sync_fds puts up to MAX descriptors to fdatasync(2) in FDS and
	 * returns how many, or -1 with OUT filled. */
	void (*defer)(void *ctx);
	int (*sync_fds)(void *ctx, int *fds, int max, struct outcome *out);
	void *ctx;
	FILE *rejected; /* rejected envelopes without WHOOK_OUTCOMES */
	/* The paths the stage may read, set by its builder: NULL for all of
	 * the envelope, as for a stage that writes the envelope out.  Freed
	 * with the stage.  NOTE: a long string at a path that the builder
	 * leaves out reaches the stage as null. */
	struct reads *reads;
	const char *db;	  /* the database a batching stage writes, or NULL */
	size_t batch_max; /* envelopes per commit, 0 for the default */
	int batch_ms;	  /* time limit of a batch, 0 for the default */
	void (*free)(void *ctx);
};

int ndjson_run(struct stage *st, int infd, FILE *out);
int ndjson_outcomes(void);

/*
 * The batch that ndjson_run fills, for a caller with envelopes of its
 * own (whook-listen's in-process flows).  ndjson_batch_add runs ENV
 * (consumed) through the stage and keeps it, with TEXT (borrowed, the
 * line it was parsed from, or NULL) for output; it returns the stage's
 * exit status.  ndjson_batch_flush commits once, then hands each kept
 * envelope to EMIT in order (an envelope the commit failed with $error
 * set) and returns the worst exit status.  EMIT consumes ENV and
 * ORIGINAL.
 */
struct ndjson_batch;
typedef void ndjson_emit(
    void *arg, jv env, jv original, const char *text, size_t len, int left_out);
struct ndjson_batch *ndjson_batch_new(struct stage *st);
int ndjson_batch_add(
    struct ndjson_batch *b, jv env, const char *text, size_t len);
int ndjson_batch_flush(struct ndjson_batch *b, ndjson_emit *emit, void *arg);
size_t ndjson_batch_size(const struct ndjson_batch *b);
void ndjson_batch_free(struct ndjson_batch *b);

/*
 * Stage builders, one per filter program (check.c, map.c, insert.c): each
 * parses a program's arguments (argv[0] included, getopt_long reset with
 * optind = 0) into *st.  Returns STAGE_READY, or the status to exit with
 * at once: 0 after --help or --version, EX_USAGE after a message.  A flow
 * runner calls them to chain stages in one process.
 */
#define STAGE_READY (-1)
int check_stage(struct stage *st, int argc, char *argv[]);
int map_stage(struct stage *st, int argc, char *argv[]);
int insert_stage(struct stage *st, int argc, char *argv[]);
int stage_main(const char *prog, int (*build)(struct stage *, int, char **),
    int argc, char *argv[]);
int stage_fail_all(const char *name, int code);

/*
 * flowfile.c, chain.c: a flow file made only of whook programs, one
 * program and its arguments per line joined by "|", words expanded by
 * wordexp(3) without command substitution, run as stages chained in one
 * process.
 */
struct flowfile {
	size_t nstages;
	char **argv[16];
	int argc[16];
	void *words[16]; /* wordexp_t of each stage */
};
int flowfile_load(
    const char *path, struct flowfile *ff, char *why, size_t whylen);
int flowfile_is_runnable(const char *path); /* "#!...whook-run" first */
void flowfile_free(struct flowfile *ff);
struct chain;
struct chain *chain_build(const struct flowfile *ff, int *status);
struct stage *chain_stage(struct chain *c);
int chain_status(const struct chain *c, int loop_status);
void chain_free(struct chain *c);

/* store.c: JSON objects as rows of a sqlite3 table, for whook-insert. */
enum store_conflict { STORE_FAIL, STORE_IGNORE, STORE_REPLACE, STORE_UPDATE };
struct store_config {
	const char *db; /* a file name or a "file:" URI */
	const char *table;
	char **keys; /* PRIMARY KEY for create, target for update */
	size_t nkeys;
	enum store_conflict conflict;
	int create; /* CREATE TABLE IF NOT EXISTS from the first row */
	int busy_ms;
};
struct store_result {
	long long rowid;
	int has_rowid; /* 0 when no row was inserted or updated */
	int changes;
	int duplicate; /* the id was recorded already: nothing inserted */
};
/* The table where store_insert records each envelope id it committed. */
#define STORE_SEEN_TABLE "whook_seen"
struct store;
struct store *store_new(const struct store_config *cfg); /* cfg borrowed */
/* ROW and ID are borrowed.  ID, when a string, is looked up and recorded
 * in STORE_SEEN_TABLE with the row; returns a sysexits code. */
int store_insert(struct store *s, jv row, jv id, struct store_result *res,
    struct outcome *out);
int store_commit(struct store *s, struct outcome *out);
/*
 * For a caller that syncs on a thread of its own.  After store_defer_sync,
 * called before the first insert, a commit to a WAL database file returns
 * before its data is on disk.  store_sync_fd then puts in *FD a new
 * descriptor whose fdatasync(2) makes every commit so far durable, or -1
 * when none is needed, and returns a sysexits code.
 */
void store_defer_sync(struct store *s);
int store_sync_fd(struct store *s, int *fd, struct outcome *out);
void store_free(struct store *s);

/* recvlog.c: the receive log, appended and synced before a 2xx. */
struct recvlog;
struct recvlog *recvlog_open(
    const char *path, mode_t mode, char *why, size_t whylen);
int recvlog_append(struct recvlog *log, const char *line, size_t len);
int recvlog_reopen(struct recvlog *log);
void recvlog_close(struct recvlog *log);

/* signature.c: sender signature schemes over the exact raw body. */
struct secret {
	char *data;
	size_t len;
};
struct sigscheme;
/* SPEC: github, stripe, slack, shopify, standard-webhooks, twilio:URL,
 * or hmac-sha256:HEADER[:PREFIX][:hex|base64] (likewise sha1, sha512). */
struct sigscheme *signature_scheme(const char *spec, char *why, size_t whylen);
void signature_scheme_free(struct sigscheme *s);
/*
 * Verifies the signature in TRIGGER (borrowed: the envelope's $trigger,
 * its lowercased headers and raw or raw_base64) against any of the
 * secrets.  Returns 0, or 1 with *reason naming the failed check
 * (missing header, bad format, stale timestamp, bad secret, mismatch) and
 * never a secret or a signature.  TOLERANCE 0 turns the clock check off.
 */
int signature_verify(const struct sigscheme *s, jv trigger,
    const struct secret *secrets, size_t nsecrets, long long now,
    long long tolerance, char *reason, size_t reasonlen);
/*
 * Computes the headers S's sender sends with BODY, as "Name: value"
 * strings stored in headers[0..3] (malloc'd, NULL after the last).  ID is
 * the webhook-id for standard-webhooks (NULL: one is generated).
 * Returns 0, or -1 with *why set and every slot NULL.  The twilio:URL
 * scheme cannot sign.
 */
int signature_sign(const struct sigscheme *s, const struct secret *secret,
    const char *body, size_t len, long long timestamp, const char *id,
    char *headers[5], char *why, size_t whylen);

/*
 * http.c, listen-trigger.c, flow.c: whook-listen, the HTTP front end.
 * The server serves requests with libmicrohttpd, builds each request's
 * $trigger and runs a flow for its envelope.
 */
#define LISTEN_METHODS_MAX 16
enum listen_respond { RESPOND_STATUS, RESPOND_LAST, RESPOND_OUTPUT };

struct listen_config {
	const char *flows; /* --flows DIR, or NULL */
	char **command;	   /* -- CMD ARGS..., or NULL */
	const char *methods[LISTEN_METHODS_MAX];
	size_t nmethods;
	unsigned long long max_body; /* bytes */
	size_t max_header;	     /* bytes of a connection's memory pool */
	unsigned read_timeout;	     /* seconds */
	unsigned timeout;	     /* seconds a flow may run */
	int async;
	enum listen_respond respond;
	struct recvlog *log; /* --log, or NULL */
	const char **redact; /* --log-redact: lowercased header names */
	size_t nredact;
	int accept_id;	       /* --accept-id: Whook-Envelope-Id is the id */
	int quiet;	       /* -q: no line for each completed request */
	int persistent;	       /* --persistent: flows kept running */
	int inproc_files;      /* inetd: whook-run flow files in process */
	size_t max_inflight;   /* requests a persistent flow holds */
	unsigned stop_timeout; /* seconds SIGTERM waits for requests */
};

struct MHD_Connection;
struct http_server;
/* Starts a server on the listening socket LISTENFD (-1: none, for
 * http_add_inetd); returns NULL after a message. */
struct http_server *http_start(const struct listen_config *cfg, int listenfd);
/* Serves the connected socket FD until its peer closes it. */
int http_serve_inetd(struct http_server *srv, int fd);
/* Stops accepting, waits up to GRACE seconds for requests and background
 * flows in progress, then up to GRACE seconds for --persistent flows to
 * exit once their input is closed, and frees the server. */
void http_stop(struct http_server *srv, unsigned grace);

/* A request as whook-listen received it, before the envelope is built. */
struct trigger_request {
	const char *id;
	const char *received_at;
	const char *method;
	const char *path; /* as received, without the query */
	const char *body;
	size_t len;
	const char *remote; /* "IP:PORT", "[IPv6]:PORT" */
	/* The paths the flow may read, or NULL for all: a long string that
	 * it cannot read is left out. */
	const struct reads *reads;
};
#define TRIGGER_ID_LEN 26
void trigger_ulid(char out[TRIGGER_ID_LEN + 1], unsigned long long ms,
    const unsigned char random[10]);
int trigger_new_id(char out[TRIGGER_ID_LEN + 1]);
int trigger_id_valid(const char *id); /* of the form trigger_ulid makes */
void trigger_time(char *buf, size_t len, long long sec, long nsec);
int trigger_media_type(const char *ctype, char *type, size_t len);
int trigger_param(const char *ctype, const char *name, char *value, size_t len);
/* Builds the $trigger of the request on CONN, or returns jv_invalid with
 * the reason when the body does not fit its content type. */
jv trigger_build(struct MHD_Connection *conn, const struct trigger_request *rq);

struct flow_result {
	int exit; /* exit status, 128 + N after signal N */
	int signaled;
	int timed_out;
	char *output; /* what the flow wrote on stdout, NUL-terminated */
	size_t len;
	int truncated; /* output went beyond the limit */
};
struct flow_proc {
	pid_t pid;
	int in, out; /* our ends of its stdin and stdout pipes */
};
/* Resolves the raw request PATH to an executable under DIR in OUT;
 * returns 0, or -1 for a path that names no flow (404). */
int flow_resolve(const char *dir, const char *path, char *out, size_t len);
int flow_start(char *const argv[], int search, struct flow_proc *p, char *why,
    size_t whylen);
/* Writes LINE to the flow, reads its output, waits for it at most
 * TIMEOUT seconds (then kills its process group); fills *r. */
void flow_finish(struct flow_proc *p, const char *line, size_t len,
    unsigned timeout, size_t max_output, struct flow_result *r);
/* Maps the result onto an HTTP status and, for RESPOND, a body (malloc'd
 * into *body, NULL for the default) of type *ctype. */
int flow_status(const struct flow_result *r, const char *id,
    enum listen_respond respond, char **body, size_t *bodylen,
    const char **ctype);

/*
 * listen-persist.c, listen-inproc.c: --persistent flows, each started
 * once and fed every request's envelope; a whook-run flow file runs on a
 * thread of this process.  persist_submit consumes ENV, borrows LINE (the
 * envelope's text, or NULL to write it from ENV) and fills *A, with a body
 * to free.
 */
struct persist_answer {
	int status;
	char *body; /* malloc'd, NULL for the default body */
	size_t len;
	const char *ctype;
	int busy;    /* a 503 for --max-inflight: add Retry-After */
	int outcome; /* the status comes from the flow's outcome */
	/* The outcome envelope, or a zeroed jv_invalid(), freed where body
	 * is freed.  That is the request's thread, which allocated most of
	 * it, so glibc's malloc takes no lock of another thread's arena. */
	jv env;
};
struct persist;
struct persist *persist_new(const struct listen_config *cfg);
void persist_submit(struct persist *p, const char *file, const char *id, jv env,
    const char *line, size_t len, struct persist_answer *a);
/* Closes the flows' input, waits up to GRACE seconds for them to exit. */
void persist_stop(struct persist *p, unsigned grace);
void persist_free(struct persist *p); /* once no request can arrive */
struct inproc;
typedef void inproc_done(void *arg, const struct persist_answer *a);
struct inproc *inproc_start(const char *file, enum listen_respond respond);
/* Queues ENV (consumed); DONE gets the answer on the flow's thread. */
void inproc_queue(struct inproc *f, jv env, inproc_done *done, void *arg);
/* Whether the envelopes of F can go without $trigger.raw and raw_base64,
 * which no step of its chain reads. */
const struct reads *inproc_reads(struct inproc *f);
const struct reads *persist_reads(struct persist *p, const char *file);
/* Like persist_submit without waiting: DONE gets the answer, on the
 * flow's thread or one of its own, or at once on this one. */
void persist_submit_async(struct persist *p, const char *file, const char *id,
    jv env, const char *line, size_t len, inproc_done *done, void *arg);
void inproc_stop(struct inproc *f);
void inproc_free(struct inproc *f);

/*
 * items.c: whook-send's request items in HTTPie's syntax: Header:Value,
 * Header:@FILE, name==value, field=string, field=@FILE, field:=JSON and
 * field:=@FILE.  Each function returns 0 or a sysexits(3) code with *why
 * set.
 */
struct items_header {
	char *name;
	char *value; /* "" sends the header with an empty value */
	int secret;  /* read from a file: masked in -v traces */
};
struct items {
	struct items_header *headers;
	size_t nheaders;
	char *query; /* "a=1&b=2", percent-encoded; NULL when none */
	jv fields;   /* the JSON body's object; jv_null() when none */
};
void items_init(struct items *it);
int items_add(struct items *it, const char *item, char *why, size_t whylen);
/* Adds -H's "Name: value", or "Name: @FILE" to read the value. */
int items_add_header_line(
    struct items *it, const char *line, char *why, size_t whylen);
/* Adds a header with a literal VALUE, an '@' included. */
int items_set_header(struct items *it, const char *name, const char *value,
    int secret, char *why, size_t whylen);
const struct items_header *items_header(
    const struct items *it, const char *name);
void items_free(struct items *it);
/* Reads all of PATH, "-" for standard input, NUL-terminated. */
int items_read_file(
    const char *path, char **data, size_t *len, char *why, size_t whylen);

/*
 * send-http.c: whook-send's requests, one at a time over one libcurl
 * handle so that a connection is reused.  send_request prints the
 * status line and any error, and returns the exit status for the
 * response: 0 for 2xx, 1 for 401 and 403, 65 for other 4xx, 70 for 500
 * and 501, 75 for 429, other 5xx and time-outs, 69 when no connection
 * was made.
 */
struct send_options {
	long timeout_ms;	 /* the whole request; 0 for none */
	long connect_timeout_ms; /* 0 for libcurl's default */
	int insecure;		 /* no TLS peer or host name check */
	int verbose;		 /* trace headers sent and received */
	int quiet;		 /* no status line */
};
struct send_request {
	const char *method; /* NULL: POST with a body, GET without */
	const char *url;
	const char *shown_url; /* url without its password, for messages */
	const struct items_header *headers;
	size_t nheaders;
	const char *body; /* NULL for no body */
	size_t len;
};
struct sender;
struct sender *send_open(
    const struct send_options *o, char *why, size_t whylen);
int send_request(struct sender *s, const struct send_request *r);
void send_close(struct sender *s);
int send_exit_of_status(long status);
int send_header_masked(const char *name, size_t len);

/*
 * replay.c: whook-send --replay, resending logged envelopes with their
 * raw bodies and original headers.  replay_run returns a sysexits(3)
 * code: 0 when every envelope was delivered or left alone, 75 when one
 * failed after its retries, 65 when one was rejected with a final status,
 * 73 when the cursor or --failed could not be written.
 */
struct replay_options {
	const char *cursor; /* --cursor FILE, or NULL */
	const char *failed; /* --failed FILE, or NULL */
	long long since_ms; /* --since, ms since the epoch; -1 for none */
	long long until_ms; /* --until, exclusive; -1 for none */
	int use_path;	    /* --path: URL's origin + $trigger.path */
	int retries;	    /* attempts after the first */
	long backoff_ms;    /* first backoff ceiling, doubling */
	int parallel;	    /* requests in flight */
};
int replay_run(const struct replay_options *o, const struct send_options *so,
    const char *url, const char *file); /* FILE NULL: standard input */
/* Parses RFC 3339, SECONDS or @SECONDS into ms since the epoch. */
int replay_parse_time(const char *arg, long long *ms);
/* The full-jitter delay before attempt ATTEMPTS + 1, from RANDOM >= 0. */
long long replay_backoff_ms(long long base_ms, int attempts, long random);

/* A cursor file's line: "v2 OFFSET LINE DEV INODE ID" for a regular
 * file, where LINE and ID are the number and the id of the line ending
 * at OFFSET ("-" for a line without one), or the older "ID" alone, where
 * offset is -1. */
#define REPLAY_ID_MAX 128
struct replay_cursor {
	long long offset;
	unsigned long long line, dev, ino;
	char id[REPLAY_ID_MAX];
};
/* Parses LINE, without its newline; "" gives id "" and offset -1. */
int replay_cursor_parse(const char *line, struct replay_cursor *c);

#endif
