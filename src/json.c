/*
 * JSON text to jv values and back, with libjq's codec.  jq 1.6 keeps every
 * number as a double, which would turn a Shopify order id such as
 * 7301234567890123456 into 7301234567890123776.  So an integer literal
 * beyond 2^53 is carried as a string of a NUL byte and its digits, which
 * every whook program recognizes, and json_dump writes it back as the bare
 * number it was.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "whook.h"

#define BIGNUM_MARK "\\u0000"
#define BIGNUM_MARK_LEN 6

/* Skips the leading zeros of the digits S, keeping the last digit. */
static size_t
leading_zeros(const char *s, size_t n)
{
	size_t k = 0;

	while (k + 1 < n && s[k] == '0')
		k++;
	return k;
}

/* Returns whether the integer literal S (digits, optional '-') needs more
 * than a double's 53 bits. */
static int
literal_is_big(const char *s, size_t n)
{
	static const char limit[] = "9007199254740992";
	size_t zeros;

	if (n > 0 && s[0] == '-') {
		s++;
		n--;
	}
	zeros = leading_zeros(s, n);
	s += zeros;
	n -= zeros;
	if (n < sizeof(limit) - 1)
		return 0;
	if (n > sizeof(limit) - 1)
		return 1;
	return memcmp(s, limit, n) > 0;
}

/* Returns the index after the token that starts at TEXT[I]: libjq reads
 * a number or a literal such as true as a run of these bytes. */
static size_t
token_end(const char *text, size_t len, size_t i)
{
	for (; i < len; i++) {
		char c = text[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
			(c >= 'A' && c <= 'Z') || c == '.' || c == '+' ||
			c == '-'))
			break;
	}
	return i;
}

/* Returns whether the token S of N bytes is an integer literal: an
 * optional '-' and digits.  Anything else, such as "1-2", is left for
 * libjq to accept or reject. */
static int
is_integer(const char *s, size_t n)
{
	size_t i = n > 0 && s[0] == '-';

	if (i == n)
		return 0;
	for (; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/* Returns whether the token S of N bytes is one of the words for NaN
 * and infinity that libjq 1.6 reads as numbers, though JSON has none. */
static int
is_non_finite(const char *s, size_t n)
{
	static const char *const words[] = {"nan", "inf", "infinity"};
	size_t k;

	if (n > 0 && (s[0] == '-' || s[0] == '+')) {
		s++;
		n--;
	}
	for (k = 0; k < sizeof(words) / sizeof(words[0]); k++)
		if (n == strlen(words[k]) && strncasecmp(s, words[k], n) == 0)
			return 1;
	return 0;
}

/*
 * Cuts: what json_parse changes in a text before libjq's parser reads it.
 * A big integer literal becomes the marked string.  A long string literal
 * without escapes or control bytes is cut out, and put back afterwards as
 * jv_string_sized of its bytes, which is also how libjq's parser ends a
 * string (found_string in jq 1.6's jv_parse.c).  The parser copies a
 * string into its token buffer a byte at a time: a 1.5 KB body with a
 * 1.4 KB string took it 6.3 us, and json_parse 4.2 us.
 */
#define LONG_STRING 128
#define LONG_MARK "\\u0000L"
#define LONG_MARK_LEN 7
enum cut_kind { CUT_BIG, CUT_LONG, CUT_LONG_ESCAPED };
struct cut {
	size_t at, len; /* the literal's bytes, quotes included */
	enum cut_kind kind;
};
struct cuts {
	struct cut *v;
	size_t n, cap, nlong, nbig;
	int no_long;	   /* the text contains a NUL, raw or escaped */
	size_t non_finite; /* index + 1 of a nan or inf literal, or 0 */
};

static int
cuts_add(struct cuts *c, size_t at, size_t len, enum cut_kind kind)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 8;
		struct cut *v = realloc(c->v, cap * sizeof(*v));

		if (v == NULL)
			return -1;
		c->v = v;
		c->cap = cap;
	}
	c->v[c->n++] = (struct cut){at, len, kind};
	if (kind == CUT_BIG)
		c->nbig++;
	else
		c->nlong++;
	return 0;
}

/* The bytes that end a plain run inside a string literal: a quote, a
 * backslash and the control bytes. */
