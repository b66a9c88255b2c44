/*
 * Sender signature schemes: verifies the HMAC a sender (GitHub, Stripe,
 * Slack, Shopify, Standard Webhooks, Twilio or a generic one) puts in a
 * request header, and computes the same headers for whook-send.  The MAC
 * covers the exact body bytes of $trigger.raw or $trigger.raw_base64,
 * never re-serialized JSON.  Received digests are decoded and compared
 * as bytes with CRYPTO_memcmp, and no reason text contains a secret or
 * a digest.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "whook.h"

/* The maximum number of signatures read from one header.  Stripe and Standard
 * Webhooks send one per active secret, so two during a rotation. */
#define SIG_MAX 16
#define PART_MAX 5

enum scheme_kind {
	SCHEME_GITHUB,
	SCHEME_STRIPE,
	SCHEME_SLACK,
	SCHEME_SHOPIFY,
	SCHEME_STDWH,
	SCHEME_HMAC,
	SCHEME_TWILIO
};

enum encoding { ENC_HEX, ENC_BASE64 };

struct sigscheme {
	enum scheme_kind kind;
	const char *digest;	/* OpenSSL digest name */
	size_t maclen;		/* bytes of the digest */
	enum encoding encoding; /* of the generic scheme's header */
	char *header;		/* the generic scheme's header, as given */
	char *prefix;		/* text before its digest, often empty */
	char *url;		/* Twilio's public URL of the endpoint */
	EVP_MAC *mac;
};

struct span {
	const char *p;
	size_t n;
};

/* The request as a scheme reads it.  HEADERS and BODY are borrowed from
 * the trigger, or BODY points into DECODED for raw_base64. */
struct request {
	jv trigger;
	jv headers;
	const unsigned char *body;
	size_t len;
	unsigned char *decoded;
};

/* The signed content of one request, in pieces, with its timestamp if
 * the scheme has one and the received digests. */
struct signed_data {
	struct span part[PART_MAX];
	size_t nparts;
	struct span ts;
	unsigned char sig[SIG_MAX][EVP_MAX_MD_SIZE];
	size_t nsig;
	jv text; /* Twilio's URL and parameters, owned */
};

static int
span_eq(struct span s, const char *lit)
{
	return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

static struct span
span_trim(struct span s)
{
	while (s.n > 0 && (s.p[0] == ' ' || s.p[0] == '\t')) {
		s.p++;
		s.n--;
	}
	while (s.n > 0 && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\t'))
		s.n--;
	return s;
}

/* Splits *rest at the first SEP: returns the field before it and leaves
 * *rest after it, or returns all of *rest and leaves it empty. */
static struct span
span_next(struct span *rest, char sep)
{
	struct span field = *rest;
	const char *at = memchr(rest->p, sep, rest->n);

	if (at == NULL) {
		rest->p += rest->n;
		rest->n = 0;
		return field;
	}
	field.n = at - rest->p;
	rest->n -= field.n + 1;
	rest->p = at + 1;
	return field;
}

/* Decodes exactly WANT bytes of hex, either letter case. */
static int
hex_decode(struct span s, unsigned char *out, size_t want)
{
	char text[2 * EVP_MAX_MD_SIZE + 1];
	size_t got = 0;

	if (s.n != 2 * want || s.n >= sizeof(text))
		return -1;
	memcpy(text, s.p, s.n);
	text[s.n] = '\0';
	if (OPENSSL_hexstr2buf_ex(out, want, &got, text, '\0') != 1)
		return -1;
	return got == want ? 0 : -1;
}

/*
 * Decodes standard base64 (RFC 4648, "+/", padding optional) into OUT,
 * which has room for at least 3 * (s.n + 3) / 4 bytes.  EVP_DecodeBlock wants
 * whole quanta and counts the bytes that padding stands for, so the
 * text is padded first and those bytes are taken off after.
 */
static int
base64_decode(struct span s, unsigned char *out, size_t *outlen)
{
	unsigned char *text;
	size_t i, n = s.n, pad;
	int got;

	while (n > 0 && s.p[n - 1] == '=' && s.n - n < 2)
		n--;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s.p[i]) && s.p[i] != '+' &&
		    s.p[i] != '/')
			return -1;
	if (n % 4 == 1 || n > (size_t)1 << 30)
		return -1;
	pad = (4 - n % 4) % 4;
	text = malloc(n + pad + 1);
	if (text == NULL)
		return -1;
	memcpy(text, s.p, n);
	memset(text + n, '=', pad);
	got = EVP_DecodeBlock(out, text, (int)(n + pad));
	free(text);
	if (got < 0 || (size_t)got < pad)
		return -1;
	*outlen = got - pad;
	return 0;
}

