/*
 * Unit tests of the shared core: the JSON codec and its exact big
 * integers, plain paths, secret loading and comparison, envelope keys.
 */
#include <stdlib.h>
#include <unistd.h>

#include "unit.h"
#include "whook.h"

static char *
round_trip(const char *text)
{
	static char buf[4096];
	jv v = json_parse(text, strlen(text)), out;

	if (!jv_is_valid(v)) {
		jv_free(v);
		return NULL;
	}
	out = json_dump(v);
	snprintf(buf, sizeof(buf), "%s", jv_string_value(out));
	jv_free(out);
	return buf;
}

/* Returns whether json_parse gives TEXT the value, or the error message,
 * that libjq's own parser gives it.  A string after a value, which
 * json_parse reports itself, is not given to libjq, which would leak it
 * and fail the sanitizer run. */
static int
parses_as_libjq(const char *text, size_t len)
{
	static const char leak[] = "Expected separator between values";
	jv a = json_parse(text, len), b, msg;
	int same;

	if (!jv_is_valid(a)) {
		msg = jv_invalid_get_msg(jv_copy(a));
		same =
		    jv_get_kind(msg) == JV_KIND_STRING &&
		    strncmp(jv_string_value(msg), leak, sizeof(leak) - 1) == 0;
		jv_free(msg);
		if (same) {
			jv_free(a);
			return 1;
		}
	}
	b = jv_parse_sized(text, (int)len);

	if (jv_is_valid(a) != jv_is_valid(b)) {
		same = 0;
	} else if (jv_is_valid(a)) {
		same = jv_equal(jv_copy(a), jv_copy(b));
	} else {
		/* json_parse leaves out libjq's copy of the text. */
		jv ma = jv_invalid_get_msg(jv_copy(a));
		jv mb = jv_invalid_get_msg(jv_copy(b));
		const char *m = jv_string_value(mb);
		const char *cut = strstr(m, " (while parsing '");

		same = jv_get_kind(ma) == JV_KIND_STRING &&
		       strlen(jv_string_value(ma)) ==
			   (size_t)(cut != NULL ? cut - m : (long)strlen(m)) &&
		       strncmp(jv_string_value(ma), m,
			   strlen(jv_string_value(ma))) == 0;
		jv_free(ma);
		jv_free(mb);
	}
	jv_free(a);
	jv_free(b);
	return same;
}

/* Long string literals take json_parse's own path: each case must come
 * out as libjq's parser makes it. */
static void
test_json_long(void)
{
	static const char *const pieces[] = {"\"", "x", "\\\"", "\\u00e9",
	    "\xc3\xa9", "\xff", "\x01", "\t", ":", ",", "{", "}", "[", "]", " ",
	    "123", "\\u0000", "L0", "\\"};
	char text[8192], fill[400];
	size_t n, i, k;
	int all = 1;

	memset(fill, 'x', sizeof(fill) - 1);
	fill[sizeof(fill) - 1] = '\0';
	snprintf(
	    text, sizeof(text), "{\"a\":\"%s\",\"b\":[\"%s\",1]}", fill, fill);
	CHECK("json long strings", parses_as_libjq(text, strlen(text)));
	snprintf(text, sizeof(text), "{\"%s\" : \"%s\"}", fill, fill);
	CHECK("json long key", parses_as_libjq(text, strlen(text)));
	snprintf(text, sizeof(text), "[\"%s\xc3\xa9\xff\"]", fill);
	CHECK(
	    "json long string with UTF-8", parses_as_libjq(text, strlen(text)));
	snprintf(text, sizeof(text), "[\"%s\",12345678901234567890]", fill);
	CHECK_STR("json long string and a big integer", round_trip(text), text);
	snprintf(text, sizeof(text), "[\"%s\\u0000\", \"\\u0000L0\", \"%s\"]",
	    fill, fill);
	CHECK("json long string beside a NUL escape",
	    parses_as_libjq(text, strlen(text)));
	snprintf(text, sizeof(text), "[\"%s\x01\"]", fill);
	CHECK("json control byte in a long string",
	    parses_as_libjq(text, strlen(text)));
	snprintf(text, sizeof(text), "[\"%s\", 1 2]", fill);
	CHECK("json error after a long string, same message",
	    parses_as_libjq(text, strlen(text)));
	snprintf(text, sizeof(text), "\"%s\"", fill);
	CHECK("json long string alone", parses_as_libjq(text, strlen(text)));
	snprintf(text, sizeof(text), "[\"%s", fill);
	CHECK("json unterminated long string",
	    parses_as_libjq(text, strlen(text)));

	/* Texts of random pieces around long strings, valid or not. */
	srand(7);
	for (k = 0; k < 2000; k++) {
		n = (size_t)snprintf(text, sizeof(text), "[\"");
		for (i = 0; i < 12; i++) {
			const char *piece =
			    rand() % 3 == 0
				? fill + rand() % 300
				: pieces[rand() %
					 (sizeof(pieces) / sizeof(*pieces))];

			n += (size_t)snprintf(
			    text + n, sizeof(text) - n, "%s", piece);
		}
		n += (size_t)snprintf(text + n, sizeof(text) - n, "\"]");
		if (!parses_as_libjq(text, n)) {
			all = 0;
			printf("# differs: %s\n", text);
			break;
		}
	}
	CHECK("json random texts with long strings", all);
}