static const unsigned char stops[256] = {
    [0 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1};

/* Returns the index of the first stop byte of U from I on, or LEN.  With
 * SSE2, which every x86-64 processor has, sixteen bytes are tested at a
 * time: the byte loop took a third of the time to parse an envelope. */
static size_t
next_stop(const unsigned char *u, size_t len, size_t i)
{
#ifdef __SSE2__
	const __m128i quote = _mm_set1_epi8('"');
	const __m128i backslash = _mm_set1_epi8('\\');
	const __m128i control = _mm_set1_epi8(0x1f);
	__m128i v, hit;
	int mask;

	for (; i + 16 <= len; i += 16) {
		v = _mm_loadu_si128((const __m128i *)(const void *)(u + i));
		hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote),
				       _mm_cmpeq_epi8(v, backslash)),
		    _mm_cmpeq_epi8(_mm_min_epu8(v, control), v));
		mask = _mm_movemask_epi8(hit);
		if (mask != 0)
			return i + (size_t)__builtin_ctz((unsigned)mask);
	}
#endif
	while (i < len && !stops[u[i]])
		i++;
	return i;
}

/* Returns the index after the string literal that opens at S[I] (LEN + 1
 * when it does not end), and whether it is plain: no escape, no byte
 * below 0x20. */
static size_t
literal_end(const char *s, size_t len, size_t i, int *plain)
{
	const unsigned char *u = (const unsigned char *)s;

	*plain = 1;
	for (i++;;) {
		i = next_stop(u, len, i);
		if (i >= len)
			return len + 1;
		if (u[i] == '"')
			return i + 1;
		*plain = 0;
		i += u[i] == '\\' ? 2 : 1;
	}
}

