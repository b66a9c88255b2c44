/*
 * JSON text to jv values and back, with libjq's codec.  jq 1.6 keeps every
 * number as a double, which would turn a Shopify order id such as
 * 7301234567890123456 into 7301234567890123776.  So an integer literal
 * beyond 2^53 is carried as a string of a NUL byte and its digits, which
 * every whook program recognizes, and json_dump writes it back as the bare
 * number it was.
 */
#include <string.h>

#include "whook.h"

#define BIGNUM_MARK "\\u0000"
#define BIGNUM_MARK_LEN 6

/* Returns whether the integer literal S (digits, optional '-') needs more
 * than a double's 53 bits. */
static int
literal_is_big(const char *s, size_t n)
{
	static const char limit[] = "9007199254740992";

	if (n > 0 && s[0] == '-') {
		s++;
		n--;
	}
	if (n < sizeof(limit) - 1)
		return 0;
	if (n > sizeof(limit) - 1)
		return 1;
	return memcmp(s, limit, n) > 0;
}

/* Returns whether TEXT has a run of 16 or more digits anywhere, the cheap
 * test that lets most lines skip the rewrite. */
static int
has_long_digit_run(const char *text, size_t len)
{
	size_t i, run = 0;

	for (i = 0; i < len; i++) {
		if (text[i] >= '0' && text[i] <= '9') {
			if (++run >= 16)
				return 1;
		} else {
			run = 0;
		}
	}
	return 0;
}

static size_t
number_end(const char *text, size_t len, size_t i, int *integer)
{
	*integer = 1;
	for (; i < len; i++) {
		char c = text[i];

		if (c == '.' || c == 'e' || c == 'E' || c == '+')
			*integer = 0;
		else if (!(c == '-' || (c >= '0' && c <= '9')))
			break;
	}
	return i;
}

/* Copies TEXT with each big integer literal outside strings replaced by
 * the marked string form. */
static jv
rewrite_big_literals(const char *text, size_t len)
{
	jv out = jv_string("");
	size_t i = 0, from = 0, end;
	int in_string = 0, integer;

	while (i < len) {
		char c = text[i];

		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = 0;
			i++;
			continue;
		}
		if (c == '"') {
			in_string = 1;
			i++;
			continue;
		}
		if (c != '-' && !(c >= '0' && c <= '9')) {
			i++;
			continue;
		}
		end = number_end(text, len, i, &integer);
		if (integer && literal_is_big(text + i, end - i)) {
			out = jv_string_append_buf(out, text + from, i - from);
			out = jv_string_append_str(out, "\"" BIGNUM_MARK);
			out = jv_string_append_buf(out, text + i, end - i);
			out = jv_string_append_str(out, "\"");
			from = end;
		}
		i = end;
	}
	return jv_string_append_buf(out, text + from, len - from);
}

/* Parses one JSON text.  Invalid text gives jv_invalid_with_msg. */
jv
json_parse(const char *text, size_t len)
{
	jv copy, value;

	if (!has_long_digit_run(text, len))
		return jv_parse_sized(text, (int)len);
	copy = rewrite_big_literals(text, len);
	value = jv_parse_sized(
	    jv_string_value(copy), jv_string_length_bytes(jv_copy(copy)));
	jv_free(copy);
	return value;
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
	const char *key; /* without quotes; NULL when it holds an escape */
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

/* Returns the index after the string that opens at S[I], or 0. */
static size_t
string_end(const char *s, size_t len, size_t i, int *escaped)
{
	*escaped = 0;
	for (i++; i < len; i++) {
		if (s[i] == '\\') {
			*escaped = 1;
			i++;
		} else if (s[i] == '"') {
			return i + 1;
		}
	}
	return 0;
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

/* Finds the members of the object TEXT; returns their number, or -1 when
 * TEXT is not an object of at most MAX members. */
static int
top_members(const char *s, size_t len, struct member *m, int max)
{
	size_t i = skip_blanks(s, len, 0), key, end;
	int n = 0, escaped;

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
		m[n].key = escaped ? NULL : s + key + 1;
		m[n].keylen = i - key - 2;
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
		if (m[i].key != NULL && m[i].keylen == klen &&
		    memcmp(m[i].key, k, klen) == 0)
			return &m[i];
	return NULL;
}

/*
 * Writes VALUE like json_dump, but copies the text of each top-level
 * member that is still the very value parsed from TEXT into ORIGINAL
 * (jv_identical).  Writing an envelope with jq 1.6 costs about three
 * times as much as parsing it (47 against 16 us for 2.7 KB on the test
 * machine), and most steps change only $last.  Consumes VALUE and
 * ORIGINAL.
 */
jv
json_dump_reusing(jv value, jv original, const char *text, size_t len)
{
	struct member m[32];
	const struct member *found;
	jv out, old;
	int n, first = 1;

	n = jv_get_kind(value) == JV_KIND_OBJECT &&
		    jv_get_kind(original) == JV_KIND_OBJECT
		? top_members(text, len, m, 32)
		: -1;
	if (n < 0) {
		jv_free(original);
		return json_dump(value);
	}
	out = jv_string("{");
	jv_object_foreach(value, k, v)
	{
		if (!first)
			out = jv_string_append_str(out, ",");
		first = 0;
		found = find_member(m, n, k);
		old = found != NULL
			  ? jv_object_get(jv_copy(original), jv_copy(k))
			  : jv_invalid();
		if (found != NULL && jv_identical(jv_copy(v), old)) {
			out = jv_string_append_buf(
			    out, found->text, found->textlen);
			jv_free(k);
			jv_free(v);
			continue;
		}
		out = jv_string_concat(out, json_dump(k));
		out = jv_string_append_str(out, ":");
		out = jv_string_concat(out, json_dump(v));
	}
	jv_free(value);
	jv_free(original);
	return jv_string_append_str(out, "}");
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
	size_t i = 0;

	while (i < len) {
		unsigned char c = p[i];
		size_t need, k;
		unsigned int cp;

		if (c < 0x80) {
			i++;
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