static int
base64_decode_exact(struct span s, unsigned char *out, size_t want)
{
	unsigned char buf[EVP_MAX_MD_SIZE + 4];
	size_t got;

	if (s.n > 4 * ((EVP_MAX_MD_SIZE + 2) / 3))
		return -1;
	if (base64_decode(s, buf, &got) == -1 || got != want)
		return -1;
	memcpy(out, buf, want);
	return 0;
}

/* Computes the HMAC of the parts with KEY into OUT (maclen bytes). */
static int
mac_compute(const struct sigscheme *s, const void *key, size_t keylen,
    const struct span *part, size_t nparts, unsigned char *out)
{
	OSSL_PARAM params[2];
	EVP_MAC_CTX *ctx;
	size_t i, outlen = 0;
	int ok;

	params[0] = OSSL_PARAM_construct_utf8_string(
	    OSSL_MAC_PARAM_DIGEST, (char *)s->digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	ctx = EVP_MAC_CTX_new(s->mac);
	if (ctx == NULL)
		return -1;
	ok = EVP_MAC_init(ctx, key, keylen, params);
	for (i = 0; ok && i < nparts; i++)
		ok = EVP_MAC_update(
		    ctx, (const unsigned char *)part[i].p, part[i].n);
	if (ok)
		ok = EVP_MAC_final(ctx, out, &outlen, EVP_MAX_MD_SIZE);
	EVP_MAC_CTX_free(ctx);
	return ok && outlen == s->maclen ? 0 : -1;
}

/*
 * Decodes a Standard Webhooks secret: base64 after "whsec_", or the whole
 * text without that prefix.  *key is malloc'd, for OPENSSL_clear_free.
 */
static int
stdwh_key(const struct secret *secret, unsigned char **key, size_t *len)
{
	struct span s = {secret->data, secret->len};

	if (s.n > 6 && memcmp(s.p, "whsec_", 6) == 0) {
		s.p += 6;
		s.n -= 6;
	}
	*key = malloc(3 * (s.n + 3) / 4 + 1);
	if (*key == NULL)
		return -1;
	if (base64_decode(s, *key, len) == -1 || *len == 0) {
		OPENSSL_clear_free(*key, 3 * (s.n + 3) / 4 + 1);
		*key = NULL;
		return -1;
	}
	return 0;
}

static int
scheme_set_digest(struct sigscheme *s, const char *name)
{
	if (strcmp(name, "sha1") == 0)
		s->digest = "SHA1", s->maclen = 20;
	else if (strcmp(name, "sha256") == 0)
		s->digest = "SHA256", s->maclen = 32;
	else if (strcmp(name, "sha512") == 0)
		s->digest = "SHA512", s->maclen = 64;
	else
		return -1;
	return 0;
}

/* Returns whether NAME is an HTTP field name (RFC 9110's token). */
static int
header_name_valid(const char *name)
{
	if (*name == '\0')
		return 0;
	for (; *name != '\0'; name++)
		if (!isalnum((unsigned char)*name) &&
		    strchr("!#$%&'*+-.^_`|~", *name) == NULL)
			return 0;
	return 1;
}

/*
 * Parses "HEADER[:PREFIX][:hex|base64]" after "hmac-ALG:".  A last field
 * that is "hex" or "base64" is the encoding, so a prefix of that text
 * needs the encoding written after it.
 */
static int
scheme_parse_hmac(
    struct sigscheme *s, const char *args, char *why, size_t whylen)
{
	char *copy, *colon, *last;

	copy = strdup(args);
	if (copy == NULL)
		return -1;
	s->encoding = ENC_HEX;
	last = strrchr(copy, ':');
	if (last != NULL &&
	    (strcmp(last + 1, "hex") == 0 || strcmp(last + 1, "base64") == 0)) {
		s->encoding = last[1] == 'b' ? ENC_BASE64 : ENC_HEX;
		*last = '\0';
	}
	colon = strchr(copy, ':');
	s->prefix = strdup(colon != NULL ? colon + 1 : "");
	if (colon != NULL)
		*colon = '\0';
	s->header = copy;
	if (s->prefix == NULL)
		return -1;
	if (!header_name_valid(s->header)) {
		snprintf(why, whylen, "invalid header name \"%s\"", s->header);
		return -1;
	}
	return 0;
}

static int
scheme_parse(struct sigscheme *s, const char *spec, char *why, size_t whylen)
{
	static const struct {
		const char *name;
		enum scheme_kind kind;
	} fixed[] = {
	    {"github", SCHEME_GITHUB},
	    {"stripe", SCHEME_STRIPE},
	    {"slack", SCHEME_SLACK},
	    {"shopify", SCHEME_SHOPIFY},
	    {"standard-webhooks", SCHEME_STDWH},
	};
	char alg[8];
	size_t i, n;

	scheme_set_digest(s, "sha256");
	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (strcmp(spec, fixed[i].name) == 0) {
			s->kind = fixed[i].kind;
			return 0;
		}
	if (strncmp(spec, "twilio:", 7) == 0 && spec[7] != '\0') {
		s->kind = SCHEME_TWILIO;
		scheme_set_digest(s, "sha1");
		s->url = strdup(spec + 7);
		return s->url == NULL ? -1 : 0;
	}
	n = strcspn(spec, ":");
	if (strncmp(spec, "hmac-", 5) == 0 && spec[n] == ':' &&
	    n - 5 < sizeof(alg)) {
		memcpy(alg, spec + 5, n - 5);
		alg[n - 5] = '\0';
		s->kind = SCHEME_HMAC;
		if (scheme_set_digest(s, alg) == 0)
			return scheme_parse_hmac(s, spec + n + 1, why, whylen);
	}
	snprintf(why, whylen,
	    "unknown signature scheme \"%s\" (github, "
	    "stripe, slack, shopify, standard-webhooks, twilio:URL, "
	    "hmac-sha1|sha256|sha512:HEADER[:PREFIX][:hex|base64])",
	    spec);
	return -1;
}

struct sigscheme *
signature_scheme(const char *spec, char *why, size_t whylen)
{
	struct sigscheme *s;

	snprintf(why, whylen, "out of memory");
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	if (scheme_parse(s, spec, why, whylen) == -1) {
		signature_scheme_free(s);
		return NULL;
	}
	s->mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
	if (s->mac == NULL) {
		snprintf(why, whylen, "OpenSSL has no HMAC");
		signature_scheme_free(s);
		return NULL;
	}
	return s;
}

void
signature_scheme_free(struct sigscheme *s)
{
	if (s == NULL)
		return;
	EVP_MAC_free(s->mac);
	free(s->header);
	free(s->prefix);
	free(s->url);
	free(s);
}

/*
 * Finds the body bytes: raw, a string, else raw_base64 decoded.  A
 * trigger with neither is rejected rather than read as an empty body,
 * because whook-listen writes raw "" for a request without a body.
 */
static int
request_open(struct request *rq, jv trigger, char *reason, size_t len)
{
	jv raw;

	memset(rq, 0, sizeof(*rq));
	rq->trigger = trigger;
	rq->headers = jv_null();
	rq->body = (const unsigned char *)"";
	if (jv_get_kind(trigger) != JV_KIND_OBJECT) {
		snprintf(reason, len, "bad format: $trigger is not an object");
		return -1;
	}
	rq->headers = jv_object_get(jv_copy(trigger), jv_string("headers"));
	raw = jv_object_get(jv_copy(trigger), jv_string("raw"));
	if (jv_get_kind(raw) == JV_KIND_STRING) {
		/* The trigger keeps the string alive after this reference. */
		rq->body = (const unsigned char *)jv_string_value(raw);
		rq->len = jv_string_length_bytes(jv_copy(raw));
		jv_free(raw);
		return 0;
	}
	jv_free(raw);
	raw = jv_object_get(jv_copy(trigger), jv_string("raw_base64"));
	if (jv_get_kind(raw) == JV_KIND_STRING) {
		struct span s = {
		    jv_string_value(raw), jv_string_length_bytes(jv_copy(raw))};

		rq->decoded = malloc(3 * (s.n + 3) / 4 + 1);
		if (rq->decoded != NULL &&
		    base64_decode(s, rq->decoded, &rq->len) == 0) {
			rq->body = rq->decoded;
			jv_free(raw);
			return 0;
		}
	}
	snprintf(reason, len, "bad format: %s",
	    jv_is_valid(raw) ? "$trigger.raw_base64 is not base64"
			     : "$trigger has no raw or raw_base64 body");
	jv_free(raw);
	return -1;
}

static void
request_close(struct request *rq)
{
	jv_free(rq->headers);
	free(rq->decoded);
}

/* Finds header NAME (any case) as a trimmed span, or sets the reason. */
static int
header_get(struct request *rq, const char *name, struct span *value,
    char *reason, size_t len)
{
	char lower[256];
	size_t i;
	jv v;

	for (i = 0; name[i] != '\0' && i + 1 < sizeof(lower); i++)
		lower[i] = tolower((unsigned char)name[i]);
	lower[i] = '\0';
	v = jv_invalid();
	if (jv_get_kind(rq->headers) == JV_KIND_OBJECT)
		v = jv_object_get(jv_copy(rq->headers), jv_string(lower));
	if (jv_get_kind(v) != JV_KIND_STRING) {
		if (jv_is_valid(v))
			snprintf(reason, len,
			    "bad format: header %s is not a string", name);
		else
			snprintf(reason, len, "missing header %s", name);
		jv_free(v);
		return -1;
	}
	/* The headers object keeps the string alive after this reference. */
	value->p = jv_string_value(v);
	value->n = jv_string_length_bytes(jv_copy(v));
	jv_free(v);
	*value = span_trim(*value);
	return 0;
}

static void
data_add(struct signed_data *d, const char *p, size_t n)
{
	d->part[d->nparts].p = p;
	d->part[d->nparts].n = n;
	d->nparts++;
}

static void
data_add_body(struct signed_data *d, const struct request *rq)
{
	data_add(d, (const char *)rq->body, rq->len);
}

/* Reads "PREFIX" + digest in ENC from header NAME into d->sig[0]. */
static int
read_prefixed(const struct sigscheme *s, struct request *rq, const char *name,
    const char *prefix, enum encoding enc, struct signed_data *d, char *reason,
    size_t len)
{
	struct span v;
	size_t plen = strlen(prefix);
	int bad;

	if (header_get(rq, name, &v, reason, len) == -1)
		return -1;
	bad = v.n < plen || memcmp(v.p, prefix, plen) != 0;
	v.p += bad ? 0 : plen;
	v.n -= bad ? 0 : plen;
	if (!bad && enc == ENC_HEX)
		bad = hex_decode(v, d->sig[0], s->maclen) == -1;
	else if (!bad)
		bad = base64_decode_exact(v, d->sig[0], s->maclen) == -1;
	if (bad) {
		snprintf(reason, len,
		    "bad format: header %s is not \"%s\" and a %s %s digest",
		    name, prefix, enc == ENC_HEX ? "hex" : "base64", s->digest);
		return -1;
	}
	d->nsig = 1;
	return 0;
}

static int
read_github(const struct sigscheme *s, struct request *rq,
    struct signed_data *d, char *reason, size_t len)
{
	data_add_body(d, rq);
	return read_prefixed(
	    s, rq, "X-Hub-Signature-256", "sha256=", ENC_HEX, d, reason, len);
}

static int
read_shopify(const struct sigscheme *s, struct request *rq,
    struct signed_data *d, char *reason, size_t len)
{
	data_add_body(d, rq);
	return read_prefixed(
	    s, rq, "X-Shopify-Hmac-Sha256", "", ENC_BASE64, d, reason, len);
}

static int
read_hmac(const struct sigscheme *s, struct request *rq, struct signed_data *d,
    char *reason, size_t len)
{
	data_add_body(d, rq);
	return read_prefixed(
	    s, rq, s->header, s->prefix, s->encoding, d, reason, len);
}

static int
read_slack(const struct sigscheme *s, struct request *rq, struct signed_data *d,
    char *reason, size_t len)
{
	if (header_get(rq, "X-Slack-Request-Timestamp", &d->ts, reason, len) ==
	    -1)
		return -1;
	data_add(d, "v0:", 3);
	data_add(d, d->ts.p, d->ts.n);
	data_add(d, ":", 1);
	data_add_body(d, rq);
	return read_prefixed(
	    s, rq, "X-Slack-Signature", "v0=", ENC_HEX, d, reason, len);
}

static int
signature_room(const struct signed_data *d, char *reason, size_t len)
{
	if (d->nsig < SIG_MAX)
		return 0;
	snprintf(reason, len, "bad format: more than %d signatures", SIG_MAX);
	return -1;
}

/* Takes one "key=value" entry of Stripe-Signature: t, or a v1 digest.
 * Other keys such as v0 are skipped. */
static int
stripe_entry(const struct sigscheme *s, struct span entry,
    struct signed_data *d, char *reason, size_t len)
{
	struct span key;

	if (memchr(entry.p, '=', entry.n) == NULL) {
		snprintf(reason, len,
		    "bad format: Stripe-Signature entry without \"=\"");
		return -1;
	}
	key = span_trim(span_next(&entry, '='));
	entry = span_trim(entry);
	if (span_eq(key, "t")) {
		if (d->ts.p != NULL) {
			snprintf(reason, len,
			    "bad format: Stripe-Signature has two t= entries");
			return -1;
		}
		d->ts = entry;
	} else if (span_eq(key, "v1")) {
		if (signature_room(d, reason, len) == -1)
			return -1;
		if (hex_decode(entry, d->sig[d->nsig], s->maclen) == -1) {
			snprintf(reason, len,
			    "bad format: Stripe-Signature v1 "
			    "is not a hex SHA256 digest");
			return -1;
		}
		d->nsig++;
	}
	return 0;
}

static int
read_stripe(const struct sigscheme *s, struct request *rq,
    struct signed_data *d, char *reason, size_t len)
{
	struct span v;

	if (header_get(rq, "Stripe-Signature", &v, reason, len) == -1)
		return -1;
	while (v.n > 0)
		if (stripe_entry(s, span_next(&v, ','), d, reason, len) == -1)
			return -1;
	if (d->ts.p == NULL || d->nsig == 0) {
		snprintf(reason, len,
		    "bad format: Stripe-Signature has no %s entry",
		    d->ts.p == NULL ? "t=" : "v1=");
		return -1;
	}
	data_add(d, d->ts.p, d->ts.n);
	data_add(d, ".", 1);
	data_add_body(d, rq);
	return 0;
}

/* Takes the v1 entries of a space-separated webhook-signature list.
 * Other versions are skipped, such as the asymmetric v1a. */
static int
stdwh_signatures(const struct sigscheme *s, struct span list, const char *name,
    struct signed_data *d, char *reason, size_t len)
{
	struct span entry, version;

	while (list.n > 0) {
		entry = span_next(&list, ' ');
		if (entry.n == 0)
			continue;
		if (memchr(entry.p, ',', entry.n) == NULL) {
			snprintf(reason, len,
			    "bad format: %s entry without \",\"", name);
			return -1;
		}
		version = span_next(&entry, ',');
		if (!span_eq(version, "v1"))
			continue;
		if (signature_room(d, reason, len) == -1)
			return -1;
		if (base64_decode_exact(entry, d->sig[d->nsig], s->maclen) ==
		    -1) {
			snprintf(reason, len,
			    "bad format: %s v1 is not a base64 SHA256 digest",
			    name);
			return -1;
		}
		d->nsig++;
	}
	if (d->nsig == 0) {
		snprintf(reason, len, "bad format: %s has no v1 entry", name);
		return -1;
	}
	return 0;
}

/* Reads webhook-id, -timestamp and -signature, or Svix's svix-id,
 * -timestamp and -signature when webhook-signature is absent. */
static int
read_stdwh(const struct sigscheme *s, struct request *rq, struct signed_data *d,
    char *reason, size_t len)
{
	static const char *const std[] = {
	    "webhook-id", "webhook-timestamp", "webhook-signature"};
	static const char *const svix[] = {
	    "svix-id", "svix-timestamp", "svix-signature"};
	const char *const *name = std;
	struct span id, list;

	if (header_get(rq, svix[2], &list, reason, len) == 0 &&
	    header_get(rq, std[2], &list, reason, len) == -1)
		name = svix;
	if (header_get(rq, name[0], &id, reason, len) == -1 ||
	    header_get(rq, name[1], &d->ts, reason, len) == -1 ||
	    header_get(rq, name[2], &list, reason, len) == -1)
		return -1;
	if (id.n == 0) {
		snprintf(reason, len, "bad format: %s is empty", name[0]);
		return -1;
	}
	data_add(d, id.p, id.n);
	data_add(d, ".", 1);
	data_add(d, d->ts.p, d->ts.n);
	data_add(d, ".", 1);
	data_add_body(d, rq);
	return stdwh_signatures(s, list, name[2], d, reason, len);
}

/*
 * Builds Twilio's signed text: the public URL, then each form field's
 * name and value with the names sorted (jv_keys sorts by code point).
 */
/* Returns whether the request's Content-Type is TYPE, parameters aside. */
static int
content_type_is(struct request *rq, const char *type)
{
	size_t n = strlen(type);
	char ignored[64];
	struct span ct;

	if (header_get(rq, "Content-Type", &ct, ignored, sizeof(ignored)) == -1)
		return 0;
	if (ct.n < n || strncasecmp(ct.p, type, n) != 0)
		return 0;
	return ct.n == n || ct.p[n] == ';' || ct.p[n] == ' ';
}

/* Finds the form fields Twilio signs: an empty body has none, and a body
 * of any other type than a form is rejected. */
static int
twilio_form(struct request *rq, jv *form, char *reason, size_t len)
{
	int kind;

	*form = jv_object_get(jv_copy(rq->trigger), jv_string("body"));
	kind = jv_get_kind(*form);
	if (kind == JV_KIND_NULL || kind == JV_KIND_INVALID) {
		jv_free(*form);
		*form = jv_object();
		return 0;
	}
	if (kind == JV_KIND_OBJECT &&
	    content_type_is(rq, "application/x-www-form-urlencoded"))
		return 0;
	snprintf(reason, len,
	    "bad format: the Twilio body is not "
	    "application/x-www-form-urlencoded");
	return -1;
}

static int
twilio_text(const struct sigscheme *s, struct request *rq, jv *text,
    char *reason, size_t len)
{
	jv body, keys, value;
	int i, n, ok = 1;

	*text = jv_string(s->url);
	if (twilio_form(rq, &body, reason, len) == -1) {
		jv_free(body);
		return -1;
	}
	keys = jv_keys(jv_copy(body));
	n = jv_array_length(jv_copy(keys));
	for (i = 0; ok && i < n; i++) {
		jv key = jv_array_get(jv_copy(keys), i);

		value = jv_object_get(jv_copy(body), jv_copy(key));
		/* TODO: a repeated field (an array) is rejected, because
		 * how Twilio orders repeated values is not checked. */
		ok = jv_get_kind(value) == JV_KIND_STRING;
		if (ok) {
			*text = jv_string_concat(*text, key);
			*text = jv_string_concat(*text, value);
		} else {
			snprintf(reason, len,
			    "bad format: form field %s is not one string",
			    jv_string_value(key));
			jv_free(key);
			jv_free(value);
		}
	}
	jv_free(keys);
	jv_free(body);
	return ok ? 0 : -1;
}

static int
read_twilio(const struct sigscheme *s, struct request *rq,
    struct signed_data *d, char *reason, size_t len)
{
	if (twilio_text(s, rq, &d->text, reason, len) == -1)
		return -1;
	data_add(d, jv_string_value(d->text),
	    jv_string_length_bytes(jv_copy(d->text)));
	return read_prefixed(
	    s, rq, "X-Twilio-Signature", "", ENC_BASE64, d, reason, len);
}

static int
read_signed_data(const struct sigscheme *s, struct request *rq,
    struct signed_data *d, char *reason, size_t len)
{
	switch (s->kind) {
	case SCHEME_GITHUB:
		return read_github(s, rq, d, reason, len);
	case SCHEME_STRIPE:
		return read_stripe(s, rq, d, reason, len);
	case SCHEME_SLACK:
		return read_slack(s, rq, d, reason, len);
	case SCHEME_SHOPIFY:
		return read_shopify(s, rq, d, reason, len);
	case SCHEME_STDWH:
		return read_stdwh(s, rq, d, reason, len);
	case SCHEME_TWILIO:
		return read_twilio(s, rq, d, reason, len);
	default:
		return read_hmac(s, rq, d, reason, len);
	}
}

/* Checks the timestamp's form always, and its age when TOLERANCE > 0.
 * Fifteen digits keep now - ts far from overflow. */
static int
check_timestamp(struct span ts, long long now, long long tolerance,
    char *reason, size_t len)
{
	long long t = 0, age;
	size_t i;

	if (ts.n == 0 || ts.n > 15) {
		snprintf(reason, len,
		    "bad format: timestamp is not a number of seconds");
		return -1;
	}
	for (i = 0; i < ts.n; i++) {
		if (ts.p[i] < '0' || ts.p[i] > '9') {
			snprintf(reason, len,
			    "bad format: timestamp is not a number of seconds");
			return -1;
		}
		t = t * 10 + (ts.p[i] - '0');
	}
	age = now - t;
	if (tolerance > 0 && (age > tolerance || -age > tolerance)) {
		snprintf(reason, len,
		    "stale timestamp: %lld s %s, tolerance %lld s",
		    age < 0 ? -age : age, age < 0 ? "in the future" : "old",
		    tolerance);
		return -1;
	}
	return 0;
}

/* Returns 1 when SECRET's MAC equals a received digest, 0 when not, -1
 * when the secret cannot be used. */
static int
match_secret(const struct sigscheme *s, const struct signed_data *d,
    const struct secret *secret)
{
	unsigned char mac[EVP_MAX_MD_SIZE], *key = NULL;
	size_t i, keylen = secret->len;
	int found = 0, rc;

	if (s->kind == SCHEME_STDWH && stdwh_key(secret, &key, &keylen) == -1)
		return -1;
	rc = mac_compute(s, key != NULL ? key : (unsigned char *)secret->data,
	    keylen, d->part, d->nparts, mac);
	OPENSSL_clear_free(key, keylen);
	if (rc == -1)
		return -1;
	for (i = 0; i < d->nsig; i++)
		found |= CRYPTO_memcmp(mac, d->sig[i], s->maclen) == 0;
	OPENSSL_cleanse(mac, sizeof(mac));
	return found;
}

static int
match_any(const struct sigscheme *s, const struct signed_data *d,
    const struct secret *secrets, size_t nsecrets, char *reason, size_t len)
{
	size_t i;
	int rc;

	for (i = 0; i < nsecrets; i++) {
		rc = match_secret(s, d, &secrets[i]);
		if (rc == 1)
			return 0;
		if (rc == -1) {
			snprintf(reason, len, "bad secret: secret %zu %s",
			    i + 1,
			    s->kind == SCHEME_STDWH ? "is not whsec_ and base64"
						    : "cannot key an HMAC");
			return -1;
		}
	}
	snprintf(reason, len, "mismatch");
	return -1;
}

int
signature_verify(const struct sigscheme *s, jv trigger,
    const struct secret *secrets, size_t nsecrets, long long now,
    long long tolerance, char *reason, size_t reasonlen)
{
	struct request rq;
	struct signed_data d;
	int rc = 1;

	memset(&d, 0, sizeof(d));
	d.text = jv_null();
	if (request_open(&rq, trigger, reason, reasonlen) == 0 &&
	    read_signed_data(s, &rq, &d, reason, reasonlen) == 0 &&
	    (d.ts.p == NULL || check_timestamp(d.ts, now, tolerance, reason,
				   reasonlen) == 0) &&
	    match_any(s, &d, secrets, nsecrets, reason, reasonlen) == 0)
		rc = 0;
	OPENSSL_cleanse(d.sig, sizeof(d.sig));
	jv_free(d.text);
	request_close(&rq);
	if (rc == 0 && reasonlen > 0)
		reason[0] = '\0';
	return rc;
}

/* Writes DIGEST as lowercase hex or padded base64 into OUT. */
static void
digest_encode(const unsigned char *digest, size_t n, enum encoding enc,
    char *out, size_t outlen)
{
	size_t i, got = 0;

	if (enc == ENC_BASE64) {
		EVP_EncodeBlock((unsigned char *)out, digest, (int)n);
		return;
	}
	if (OPENSSL_buf2hexstr_ex(out, outlen, &got, digest, n, '\0') != 1)
		out[0] = '\0';
	for (i = 0; out[i] != '\0'; i++)
		out[i] = tolower((unsigned char)out[i]);
}

static enum encoding
scheme_encoding(const struct sigscheme *s)
{
	switch (s->kind) {
	case SCHEME_SHOPIFY:
	case SCHEME_STDWH:
	case SCHEME_TWILIO:
		return ENC_BASE64;
	case SCHEME_HMAC:
		return s->encoding;
	default:
		return ENC_HEX;
	}
}

/* Lists the pieces of the signed content for S, as the reading side
 * assembles them. */
static void
sign_parts(const struct sigscheme *s, struct signed_data *d, const char *body,
    size_t len, const char *ts, const char *id)
{
	if (s->kind == SCHEME_SLACK)
		data_add(d, "v0:", 3);
	if (s->kind == SCHEME_STDWH) {
		data_add(d, id, strlen(id));
		data_add(d, ".", 1);
	}
	if (s->kind == SCHEME_STRIPE || s->kind == SCHEME_SLACK ||
	    s->kind == SCHEME_STDWH) {
		data_add(d, ts, strlen(ts));
		data_add(d, s->kind == SCHEME_SLACK ? ":" : ".", 1);
	}
	data_add(d, body, len);
}

/* Stores one formatted header in the first free slot of HEADERS. */
static int __attribute__((format(printf, 2, 3)))
header_add(char *headers[5], const char *fmt, ...)
{
	va_list ap;
	int i, n;

	for (i = 0; i < 4 && headers[i] != NULL; i++)
		;
	va_start(ap, fmt);
	n = vasprintf(&headers[i], fmt, ap);
	va_end(ap);
	if (n == -1)
		headers[i] = NULL;
	return n == -1 ? -1 : 0;
}

static int
sign_headers(const struct sigscheme *s, const char *sig, const char *ts,
    const char *id, char *headers[5])
{
	switch (s->kind) {
	case SCHEME_GITHUB:
		return header_add(
		    headers, "X-Hub-Signature-256: sha256=%s", sig);
	case SCHEME_STRIPE:
		return header_add(
		    headers, "Stripe-Signature: t=%s,v1=%s", ts, sig);
	case SCHEME_SLACK:
		if (header_add(headers, "X-Slack-Request-Timestamp: %s", ts) ==
		    -1)
			return -1;
		return header_add(headers, "X-Slack-Signature: v0=%s", sig);
	case SCHEME_SHOPIFY:
		return header_add(headers, "X-Shopify-Hmac-Sha256: %s", sig);
	case SCHEME_STDWH:
		if (header_add(headers, "webhook-id: %s", id) == -1 ||
		    header_add(headers, "webhook-timestamp: %s", ts) == -1)
			return -1;
		return header_add(headers, "webhook-signature: v1,%s", sig);
	default:
		return header_add(
		    headers, "%s: %s%s", s->header, s->prefix, sig);
	}
}

static void
headers_free(char *headers[5])
{
	int i;

	for (i = 0; i < 5; i++) {
		free(headers[i]);
		headers[i] = NULL;
	}
}

/* Makes a webhook-id: "msg_" and 128 random bits in hex. */
static int
message_id(char *out, size_t outlen)
{
	unsigned char bytes[16];

	if (RAND_bytes(bytes, sizeof(bytes)) != 1)
		return -1;
	snprintf(out, outlen, "msg_");
	digest_encode(bytes, sizeof(bytes), ENC_HEX, out + 4, outlen - 4);
	return 0;
}

static int
sign_mac(const struct sigscheme *s, const struct secret *secret,
    const struct signed_data *d, unsigned char *mac)
{
	unsigned char *key = NULL;
	size_t keylen = secret->len;
	int rc;

	if (s->kind == SCHEME_STDWH && stdwh_key(secret, &key, &keylen) == -1)
		return -1;
	rc = mac_compute(s, key != NULL ? key : (unsigned char *)secret->data,
	    keylen, d->part, d->nparts, mac);
	OPENSSL_clear_free(key, keylen);
	return rc;
}

int
signature_sign(const struct sigscheme *s, const struct secret *secret,
    const char *body, size_t len, long long timestamp, const char *id,
    char *headers[5], char *why, size_t whylen)
{
	char ts[24], idbuf[40], sig[2 * EVP_MAX_MD_SIZE + 1];
	unsigned char mac[EVP_MAX_MD_SIZE];
	struct signed_data d;

	memset(headers, 0, 5 * sizeof(headers[0]));
	memset(&d, 0, sizeof(d));
	if (s->kind == SCHEME_TWILIO) {
		snprintf(why, whylen, "twilio: signing is not supported");
		return -1;
	}
	if (timestamp < 0) {
		snprintf(why, whylen, "invalid timestamp %lld", timestamp);
		return -1;
	}
	snprintf(ts, sizeof(ts), "%lld", timestamp);
	if (s->kind == SCHEME_STDWH && id == NULL) {
		if (message_id(idbuf, sizeof(idbuf)) == -1) {
			snprintf(why, whylen, "RAND_bytes failed");
			return -1;
		}
		id = idbuf;
	}
	sign_parts(s, &d, body, len, ts, id);
	if (sign_mac(s, secret, &d, mac) == -1) {
		snprintf(why, whylen,
		    s->kind == SCHEME_STDWH ? "the secret "
					      "is not whsec_ and base64"
					    : "HMAC failed");
		return -1;
	}
	digest_encode(mac, s->maclen, scheme_encoding(s), sig, sizeof(sig));
	OPENSSL_cleanse(mac, sizeof(mac));
	if (sign_headers(s, sig, ts, id, headers) == -1) {
		headers_free(headers);
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	return 0;
}