/* Returns whether the literal that ends before S[I] is an object key. */
static int
is_key(const char *s, size_t len, size_t i)
{
	while (i < len &&
	       (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i < len && s[i] == ':';
}

/*
 * Finds the literals of TEXT that json_parse rewrites.  Returns 0, -1
 * without memory, or the index + 2 of a string that follows a value with
 * no separator: libjq 1.6 rejects that but leaks the string, so the
 * parser is never given one.  A long string with escapes is cut too, and
 * decoded alone by libjq when put back.  A number where a key belongs is left
 * for libjq to reject.
 */
static long
find_cuts(const char *text, size_t len, struct cuts *c)
{
	size_t i = 0, end, depth = 0;
	int integer, plain, after_value = 0;

	c->no_long = memchr(text, '\0', len) != NULL ||
		     memmem(text, len, "\\u0000", 6) != NULL;
	while (i < len) {
		char ch = text[i];

		if (ch == '"') {
			end = literal_end(text, len, i, &plain);
			if (after_value && depth > 0 && end <= len)
				return (long)i + 2;
			after_value = !is_key(text, len, end);
			if (!c->no_long && end - i >= LONG_STRING &&
			    end < len && !is_key(text, len, end) &&
			    cuts_add(c, i, end - i,
				plain ? CUT_LONG : CUT_LONG_ESCAPED) == -1)
				return -1;
			i = end;
		} else if (ch == '-' || (ch >= '0' && ch <= '9') ||
			   (ch >= 'a' && ch <= 'z') ||
			   (ch >= 'A' && ch <= 'Z')) {
			end = token_end(text, len, i);
			if (is_non_finite(text + i, end - i)) {
				c->non_finite = i + 1;
				return 0;
			}
			integer = is_integer(text + i, end - i);
			/* After a value libjq must see the number, which it
			 * rejects, and not a string, which it would leak. */
			if (integer && !after_value &&
			    literal_is_big(text + i, end - i) &&
			    !is_key(text, len, end) &&
			    cuts_add(c, i, end - i, CUT_BIG) == -1)
				return -1;
			after_value = 1;
			i = end;
		} else {
			if (ch == '{' || ch == '[')
				depth++;
			else if ((ch == '}' || ch == ']') && depth > 0)
				depth--;
			if (ch == '{' || ch == '[' || ch == ',' || ch == ':')
				after_value = 0;
			else if (ch != ' ' && ch != '\t' && ch != '\n' &&
				 ch != '\r')
				after_value = 1; /* ] } */
			i++;
		}
	}
	return 0;
}

/* Returns the error libjq 1.6 finds in the text before TEXT[AT], or
 * jv_null() when it finds none there.  A space ends the text, so that a
 * literal such as "tru" just before AT ends as it would at the next
 * byte.  A text that is only unfinished, such as an open array, has no
 * error there. */
static jv
error_before(const char *text, size_t at)
{
	char *head = malloc(at + 1);
	jv before, msg;
	int unfinished;

	if (head == NULL)
		return jv_invalid_with_msg(jv_string("out of memory"));
	memcpy(head, text, at);
	head[at] = ' ';
	before = jv_parse_sized(head, (int)at + 1);
	free(head);
	if (jv_is_valid(before) || !jv_invalid_has_msg(jv_copy(before))) {
		jv_free(before);
		return jv_null();
	}
	msg = jv_invalid_get_msg(jv_copy(before));
	unfinished =
	    strncmp(jv_string_value(msg), "Unfinished JSON term", 20) == 0;
	jv_free(msg);
	if (!unfinished)
		return before;
	jv_free(before);
	return jv_null();
}

/* Returns an error of REASON, LEN bytes, placed as libjq places one:
 * the line of TEXT[END - 1] and the column END reaches in it, plus
 * SHIFT. */
static jv
error_at(
    const char *text, size_t end, size_t shift, const char *reason, size_t len)
{
	size_t i, line = 1, line_start = 0;

	for (i = 0; i < end; i++)
		if (text[i] == '\n') {
			line++;
			line_start = i + 1;
		}
	return jv_invalid_with_msg(jv_string_fmt("%.*s at line %zu, column %zu",
	    (int)len, reason, line, end - line_start + shift));
}

/*
 * Returns the error libjq gives TEXT, which has a string at TEXT[AT]
 * after a value inside an array or object.  An error in the text before
 * comes first.  Otherwise a string that libjq cannot decode fails as it
 * ends, and a string that it can lacks a separator before it.
 */
static jv
no_separator(const char *text, size_t len, size_t at)
{
	jv err = error_before(text, at), msg;
	const char *reason, *cut;
	size_t stop;
	int plain;

	if (jv_get_kind(err) != JV_KIND_NULL)
		return err;
	stop = literal_end(text, len, at, &plain);
	err = jv_parse_sized(text + at, (int)(stop - at));
	if (jv_is_valid(err)) {
		jv_free(err);
		reason = "Expected separator between values";
		return error_at(text, stop, 0, reason, strlen(reason));
	}
	msg = jv_invalid_get_msg(err);
	reason = jv_string_value(msg);
	cut = strstr(reason, " at line ");
	err = error_at(text, stop, 0, reason,
	    cut != NULL ? (size_t)(cut - reason) : strlen(reason));
	jv_free(msg);
	return err;
}

/* Returns the error for the nan or inf literal at TEXT[AT], after any
 * error in the text before it, which libjq would find first. */
static jv
non_finite(const char *text, size_t len, size_t at)
{
	static const char reason[] =
	    "Invalid literal: JSON has no NaN or infinity";
	jv err = error_before(text, at);

	if (jv_get_kind(err) != JV_KIND_NULL)
		return err;
	return error_at(
	    text, token_end(text, len, at), 1, reason, sizeof(reason) - 1);
}

/* Copies TEXT with its cuts rewritten into a new buffer of *OUTLEN
 * bytes, or returns NULL.  A big integer loses its leading zeros. */
static char *
apply_cuts(const char *text, size_t len, const struct cuts *c, size_t *outlen)
{
	char *out = malloc(len + c->n * 32), *p = out;
	const char *digits;
	size_t from = 0, k, n, zeros;
	int minus;

	if (out == NULL)
		return NULL;
	for (k = 0; k < c->n; k++) {
		const struct cut *cut = &c->v[k];

		memcpy(p, text + from, cut->at - from);
		p += cut->at - from;
		if (cut->kind == CUT_BIG) {
			minus = text[cut->at] == '-';
			digits = text + cut->at + minus;
			n = cut->len - minus;
			zeros = leading_zeros(digits, n);
			p += sprintf(p, "\"" BIGNUM_MARK "%s%.*s\"",
			    minus ? "-" : "", (int)(n - zeros), digits + zeros);
		} else {
			p += sprintf(p, "\"" LONG_MARK "%zu\"", k);
		}
		from = cut->at + cut->len;
	}
	memcpy(p, text + from, len - from);
	p += len - from;
	*outlen = (size_t)(p - out);
	return out;
}

/* The state of put_back. */
#define PLACE_MAX 32
struct restore {
	const char *text;
	const struct cuts *c;
	size_t left; /* long strings still to find */
	jv error;    /* why a string with escapes did not decode */
	int failed;
	/* With READS, a long string in $trigger that no read reaches is
	 * left null.  AT is the place of put_back, DEPTH steps down. */
	const struct reads *reads;
	struct place at[PLACE_MAX];
	size_t depth;
	int left_out;
};

/* Returns the value of the long string literal CUT of TEXT. */
static jv
long_string(struct restore *r, const struct cut *cut)
{
	jv v;

	if (cut->kind == CUT_LONG)
		return jv_string_sized(
		    r->text + cut->at + 1, (int)cut->len - 2);
	v = jv_parse_sized(r->text + cut->at, (int)cut->len);
	if (jv_is_valid(v))
		return v;
	if (r->failed) {
		jv_free(v);
	} else {
		r->failed = 1;
		r->error = v;
	}
	return jv_null();
}

/* Returns the cut that the marker string V (borrowed) replaced, or NULL
 * when V is not a marker. */
static const struct cut *
marked_cut(jv v, const struct cuts *c)
{
	const char *s = jv_string_value(v);
	unsigned long k;

	if (s[0] != '\0' || jv_string_length_bytes(jv_copy(v)) < 3 ||
	    s[1] != 'L')
		return NULL;
	k = strtoul(s + 2, NULL, 10);
	return k < c->n ? &c->v[k] : NULL;
}

/* Returns whether libjq decodes the string literal S, LEN bytes with its
 * quotes, without an error: it has no control byte, and each escape is
 * one of \" \\ \/ \b \f \n \r \t.  A \u escape is left to libjq. */
static int
decodes_plainly(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 1, end = len - 1;

	for (;;) {
		i = next_stop(u, end, i);
		if (i >= end)
			return 1;
		if (u[i] != '\\' || i + 1 >= end)
			return 0;
		switch (u[i + 1]) {
		case '"':
		case '\\':
		case '/':
		case 'b':
		case 'f':
		case 'n':
		case 'r':
		case 't':
			break;
		default:
			return 0;
		}
		i += 2;
	}
}

/* Returns whether the long string CUT, at R's place, can be left null:
 * it is in $trigger, not $trigger.id, no read reaches it, and libjq
 * would decode it without an error. */
static int
unread(const struct restore *r, const struct cut *cut)
{
	const struct place *at = r->at;

	if (r->reads == NULL || r->depth < 2 || r->depth > PLACE_MAX ||
	    at[0].key == NULL || at[0].len != 8 ||
	    memcmp(at[0].key, "$trigger", 8) != 0)
		return 0;
	if (r->depth == 2 && at[1].key != NULL && at[1].len == 2 &&
	    memcmp(at[1].key, "id", 2) == 0)
		return 0;
	if (cut->kind == CUT_LONG_ESCAPED &&
	    !decodes_plainly(r->text + cut->at, cut->len))
		return 0;
	return !reads_reach(r->reads, at, r->depth);
}

/* Moves R's place one step down, to KEY (LEN bytes) or, for a NULL KEY,
 * to INDEX. */
static void
step_down(struct restore *r, const char *key, size_t len, long index)
{
	if (r->depth < PLACE_MAX)
		r->at[r->depth] = (struct place){key, len, index};
	r->depth++;
}

/* Puts the long strings that apply_cuts took out back into V.  A member
 * is set again only when it contained one, because each jv_object_set
 * hashes its key. */
static jv
put_back(jv v, struct restore *r)
{
	const struct cut *cut;
	size_t before;
	int i, n;
	jv item, key;

	switch (jv_get_kind(v)) {
	case JV_KIND_STRING:
		cut = marked_cut(v, r->c);
		if (cut == NULL)
			return v;
		jv_free(v);
		r->left--;
		if (unread(r, cut)) {
			r->left_out = 1;
			return jv_null();
		}
		return long_string(r, cut);
	case JV_KIND_ARRAY:
		n = jv_array_length(jv_copy(v));
		for (i = 0; i < n && r->left > 0; i++) {
			before = r->left;
			step_down(r, NULL, 0, i);
			item = put_back(jv_array_get(jv_copy(v), i), r);
			r->depth--;
			if (r->left == before)
				jv_free(item);
			else
				v = jv_array_set(v, i, item);
		}
		return v;
	case JV_KIND_OBJECT:
		for (i = jv_object_iter(v);
		     jv_object_iter_valid(v, i) && r->left > 0;
		     i = jv_object_iter_next(v, i)) {
			before = r->left;
			key = jv_object_iter_key(v, i);
			/* Only reads need the place of each member. */
			if (r->reads != NULL)
				step_down(r, jv_string_value(key),
				    (size_t)jv_string_length_bytes(
					jv_copy(key)),
				    0);
			else
				r->depth++;
			item = put_back(jv_object_iter_value(v, i), r);
			r->depth--;
			if (r->left == before) {
				jv_free(item);
				jv_free(key);
			} else {
				v = jv_object_set(v, key, item);
			}
		}
		return v;
	default:
		return v;
	}
}

/* Returns whether V (borrowed), keys included, contains a string of the
 * form of a marked big integer. */
static int
has_marked(jv v)
{
	int found = 0, i, len;
	jv item;

	switch (jv_get_kind(v)) {
	case JV_KIND_STRING:
		return json_is_bignum(v);
	case JV_KIND_ARRAY:
		len = jv_array_length(jv_copy(v));
		for (i = 0; i < len && !found; i++) {
			item = jv_array_get(jv_copy(v), i);
			found = has_marked(item);
			jv_free(item);
		}
		return found;
	case JV_KIND_OBJECT:
		jv_object_foreach(v, key, value)
		{
			found =
			    found || json_is_bignum(key) || has_marked(value);
			jv_free(key);
			jv_free(value);
		}
		return found;
	default:
		return 0;
	}
}

/* Returns whether TEXT, parsed as it is, contains such a string. */
static int
marked_in_text(const char *text, size_t len)
{
	jv v = jv_parse_sized(text, (int)len);
	int found = jv_is_valid(v) && has_marked(v);

	jv_free(v);
	return found;
}

/* Drops what libjq 1.6 puts after an error: " (while parsing '...')" and
 * the whole text, which may contain a secret header of an envelope.  V
 * is consumed. */
static jv
without_input(jv v)
{
	const char *m, *cut;
	jv msg;

	if (jv_is_valid(v))
		return v;
	msg = jv_invalid_get_msg(v);
	if (jv_get_kind(msg) != JV_KIND_STRING)
		return jv_invalid_with_msg(msg);
	m = jv_string_value(msg);
	cut = strstr(m, " (while parsing '");
	if (cut == NULL)
		return jv_invalid_with_msg(msg);
	v = jv_invalid_with_msg(jv_string_sized(m, (int)(cut - m)));
	jv_free(msg);
	return v;
}

/* Parses TEXT for json_parse and json_parse_unread. */
static jv
parse(const char *text, size_t len, const struct reads *reads,
    const struct place *at, size_t n, int *left_out)
{
	struct cuts c = {0};
	struct restore r = {.text = text, .c = &c, .reads = reads};
	char *copy;
	size_t copylen;
	jv value;
	long found = find_cuts(text, len, &c);

	if (found != 0) {
		free(c.v);
		if (found == -1)
			return jv_invalid_with_msg(jv_string("out of memory"));
		return without_input(
		    no_separator(text, len, (size_t)found - 2));
	}
	if (c.non_finite != 0) {
		free(c.v);
		return without_input(non_finite(text, len, c.non_finite - 1));
	}
	if (c.n == 0) {
		value = jv_parse_sized(text, (int)len);
	} else {
		copy = apply_cuts(text, len, &c, &copylen);
		if (copy == NULL) {
			free(c.v);
			return jv_invalid_with_msg(jv_string("out of memory"));
		}
		value = jv_parse_sized(copy, (int)copylen);
		free(copy);
		r.left = c.nlong;
		for (r.depth = 0; r.depth < n && r.depth < PLACE_MAX; r.depth++)
			r.at[r.depth] = at[r.depth];
		r.depth = n;
		if (jv_is_valid(value) && r.left > 0)
			value = put_back(value, &r);
		*left_out = r.left_out;
		if (r.failed) {
			jv_free(value);
			value = r.error;
		}
		if (!jv_is_valid(value)) {
			/* The same error, at its place in TEXT. */
			jv_free(value);
			value = jv_parse_sized(text, (int)len);
		}
	}
	/* With a NUL in the text, a string of a NUL and digits may come from
	 * it: TEXT parsed as it is shows whether one does.  A key given twice
	 * can replace a marked integer, so counting markers is not enough. */
	if (jv_is_valid(value) && c.no_long &&
	    (c.n == 0 ? has_marked(value) : marked_in_text(text, len))) {
		jv_free(value);
		value = jv_invalid_with_msg(jv_string(
		    "a string of U+0000 and digits, the form whook gives "
		    "integers beyond 2^53"));
	}
	free(c.v);
	if (!jv_is_valid(value))
		*left_out = 0;
	return without_input(value);
}

/*
 * Parses one JSON text.  Invalid text gives jv_invalid_with_msg.  So does
 * a text with a string of U+0000 and digits, because the programs would
 * take it for a big integer: output would write it as a bare number, or
 * as invalid JSON where it is a key.
 */
jv
json_parse(const char *text, size_t len)
{
	int left_out = 0;

	return parse(text, len, NULL, NULL, 0, &left_out);
}

/*
 * Parses TEXT, the value at the place AT (N steps) of an envelope, like
 * json_parse, but leaves null each long string in $trigger that no path
 * of READS reaches.  libjq makes a string a byte at a time: leaving out
 * the raw copy of the body took flows.d/transactions from 29 to about 24
 * us for a 3.2 KB logged envelope.  *LEFT_OUT is set when one was left
 * out; json_write_reusing then writes $trigger from the text.
 */
jv
json_parse_unread(const char *text, size_t len, const struct reads *reads,
    const struct place *at, size_t n, int *left_out)
{
	*left_out = 0;
	return parse(text, len, reads, at, n, left_out);
}

jv
json_integer(long long value)
{
	char text[32];
	int n;

	if (value >= -(1LL << 53) && value <= 1LL << 53)
		return jv_number((double)value);
	text[0] = '\0'; /* the marker of a big integer */
	n = snprintf(text + 1, sizeof(text) - 1, "%lld", value);
	return jv_string_sized(text, n + 1);
}

int
json_is_bignum(jv value)
{
	return json_bignum_digits(value) != NULL;
}

const char *
json_bignum_digits(jv value)
{
	const char *s;
	int n, i;

	if (jv_get_kind(value) != JV_KIND_STRING)
		return NULL;
	s = jv_string_value(value);
	n = jv_string_length_bytes(jv_copy(value));
	if (n < 2 || s[0] != '\0')
		return NULL;
	for (i = 1; i < n; i++)
		if (!(s[i] == '-' || (s[i] >= '0' && s[i] <= '9')))
			return NULL;
	return s + 1;
}

/* Returns the length of a marked big integer at TEXT + I ('"' included on
 * both sides) in jq's output, or 0. */
static size_t
marked_literal_len(const char *text, size_t len, size_t i)
{
	size_t j = i + 1 + BIGNUM_MARK_LEN;

	if (j > len || memcmp(text + i + 1, BIGNUM_MARK, BIGNUM_MARK_LEN) != 0)
		return 0;
	while (
	    j < len && (text[j] == '-' || (text[j] >= '0' && text[j] <= '9')))
		j++;
	if (j == i + 1 + BIGNUM_MARK_LEN || j >= len || text[j] != '"')
		return 0;
	return j + 1 - i;
}

static jv
restore_big_literals(jv dumped)
{
	const char *text = jv_string_value(dumped);
	size_t len = jv_string_length_bytes(jv_copy(dumped));
	size_t i = 0, from = 0, n;
	int in_string = 0;
	jv out;

	if (memmem(text, len, "\"" BIGNUM_MARK, BIGNUM_MARK_LEN + 1) == NULL)
		return dumped;
	out = jv_string("");
	while (i < len) {
		if (in_string) {
			if (text[i] == '\\')
				i++;
			else if (text[i] == '"')
				in_string = 0;
			i++;
			continue;
		}
		if (text[i] != '"') {
			i++;
			continue;
		}
		n = marked_literal_len(text, len, i);
		if (n == 0) {
			in_string = 1;
			i++;
			continue;
		}
		out = jv_string_append_buf(out, text + from, i - from);
		out = jv_string_append_buf(out, text + i + 1 + BIGNUM_MARK_LEN,
		    n - 2 - BIGNUM_MARK_LEN);
		i += n;
		from = i;
	}
	out = jv_string_append_buf(out, text + from, len - from);
	jv_free(dumped);
	return out;
}

/* Writes VALUE as compact JSON text, a jv string. */
jv
json_dump(jv value)
{
	return restore_big_literals(jv_dump_string(value, 0));
}

/* A top-level member of a JSON object text: the key's and the value's
 * bytes. */
struct member {
	const char *key; /* without quotes */
	size_t keylen;
	const char *text; /* from the key's opening quote to the value's end */
	size_t textlen;
};

static size_t
skip_blanks(const char *s, size_t len, size_t i)
{
	while (i < len &&
	       (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i;
}

/* Returns the index after the string that opens at S[I], or 0, and
 * whether it has an escape or a control byte. */
static size_t
string_end(const char *s, size_t len, size_t i, int *escaped)
{
	int plain;

	i = literal_end(s, len, i, &plain);
	*escaped = !plain;
	return i > len ? 0 : i;
}

/* Returns the index after the value that starts at S[I], or 0. */
static size_t
value_end(const char *s, size_t len, size_t i)
{
	int depth = 0, escaped;

	for (; i < len; i++) {
		char c = s[i];

		if (c == '"') {
			i = string_end(s, len, i, &escaped);
			if (i == 0)
				return 0;
			if (depth == 0)
				return i;
			i--;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (depth == 0)
				return i;
			if (--depth == 0)
				return i + 1;
		} else if (depth == 0 && (c == ',' || c == ' ' || c == '\t' ||
					     c == '\n' || c == '\r')) {
			return i;
		}
	}
	return depth == 0 ? i : 0;
}

/*
 * Finds the members of the object TEXT; returns their number, or -1 when
 * TEXT is not an object of at most MAX members whose keys are plain,
 * valid UTF-8 and each given once.  libjq keeps the last of two equal
 * keys, and an escape or a bad byte can make two keys equal that differ
 * as text, so the text of such a member may not be the value that won.
 */
static int
top_members(const char *s, size_t len, struct member *m, int max)
{
	size_t i = skip_blanks(s, len, 0), key, end;
	int n = 0, k, escaped;

	if (i >= len || s[i] != '{')
		return -1;
	i = skip_blanks(s, len, i + 1);
	while (i < len && s[i] == '"') {
		if (n == max)
			return -1;
		key = i;
		i = string_end(s, len, i, &escaped);
		if (i == 0)
			return -1;
		if (escaped || !utf8_valid(s + key + 1, i - key - 2))
			return -1;
		m[n].key = s + key + 1;
		m[n].keylen = i - key - 2;
		for (k = 0; k < n; k++)
			if (m[k].keylen == m[n].keylen &&
			    memcmp(m[k].key, m[n].key, m[n].keylen) == 0)
				return -1;
		i = skip_blanks(s, len, i);
		if (i >= len || s[i] != ':')
			return -1;
		i = skip_blanks(s, len, i + 1);
		end = value_end(s, len, i);
		if (end == 0 || end == i)
			return -1;
		m[n].text = s + key;
		m[n].textlen = end - key;
		n++;
		i = skip_blanks(s, len, end);
		if (i < len && s[i] == ',')
			i = skip_blanks(s, len, i + 1);
	}
	return n;
}

static const struct member *
find_member(const struct member *m, int n, jv key)
{
	const char *k = jv_string_value(key);
	size_t klen = jv_string_length_bytes(jv_copy(key));
	int i;

	for (i = 0; i < n; i++)
		if (m[i].keylen == klen && memcmp(m[i].key, k, klen) == 0)
			return &m[i];
	return NULL;
}

static void
write_dump(FILE *out, jv value)
{
	jv text = json_dump(value);

	fwrite(jv_string_value(text), 1, jv_string_length_bytes(jv_copy(text)),
	    out);
	jv_free(text);
}

/* Returns the $trigger of TEXT, parsed in full, in place of T, which
 * json_parse_unread left strings out of.  No step writes $trigger, so the
 * text contains its value.  Consumes T. */
static jv
whole_trigger(jv t, const char *text, size_t len)
{
	jv whole = json_parse(text, len);

	if (jv_get_kind(whole) != JV_KIND_OBJECT ||
	    !jv_object_has(jv_copy(whole), jv_string("$trigger"))) {
		jv_free(whole);
		return t;
	}
	jv_free(t);
	return jv_object_get(whole, jv_string("$trigger"));
}

/* Returns VALUE with the $trigger of TEXT. */
static jv
with_whole_trigger(jv value, const char *text, size_t len)
{
	jv key = jv_string("$trigger"), t;

	if (!jv_object_has(jv_copy(value), jv_copy(key))) {
		jv_free(key);
		return value;
	}
	t = jv_object_get(jv_copy(value), jv_copy(key));
	return jv_object_set(value, key, whole_trigger(t, text, len));
}

/*
 * Writes VALUE on OUT like json_dump, but copies the text of each
 * top-level member that is still the very value parsed from TEXT into
 * ORIGINAL (jv_identical).  Writing an envelope with jq 1.6 costs about
 * three times as much as parsing it (47 against 16 us for 2.7 KB on the
 * test machine), and most steps change only $last.  The copies go to OUT
 * as they are: a jv string would check their UTF-8 again.  With
 * LEFT_OUT, json_parse_unread left strings out of VALUE's $trigger, and a
 * $trigger that is not copied is parsed again from TEXT.  Consumes VALUE
 * and ORIGINAL.
 */
void
json_write_reusing(FILE *out, jv value, jv original, const char *text,
    size_t len, int left_out)
{
	struct member m[32];
	const struct member *found;
	jv old;
	int n, first = 1;

	n = jv_get_kind(value) == JV_KIND_OBJECT &&
		    jv_get_kind(original) == JV_KIND_OBJECT
		? top_members(text, len, m, 32)
		: -1;
	if (n < 0) {
		jv_free(original);
		if (left_out && jv_get_kind(value) == JV_KIND_OBJECT)
			value = with_whole_trigger(value, text, len);
		write_dump(out, value);
		return;
	}
	putc('{', out);
	jv_object_foreach(value, k, v)
	{
		if (!first)
			putc(',', out);
		first = 0;
		found = find_member(m, n, k);
		old = found != NULL
			  ? jv_object_get(jv_copy(original), jv_copy(k))
			  : jv_invalid();
		if (found != NULL && jv_identical(jv_copy(v), old)) {
			fwrite(found->text, 1, found->textlen, out);
			jv_free(k);
			jv_free(v);
			continue;
		}
		if (left_out && jv_string_length_bytes(jv_copy(k)) == 8 &&
		    memcmp(jv_string_value(k), "$trigger", 8) == 0)
			v = whole_trigger(v, text, len);
		write_dump(out, k);
		putc(':', out);
		write_dump(out, v);
	}
	jv_free(value);
	jv_free(original);
	putc('}', out);
}

/* Returns the text of VALUE for a placeholder inside a longer string:
 * a string as it is, null as nothing, anything else as JSON. */
jv
json_text(jv value)
{
	const char *digits;

	switch (jv_get_kind(value)) {
	case JV_KIND_INVALID:
	case JV_KIND_NULL:
		jv_free(value);
		return jv_string("");
	case JV_KIND_STRING:
		digits = json_bignum_digits(value);
		if (digits != NULL) {
			jv text = jv_string(digits);

			jv_free(value);
			return text;
		}
		return value;
	default:
		return json_dump(value);
	}
}

/* Returns whether S is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). */
int
utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned long long word;
	size_t i = 0;

	while (i < len) {
		unsigned char c = p[i];
		size_t need, k;
		unsigned int cp;

		if (c < 0x80) {
			/* ASCII, eight bytes at a time where it can. */
			for (i++; i + 8 <= len; i += 8) {
				memcpy(&word, p + i, 8);
				if (word & 0x8080808080808080ULL)
					break;
			}
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (i + need >= len)
			return 0;
		for (k = 1; k <= need; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += need + 1;
	}
	return 1;
}