/* Returns whether TEXT, LEN bytes, is rejected. */
static int
rejected(const char *text, size_t len)
{
	jv v = json_parse(text, len);
	int bad = !jv_is_valid(v);

	jv_free(v);
	return bad;
}

/* Returns the message json_parse gives TEXT, in a static buffer. */
static const char *
parse_error(const char *text)
{
	static char buf[256];
	jv v = json_parse(text, strlen(text)), msg;

	buf[0] = '\0';
	if (!jv_is_valid(v)) {
		msg = jv_invalid_get_msg(v);
		if (jv_get_kind(msg) == JV_KIND_STRING)
			snprintf(buf, sizeof(buf), "%s", jv_string_value(msg));
		jv_free(msg);
	} else {
		jv_free(v);
	}
	return buf;
}

/* Writes VALUE, parsed from TEXT, as the batch loop does; returns the
 * line in a static buffer. */
static const char *
written(const char *text)
{
	static char buf[1024];
	jv v = json_parse(text, strlen(text));
	FILE *f = tmpfile();
	size_t n;

	json_write_reusing(f, jv_copy(v), v, text, strlen(text), 0);
	rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* The results of one test_json_unread case. */
struct envelope_case {
	int left_out;	/* json_parse_unread left a string out */
	int same_value; /* the written line parses as TEXT with $last set */
	int same_text;	/* the line is TEXT with $last added */
};

/* The reads of a header check and a map of $trigger.body.a. */
static struct reads *
some_reads(void)
{
	struct reads *r = reads_new();

	reads_add_text(r, "$trigger.headers");
	reads_add_text(r, "$trigger.body.a");
	return r;
}

/* Parses TEXT with json_parse_unread and READS, sets $last, as a step
 * would, and writes it as the batch loop does. */
static struct envelope_case
envelope_case(const char *text, const struct reads *reads)
{
	struct envelope_case r = {0};
	size_t len = strlen(text), n;
	jv v = json_parse_unread(text, len, reads, NULL, 0, &r.left_out);
	char *buf = malloc(2 * len + 64);
	FILE *f = tmpfile();
	jv want, got;

	if (!jv_is_valid(v) || buf == NULL || f == NULL) {
		jv_free(v);
		free(buf);
		if (f != NULL)
			fclose(f);
		return r;
	}
	want = jv_object_set(
	    json_parse(text, len), jv_string("$last"), jv_number(1));
	got = jv_object_set(jv_copy(v), jv_string("$last"), jv_number(1));
	json_write_reusing(f, got, v, text, len, r.left_out);
	rewind(f);
	n = fread(buf, 1, 2 * len + 63, f);
	buf[n] = '\0';
	fclose(f);
	got = json_parse(buf, n);
	r.same_value = jv_equal(got, want);
	r.same_text = n == len + 10 && memcmp(buf, text, len - 1) == 0 &&
		      strcmp(buf + len - 1, ",\"$last\":1}") == 0;
	free(buf);
	return r;
}

/* Returns whether the value at the path EXPR is null once TEXT, the
 * value at the place AT (N steps), is parsed with READS. */
static int
left_null(const char *text, const struct reads *reads, const struct place *at,
    size_t n, const char *expr)
{
	struct path *p = path_compile(expr);
	int left_out;
	jv v = json_parse_unread(text, strlen(text), reads, at, n, &left_out);
	jv got = p != NULL ? path_get(p, v) : jv_invalid();
	int null = jv_get_kind(got) == JV_KIND_NULL;

	jv_free(got);
	jv_free(v);
	path_free(p);
	return null;
}

/* The batch loop's parse leaves out the long strings in $trigger that no
 * step reads, and writes them back from the text, also where it cannot
 * copy $trigger's text. */
static void
test_json_unread(void)
{
	static const struct place body[] = {{"$trigger", 8, 0}, {"body", 4, 0}};
	char fill[300], raw[400], text[2048], many[4096];
	struct reads *reads = some_reads(), *items;
	struct envelope_case r;
	size_t n;
	int k;
	jv bad;

	memset(fill, 'x', sizeof(fill) - 1);
	fill[sizeof(fill) - 1] = '\0';
	snprintf(raw, sizeof(raw), "{\\\"a\\\":\\\"%s\\n\\/\\t\\\"}", fill);
	snprintf(text, sizeof(text),
	    "{\"$trigger\":{\"id\":\"e1\",\"raw\":\"%s\",\"n\":1}}", raw);
	r = envelope_case(text, reads);
	CHECK("json unread raw left out", r.left_out);
	CHECK("json unread raw null inside",
	    left_null(text, reads, NULL, 0, "$trigger.raw"));
	CHECK("json unread raw written back", r.same_value);
	CHECK("json unread text copied", r.same_text);
	r = envelope_case(text, NULL);
	CHECK("json unread all read, nothing left out", !r.left_out);

	snprintf(text, sizeof(text),
	    "{\"$trigger\":{\"raw\":\"%s\"},\"$trigger\":{\"raw\":\"%s\"}}",
	    fill, raw);
	r = envelope_case(text, reads);
	CHECK("json unread raw back with a repeated key", r.same_value);
	n = (size_t)snprintf(many, sizeof(many), "{");
	for (k = 0; k < 40; k++)
		n += (size_t)snprintf(
		    many + n, sizeof(many) - n, "\"k%d\":%d,", k, k);
	snprintf(
	    many + n, sizeof(many) - n, "\"$trigger\":{\"raw\":\"%s\"}}", raw);
	r = envelope_case(many, reads);
	CHECK("json unread raw back past 32 members", r.same_value);

	snprintf(
	    text, sizeof(text), "{\"$trigger\":{\"raw_base64\":\"%s\"}}", fill);
	r = envelope_case(text, reads);
	CHECK("json unread raw_base64 left out", r.left_out);
	CHECK("json unread raw_base64 text copied", r.same_text);
	snprintf(
	    text, sizeof(text), "{\"$trigger\":{\"raw\":\"%s\\u00e9\"}}", fill);
	r = envelope_case(text, reads);
	CHECK("json unread raw with \\u kept", !r.left_out);
	snprintf(
	    text, sizeof(text), "{\"$trigger\":{\"raw\":\"%s\\q\"}}", fill);
	bad = json_parse_unread(text, strlen(text), reads, NULL, 0, &k);
	CHECK("json unread raw with a bad escape rejected", !jv_is_valid(bad));
	jv_free(bad);

	/* Which strings a path reaches. */
	snprintf(text, sizeof(text),
	    "{\"$trigger\":{\"id\":\"%s\",\"body\":{\"a\":\"%s\",\"b\":\"%s\"}}"
	    ","
	    "\"$last\":{\"c\":\"%s\"}}",
	    fill, fill, fill, fill);
	CHECK("json unread long id kept",
	    !left_null(text, reads, NULL, 0, "$trigger.id"));
	CHECK("json unread read string kept",
	    !left_null(text, reads, NULL, 0, "$trigger.body.a"));
	CHECK("json unread unread string left out",
	    left_null(text, reads, NULL, 0, "$trigger.body.b"));
	CHECK("json unread string beyond $trigger kept",
	    !left_null(text, reads, NULL, 0, "$last.c"));
	snprintf(text, sizeof(text), "{\"a\":\"%s\",\"b\":\"%s\"}", fill, fill);
	CHECK("json unread body member read",
	    !left_null(text, reads, body, 2, "a"));
	CHECK("json unread body member left out",
	    left_null(text, reads, body, 2, "b"));
	items = reads_new();
	reads_add_text(items, "$trigger.body.items[1]");
	snprintf(text, sizeof(text), "{\"items\":[\"%s\",\"%s\"]}", fill, fill);
	CHECK("json unread array item read",
	    !left_null(text, items, body, 2, "items[1]"));
	CHECK("json unread array item left out",
	    left_null(text, items, body, 2, "items[0]"));
	reads_add_text(items, "$trigger.body.items[-2]");
	CHECK("json unread index from the end read",
	    !left_null(text, items, body, 2, "items[0]"));
	reads_free(items);
	items = reads_new();
	reads_add_text(items, "$trigger.body.k[\"\xff\"]");
	snprintf(text, sizeof(text), "{\"k\":{\"\\ufffd\":\"%s\"}}", fill);
	CHECK("json unread key of invalid UTF-8 read",
	    !left_null(text, items, body, 2, "k[\"\xef\xbf\xbd\"]"));
	reads_free(items);
	items = reads_new();
	reads_add_text(items, "$trigger.body");
	CHECK("json unread whole body read",
	    !left_null(text, items, body, 2, "items[0]"));
	reads_free(items);
	reads_free(reads);
}

/* The string form of big integers cannot come from input, numbers that
 * only look like integers stay with libjq, and what libjq 1.6 would leak
 * never reaches it. */
static void
test_json_markers(void)
{
	char text[512], fill[300];
	jv v;

	CHECK("json NUL and digits rejected", rejected("[\"\\u0000123\"]", 11));
	CHECK("json NUL and minus key rejected",
	    rejected("{\"\\u0000-\":1}", 13));
	CHECK("json raw NUL and digits rejected", rejected("[\"\0"
							   "12\"]",
						      7));
	CHECK("json NUL and digits beside a big integer rejected",
	    rejected("[\"\\u0000123\",12345678901234567890]", 33));
	CHECK_STR("json big integer beside a NUL kept",
	    round_trip("[\"a\\u0000b\",12345678901234567890]"),
	    "[\"a\\u0000b\",12345678901234567890]");
	CHECK("json minus inside digits rejected",
	    rejected("[1-2345678901234567890]", 23));
	CHECK("json big integer as key rejected",
	    rejected("{12345678901234567890:0}", 24));
	CHECK("json dashes rejected", rejected("[------------------]", 20));
	v = json_parse("[00000000000000001]", 19);
	CHECK("json leading zeros small",
	    jv_is_valid(v) && !json_is_bignum(jv_array_get(jv_copy(v), 0)));
	jv_free(v);
	CHECK_STR("json leading zeros big", round_trip("[0009007199254740993]"),
	    "[9007199254740993]");

	memset(fill, 'x', sizeof(fill) - 1);
	fill[sizeof(fill) - 1] = '\0';
	snprintf(text, sizeof(text), "[\"%s\\n\\u00e9\\\"\"]", fill);
	CHECK("json long string with escapes",
	    parses_as_libjq(text, strlen(text)));
	snprintf(text, sizeof(text), "[\"%s\\q\"]", fill);
	CHECK("json long string with a bad escape",
	    parses_as_libjq(text, strlen(text)));
	snprintf(text, sizeof(text), "[\"a\" \"%s\"]", fill);
	CHECK_STR("json string after a value", parse_error(text),
	    "Expected separator between values at line 1, column 306");
	CHECK("json message without the text",
	    strstr(parse_error("{\"secret\":\"s3\", 1 2}"), "s3") == NULL);
	CHECK("json big integer after a value rejected",
	    rejected("[1 12345678901234567890]", 24));
	CHECK_STR("json NUL and digits behind a repeated key",
	    parse_error("{\"a\":12345678901234567890,\"a\":\"\\u0000123\"}"),
	    "a string of U+0000 and digits, the form whook gives integers "
	    "beyond 2^53");
	CHECK_STR("json line of a string after a value",
	    parse_error("[1,\n\"a\" \"b\nc\"]"),
	    "Invalid string: control characters from U+0000 through U+001F "
	    "must be escaped at line 3, column 2");
	CHECK("json key string after a key", rejected("{\"a\" \"b\":1}", 13));

	CHECK_STR("json write duplicate key, last wins",
	    written("{\"a\":1,\"b\":2,\"a\":3}"), "{\"a\":3,\"b\":2}");
	CHECK_STR("json write escaped twin key, last wins",
	    written("{\"a\":1,\"\\u0061\":3}"), "{\"a\":3}");
	CHECK_STR("json write spliced member",
	    written("{\"a\":[1,  2],\"b\":2}"), "{\"a\":[1,  2],\"b\":2}");
}

static void
test_json(void)
{
	jv v, id;

	CHECK_STR(
	    "json small integer", round_trip("{\"a\":2000}"), "{\"a\":2000}");
	CHECK_STR("json 2^53+1 exact", round_trip("[9007199254740993]"),
	    "[9007199254740993]");
	CHECK_STR("json 2^53 stays a double", round_trip("[9007199254740992]"),
	    "[9007199254740992]");
	CHECK_STR("json beyond int64",
	    round_trip("{\"n\":-9223372036854775809,"
		       "\"h\":123456789012345678901234567890}"),
	    "{\"n\":-9223372036854775809,\"h\":"
	    "123456789012345678901234567890}");
	CHECK_STR("json digits in a string untouched",
	    round_trip("[\"12345678901234567890\"]"),
	    "[\"12345678901234567890\"]");
	CHECK_STR("json escaped quote before digits",
	    round_trip("[\"a\\\"12345678901234567890\"]"),
	    "[\"a\\\"12345678901234567890\"]");
	CHECK_STR("json shortest float", round_trip("[0.1,1.5e300,5e-324]"),
	    "[0.1,1.5e+300,5e-324]");
	CHECK_STR(
	    "json NUL kept", round_trip("[\"a\\u0000b\"]"), "[\"a\\u0000b\"]");
	CHECK("json invalid text", round_trip("{\"a\":") == NULL);
	CHECK("json two values rejected", round_trip("1 2") == NULL);

	v = json_parse("{\"id\":7301234567890123456}",
	    strlen("{\"id\":7301234567890123456}"));
	id = jv_object_get(jv_copy(v), jv_string("id"));
	CHECK("json bignum recognised", json_is_bignum(id));
	CHECK_STR("json bignum digits", json_bignum_digits(id),
	    "7301234567890123456");
	jv_free(id);
	jv_free(v);
	v = json_text(json_parse("[1,\"x\"]", 7));
	CHECK_STR("json text of array", jv_string_value(v), "[1,\"x\"]");
	jv_free(v);
	v = json_text(jv_null());
	CHECK_STR("json text of null", jv_string_value(v), "");
	jv_free(v);
}

/* A bad or good byte at each place of a long ASCII text, where the
 * check goes eight bytes at a time. */
static void
test_utf8_long(void)
{
	char text[41];
	size_t at;
	int bad_found = 1, good_kept = 1;

	for (at = 0; at + 1 < sizeof(text); at++) {
		memset(text, 'a', sizeof(text));
		text[at] = '\xe9';
		bad_found &= !utf8_valid(text, sizeof(text));
		text[at] = '\xc3';
		text[at + 1] = '\xa9';
		good_kept &= utf8_valid(text, sizeof(text));
	}
	memset(text, 'a', sizeof(text));
	text[sizeof(text) - 1] = '\xc3';
	CHECK("utf8 long text, bad byte anywhere", bad_found);
	CHECK("utf8 long text, good pair anywhere", good_kept);
	CHECK("utf8 long text, truncated at end",
	    !utf8_valid(text, sizeof(text)));
}

static void
test_utf8(void)
{
	CHECK("utf8 ascii", utf8_valid("abc", 3));
	CHECK("utf8 e-acute", utf8_valid("caf\xc3\xa9", 5));
	CHECK("utf8 emoji", utf8_valid("\xf0\x9f\x98\x80", 4));
	CHECK("utf8 latin-1 byte", !utf8_valid("caf\xe9", 4));
	CHECK("utf8 truncated", !utf8_valid("\xc3", 1));
	CHECK("utf8 overlong", !utf8_valid("\xc0\xaf", 2));
	CHECK("utf8 surrogate", !utf8_valid("\xed\xa0\x80", 3));
	CHECK("utf8 above U+10FFFF", !utf8_valid("\xf4\x90\x80\x80", 4));
	test_utf8_long();
}

static char *
lookup(const char *expr, const char *envelope)
{
	static char buf[1024];
	struct path *p = path_compile(expr);
	jv env, v, text;

	if (p == NULL)
		return NULL;
	env = json_parse(envelope, strlen(envelope));
	v = path_get(p, env);
	if (!jv_is_valid(v)) {
		snprintf(buf, sizeof(buf), "(missing)");
	} else {
		text = json_dump(v);
		snprintf(buf, sizeof(buf), "%s", jv_string_value(text));
		jv_free(text);
	}
	jv_free(env);
	path_free(p);
	return buf;
}

static void
test_path(void)
{
	const char *env =
	    "{\"$trigger\":{\"body\":{\"keys\":[\"k-101\",\"k-2\"],"
	    "\"items\":[{\"sku\":\"A\"},{\"sku\":\"B-2\"}],\"n\":null,"
	    "\"0\":\"zero\"},\"headers\":{\"x-id\":\"h\"}},\"$last\":7}";

	CHECK_STR(
	    "path index", lookup("$trigger.body.keys[0]", env), "\"k-101\"");
	CHECK_STR(
	    "path dot index", lookup("$trigger.body.keys.0", env), "\"k-101\"");
	CHECK_STR("path nested", lookup(" $trigger.body.items[1].sku ", env),
	    "\"B-2\"");
	CHECK_STR("path negative index", lookup("$trigger.body.keys[-1]", env),
	    "\"k-2\"");
	CHECK_STR("path out of range", lookup("$trigger.body.keys[5]", env),
	    "(missing)");
	CHECK_STR("path null present", lookup("$trigger.body.n", env), "null");
	CHECK_STR(
	    "path missing key", lookup("$trigger.body.nope", env), "(missing)");
	CHECK_STR("path digit key of object", lookup("$trigger.body.0", env),
	    "\"zero\"");
	CHECK_STR("path hyphenated header",
	    lookup("$trigger.headers.x-id", env), "\"h\"");
	CHECK_STR("path quoted key", lookup("$trigger.headers[\"x-id\"]", env),
	    "\"h\"");
	CHECK_STR("path last", lookup("$last", env), "7");
	CHECK_STR("path through a number", lookup("$last.x", env), "(missing)");
	setenv("WHOOK_TEST_VAR", "v1", 1);
	CHECK_STR("path env", lookup("$env.WHOOK_TEST_VAR", env), "\"v1\"");
	CHECK("path jq expression is not a path",
	    lookup("$trigger.body.keys | length", env) == NULL);
	CHECK("path leading dot is jq", lookup(".body", env) == NULL);
	CHECK("path unclosed bracket", lookup("$trigger.body[0", env) == NULL);
}

static void
test_secret_digest(void)
{
	unsigned char digest[SECRET_DIGEST];

	CHECK("secret digest", secret_digest("abc", 3, digest) == 0);
	CHECK("secret matches digest", secret_matches("abc", 3, digest));
	CHECK("secret digest differs", !secret_matches("abd", 3, digest));
	CHECK("secret digest longer", !secret_matches("abcd", 4, digest));
	CHECK("secret digest empty", !secret_matches("", 0, digest));
}

static void
test_secret(void)
{
	char why[256], *data = NULL, file[] = "/tmp/whook-secret-XXXXXX";
	size_t len = 0;
	int fd;

	CHECK("secret literal rejected",
	    secret_load("hunter2", &data, &len, why, sizeof(why)) == -1);
	CHECK("secret literal reason names the forms",
	    strstr(why, "@FILE") != NULL);
	fd = mkstemp(file);
	CHECK("secret file made", fd != -1 && write(fd, "s3cr3t\r\n", 8) == 8);
	close(fd);
	snprintf(why, sizeof(why), "@%s", file);
	CHECK("secret file loads",
	    secret_load(why, &data, &len, why, sizeof(why)) == 0);
	CHECK("secret trailing newline dropped",
	    len == 6 && memcmp(data, "s3cr3t", 6) == 0);
	secret_free(data, len);
	unlink(file);
	snprintf(why, sizeof(why), "@%s", file);
	CHECK("secret missing file",
	    secret_load(why, &data, &len, why, sizeof(why)) == -1 &&
		strstr(why, "No such file") != NULL);
	setenv("WHOOK_TEST_SECRET", "abc", 1);
	CHECK("secret from environment",
	    secret_load(
		"env:WHOOK_TEST_SECRET", &data, &len, why, sizeof(why)) == 0 &&
		len == 3);
	secret_free(data, len);
	CHECK(
	    "secret unset variable", secret_load("env:WHOOK_NO_SUCH_VAR", &data,
					 &len, why, sizeof(why)) == -1);
	setenv("WHOOK_TEST_EMPTY", "", 1);
	CHECK(
	    "secret empty rejected", secret_load("env:WHOOK_TEST_EMPTY", &data,
					 &len, why, sizeof(why)) == -1);
	CHECK("secret equal", secret_equal("abc", 3, "abc", 3));
	CHECK("secret differs", !secret_equal("abc", 3, "abd", 3));
	CHECK("secret prefix differs", !secret_equal("abc", 3, "abcd", 4));
	CHECK("secret case differs", !secret_equal("Token", 5, "token", 5));
	test_secret_digest();
}

static void
test_envelope(void)
{
	char id[64];
	jv env = json_parse("{\"$trigger\":{\"id\":\"01J\"}}", 25);

	envelope_id(env, id, sizeof(id));
	CHECK_STR("envelope id", id, "01J");
	envelope_id(jv_number(1), id, sizeof(id));
	CHECK_STR("envelope id of a number", id, "-");
	CHECK("envelope no error", !envelope_has_error(env));
	env = envelope_set_error(env, 401, "whook-check", "mismatch");
	CHECK("envelope error set", envelope_has_error(env));
	jv_free(env);
	CHECK("exit 1 is 403", envelope_status_of_exit(1) == 403);
	CHECK("exit 65 is 422", envelope_status_of_exit(65) == 422);
	CHECK("exit 75 is 503", envelope_status_of_exit(75) == 503);
	CHECK("exit 69 is 503", envelope_status_of_exit(69) == 503);
	CHECK("exit 64 is 500", envelope_status_of_exit(64) == 500);
}

int
main(void)
{
	msg_init("test-core");
	test_json();
	test_json_long();
	test_json_markers();
	test_json_unread();
	test_utf8();
	test_path();
	test_secret();
	test_envelope();
	UNIT_EXIT();
}
