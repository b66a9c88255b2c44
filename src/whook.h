/*
 * Shared declarations of whook's programs.  Each block names the file in
 * src/ that defines it.  Functions that take or return a jv follow libjq's
 * convention: a jv argument is consumed unless the comment says borrowed.
 */
#ifndef WHOOK_H
#define WHOOK_H

#include <stddef.h>
#include <stdio.h>
#include <sysexits.h>

#include <jv.h>

#define WHOOK_VERSION "0.1.0"

/* msg.c: every message on standard error goes through these. */
void msg_init(const char *prog);
const char *msg_prog(void);
void msg_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_version(void);
extern int msg_verbose;

/* secret.c: secrets come from "@FILE" or "env:NAME", never argv. */
#define SECRET_MAX (64 * 1024)
int secret_spec_valid(const char *spec);
int secret_load(const char *spec, char **data, size_t *len, char *why,
    size_t whylen);
void secret_free(char *data, size_t len);
int secret_equal(const void *a, size_t alen, const void *b, size_t blen);

/*
 * json.c: JSON text to jv and back.  Integers beyond 2^53, which a jq 1.6
 * double would round, travel as a string of their digits behind a NUL
 * marker and are written back as the number they were.
 */
jv json_parse(const char *text, size_t len);
jv json_dump(jv value);
int json_is_bignum(jv value);		/* borrowed */
const char *json_bignum_digits(jv value); /* borrowed; NULL if not one */
jv json_text(jv value);			/* text for interpolation */
int utf8_valid(const char *s, size_t len);

/* path.c: plain paths such as $trigger.body.items[0].sku, without jq. */
struct path;
struct path *path_compile(const char *expr);
jv path_get(const struct path *p, jv envelope); /* envelope borrowed */
void path_free(struct path *p);

/* jqprog.c: a jq program run with . = $trigger and $trigger, $last, $env. */
struct jqprog;
struct jqprog *jqprog_compile(const char *program, char *why, size_t whylen);
int jqprog_first(struct jqprog *p, jv envelope, jv *result, char *why,
    size_t whylen); /* envelope borrowed; 0, 1 for no output, -1 */
void jqprog_free(struct jqprog *p);

/* envelope.c: access to the envelope's fixed keys. */
void envelope_id(jv envelope, char *buf, size_t len); /* borrowed */
jv envelope_set_error(jv envelope, int status, const char *step,
    const char *reason);
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
};

struct stage {
	const char *name;
	/* Processes *env in place; returns outcome.exit. */
	int (*process)(void *ctx, jv *env, struct outcome *out);
	/* Makes the envelopes processed since the last call durable. */
	int (*commit)(void *ctx, struct outcome *out);
	void *ctx;
	FILE *rejected;	    /* rejected envelopes without WHOOK_OUTCOMES */
	size_t batch_max;   /* envelopes per commit, 0 for the default */
	int batch_ms;	    /* time limit of a batch, 0 for the default */
	void (*free)(void *ctx);
};

int ndjson_run(struct stage *st, int infd, FILE *out);
int ndjson_outcomes(void);

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

/* signature.c: sender signature schemes over the exact raw body. */
struct secret {
	char *data;
	size_t len;
};
struct sigscheme;
/* SPEC: github, stripe, slack, shopify, standard-webhooks, or
 * hmac-sha256:HEADER[:PREFIX][:hex|base64] (likewise sha1, sha512). */
struct sigscheme *signature_scheme(const char *spec, char *why,
    size_t whylen);
void signature_scheme_free(struct sigscheme *s);
/*
 * Verifies the signature in TRIGGER (borrowed: the envelope's $trigger,
 * its lowercased headers and raw or raw_base64) against any of the
 * secrets.  Returns 0, or 1 with *reason naming the failed check
 * (missing header, bad format, stale timestamp, mismatch) and never a
 * secret or a computed signature.  TOLERANCE 0 turns the clock check off.
 */
int signature_verify(const struct sigscheme *s, jv trigger,
    const struct secret *secrets, size_t nsecrets, long long now,
    long long tolerance, char *reason, size_t reasonlen);
/*
 * Computes the headers S's sender sends with BODY, as "Name: value"
 * strings stored in headers[0..3] (malloc'd, NULL after the last).  ID is
 * the webhook-id for standard-webhooks (NULL: one is generated).
 * Returns 0, or -1 with *why set.
 */
int signature_sign(const struct sigscheme *s, const struct secret *secret,
    const char *body, size_t len, long long timestamp, const char *id,
    char *headers[5], char *why, size_t whylen);

#endif
