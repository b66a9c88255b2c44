/*
 * Unit tests of template.c: the typing rules of placeholders (a lone
 * placeholder keeps its value's JSON type, one inside text becomes text),
 * plain paths against jq expressions, --strict, and the errors that a
 * template gives at compile time.
 */
#include <stdlib.h>
#include <string.h>

#include "whook.h"
#include "unit.h"

static const char envelope_text[] =
    "{\"$trigger\":{\"id\":\"t1\",\"method\":\"POST\",\"body\":"
    "{\"id\":9007199254740993,\"qty\":3,\"price\":\"19.90\",\"ok\":false,"
    "\"tags\":[\"a\",\"b\"],\"meta\":{\"k\":\"v\"},\"nothing\":null,"
    "\"name\":\"Jo \\\"JJ\\\" Park\",\"keys\":[\"k-101\",\"k-202\"]}},"
    "\"$last\":{\"items\":[{\"sku\":\"A-1\"}]},\"order\":{\"n\":7}}";

struct render_case {
	const char *name;
	const char *template;
	const char *expected; /* json_dump of the rendered value */
	size_t jq;	      /* placeholders that jq evaluates */
};

static const struct render_case cases[] = {
    {"lone number stays number", "\"{{$trigger.body.qty}}\"", "3", 0},
    {"lone bool stays bool", "\"{{$trigger.body.ok}}\"", "false", 0},
    {"lone string stays string", "\"{{$trigger.body.price}}\"", "\"19.90\"", 0},
    {"lone array stays array", "\"{{$trigger.body.tags}}\"", "[\"a\",\"b\"]",
	0},
    {"lone object stays object", "\"{{$trigger.body.meta}}\"", "{\"k\":\"v\"}",
	0},
    {"lone null stays null", "\"{{$trigger.body.nothing}}\"", "null", 0},
    {"lone missing is null", "\"{{$trigger.body.nope}}\"", "null", 0},
    {"lone bignum stays exact", "\"{{$trigger.body.id}}\"", "9007199254740993",
	0},
    {"blanks inside braces", "\"{{  $trigger.body.qty\\t}}\"", "3", 0},
    {"text number", "\"x{{$trigger.body.qty}}\"", "\"x3\"", 0},
    {"text bool", "\"ok={{$trigger.body.ok}}\"", "\"ok=false\"", 0},
    {"text string unquoted", "\"[{{$trigger.body.price}}]\"", "\"[19.90]\"", 0},
    {"text array compact", "\"{{$trigger.body.tags}}!\"",
	"\"[\\\"a\\\",\\\"b\\\"]!\"", 0},
    {"text null empty", "\"[{{$trigger.body.nothing}}]\"", "\"[]\"", 0},
    {"text missing empty", "\"[{{$trigger.body.nope}}]\"", "\"[]\"", 0},
    {"text bignum digits", "\"#{{$trigger.body.id}}\"", "\"#9007199254740993\"",
	0},
    {"text quote escaped", "\"<{{$trigger.body.name}}>\"",
	"\"<Jo \\\"JJ\\\" Park>\"", 0},
    {"blank around lone is text", "\" {{$trigger.body.qty}}\"", "\" 3\"", 0},
    {"two placeholders", "\"{{$trigger.body.qty}}{{$trigger.body.ok}}\"",
	"\"3false\"", 0},
    {"bracket index", "\"{{$trigger.body.keys[1]}}\"", "\"k-202\"", 0},
    {"dot index", "\"{{$trigger.body.keys.0}}\"", "\"k-101\"", 0},
    {"index out of range", "\"{{$trigger.body.keys[5]}}\"", "null", 0},
    {"last path", "\"{{$last.items[0].sku}}\"", "\"A-1\"", 0},
    {"bare envelope key", "\"{{order.n}}\"", "7", 0},
    {"key interpolated", "{\"{{$trigger.body.qty}}\":1}", "{\"3\":1}", 0},
    {"key lone is text", "{\"{{$trigger.body.ok}}\":1}", "{\"false\":1}", 0},
    {"nested array", "[1,[\"{{$trigger.body.qty}}\"],\"c\"]", "[1,[3],\"c\"]",
	0},
    {"constant kept", "{\"a\":[1,{\"b\":null}],\"n\":12345678901234567890}",
	"{\"a\":[1,{\"b\":null}],\"n\":12345678901234567890}", 0},
    {"lone brace text stays", "\"a } b }} c {\"", "\"a } b }} c {\"", 0},
    {"jq number", "\"{{ .body.tags | length }}\"", "2", 1},
    {"jq dot is trigger", "\"{{ .method }}\"", "\"POST\"", 1},
    {"jq envelope variable", "\"{{ $envelope.order.n }}\"", "7", 1},
    {"jq object braces", "\"{{ {a: {b: .body.qty}} }}\"", "{\"a\":{\"b\":3}}",
	1},
    {"jq string with braces", "\"{{ \\\"}}\\\" }}\"", "\"}}\"", 1},
    {"jq string makes braces", "\"a{{ \\\"{{\\\" }}b\"", "\"a{{b\"", 1},
    {"jq empty is null", "\"{{ (empty) }}\"", "null", 1},
    {"bare word is key", "\"{{ now }}\"", "null", 0},
    {"parenthesized word is jq", "\"{{ (now) | type }}\"", "\"number\"", 1},
    {"jq first output", "\"{{ .body.tags[] }}\"", "\"a\"", 1},
    {"jq in text", "\"n={{ .body.tags | length }}\"", "\"n=2\"", 1},
    {"jq comment ends",
	"[\"{{ .body.qty # qty\\n }}\",\"{{ .body.ok | not }}\"]", "[3,true]",
	2},
    {"jq repeated once", "[\"{{ .body.qty + 1 }}\",\"{{.body.qty + 1}}\"]",
	"[4,4]", 1},
    {"mixed paths and jq",
	"{\"a\":\"{{$trigger.body.qty}}\",\"b\":\"{{ .body.qty * 2 }}\","
	"\"c\":\"{{ .body.ok | not }}\"}",
	"{\"a\":3,\"b\":6,\"c\":true}", 2},
};

static void
test_render(jv envelope, const struct render_case *c)
{
	struct template *t;
	char why[512] = "", name[160];
	jv result, text;
	int rc;

	t = template_compile(
	    c->template, strlen(c->template), why, sizeof(why));
	snprintf(name, sizeof(name), "%s: compiles", c->name);
	CHECK(name, t != NULL);
	if (t == NULL) {
		printf("# %s\n", why);
		return;
	}
	snprintf(name, sizeof(name), "%s: jq count", c->name);
	CHECK(name, template_jq_count(t) == c->jq);
	rc = template_render(t, envelope, 0, &result, why, sizeof(why));
	snprintf(name, sizeof(name), "%s: renders", c->name);
	CHECK(name, rc == 0);
	if (rc == 0) {
		text = json_dump(result);
		snprintf(name, sizeof(name), "%s: value", c->name);
		CHECK_STR(name, jv_string_value(text), c->expected);
		jv_free(text);
	}
	template_free(t);
}

/* Renders TEMPLATE; returns the rc and leaves the reason in why. */
static int
render_status(
    jv envelope, const char *template, int strict, char *why, size_t whylen)
{
	struct template *t;
	jv result;
	int rc;

	t = template_compile(template, strlen(template), why, whylen);
	if (t == NULL)
		return -2;
	rc = template_render(t, envelope, strict, &result, why, whylen);
	if (rc == 0)
		jv_free(result);
	template_free(t);
	return rc;
}

static void
test_strict(jv envelope)
{
	char why[512] = "";

	CHECK("strict missing rejects",
	    render_status(envelope, "{\"a\":\"x{{$trigger.body.nope}}\"}", 1,
		why, sizeof(why)) == -1);
	CHECK_STR("strict reason names placeholder", why,
	    "{{$trigger.body.nope}}: no value");
	CHECK("strict present passes",
	    render_status(envelope, "\"{{$trigger.body.nothing}}\"", 1, why,
		sizeof(why)) == 0);
	CHECK("strict jq empty rejects",
	    render_status(envelope, "\"{{ (empty) }}\"", 1, why, sizeof(why)) ==
		-1);
	CHECK("jq error rejects",
	    render_status(envelope, "\"{{ .body.name | tonumber }}\"", 0, why,
		sizeof(why)) == -1);
	CHECK("jq error reason names placeholder",
	    strncmp(why, "{{.body.name | tonumber}}: jq: ", 31) == 0);
	CHECK("jq error value reason",
	    render_status(envelope, "[\"{{ 1 }}\",\"{{ error({c: 1}) }}\"]", 0,
		why, sizeof(why)) == -1);
	CHECK_STR("jq error value not printed", why,
	    "{{error({c: 1})}}: jq: error raised with a non-string value "
	    "(object)");
}

static void
test_env_path(jv envelope)
{
	static const char template[] = "[\"{{$env.WHOOK_TEST_TEMPLATE}}\","
				       "\"{{$env.WHOOK_TEST_UNSET}}\"]";
	char why[512] = "";
	struct template *t;
	jv result = jv_null(), text;

	setenv("WHOOK_TEST_TEMPLATE", "from-env", 1);
	unsetenv("WHOOK_TEST_UNSET");
	t = template_compile(template, strlen(template), why, sizeof(why));
	CHECK("env path compiles", t != NULL);
	if (t == NULL)
		return;
	CHECK("env path needs no jq", template_jq_count(t) == 0);
	CHECK("env path renders",
	    template_render(t, envelope, 0, &result, why, sizeof(why)) == 0);
	text = json_dump(result);
	CHECK_STR(
	    "env path value", jv_string_value(text), "[\"from-env\",null]");
	jv_free(text);
	template_free(t);
}

/* Returns whether TEMPLATE fails to compile with a reason starting with
 * PREFIX. */
static int
compile_fails(const char *template, const char *prefix)
{
	struct template *t;
	char why[512] = "";

	t = template_compile(template, strlen(template), why, sizeof(why));
	if (t != NULL) {
		template_free(t);
		return 0;
	}
	if (strncmp(why, prefix, strlen(prefix)) != 0) {
		printf("# reason: %s\n", why);
		return 0;
	}
	return 1;
}

static void
test_compile_errors(void)
{
	CHECK("bad JSON", compile_fails("{\"a\":", "invalid JSON: "));
	CHECK("trailing JSON", compile_fails("{} {}", "invalid JSON: "));
	CHECK("unclosed placeholder",
	    compile_fails("\"a {{ $trigger.id\"",
		"unclosed \"{{\" in \"a {{ $trigger.id\""));
	CHECK(
	    "unclosed in key", compile_fails("{\"{{x\":1}", "unclosed \"{{\""));
	CHECK("unclosed after one",
	    compile_fails("\"{{a}} {{b\"", "unclosed \"{{\""));
	CHECK("empty placeholder",
	    compile_fails("\"{{  }}\"", "empty placeholder"));
	CHECK("NUL in placeholder",
	    compile_fails("\"{{a\\u0000b}}\"", "NUL byte in placeholder"));
	CHECK("bad jq names placeholder",
	    compile_fails(
		"[\"{{ .a }}\",\"{{ .b | }}\"]", "{{.b |}}: jq: error: "));
	CHECK("undefined jq function",
	    compile_fails("\"{{ nosuch(1) }}\"",
		"{{nosuch(1)}}: jq: error: nosuch/1 is not defined"));
}

/* Returns whether rendering TEMPLATE can read the value at AT (N
 * steps), or -1 when it does not compile. */
static int
reaches(const char *template, const struct place *at, size_t n)
{
	char why[512];
	struct template *t =
	    template_compile(template, strlen(template), why, sizeof(why));
	struct reads *reads;
	int r;

	if (t == NULL)
		return -1;
	reads = template_reads(t);
	r = at != NULL ? reads_reach(reads, at, n) : reads_raw(reads);
	reads_free(reads);
	template_free(t);
	return r;
}

/* Returns whether TEMPLATE can read the raw body, or -1. */
static int
raw_read(const char *template)
{
	return reaches(template, NULL, 0);
}

/* Returns whether TEMPLATE can read $trigger.body.b, or -1. */
static int
b_read(const char *template)
{
	static const struct place b[] = {
	    {"$trigger", 8, 0}, {"body", 4, 0}, {"b", 1, 0}};

	return reaches(template, b, 3);
}

static void
test_reads_raw(void)
{
	CHECK("raw: body path unread",
	    raw_read("{\"a\":\"{{$trigger.body.id}}\"}") == 0);
	CHECK("raw: $last path unread", raw_read("\"{{$last.rowid}}\"") == 0);
	CHECK("raw: longer key unread", raw_read("\"{{$trigger.rawx}}\"") == 0);
	CHECK("raw: $env unread", raw_read("\"{{$env.raw}}\"") == 0);
	CHECK("raw: constant unread", raw_read("{\"a\":1}") == 0);
	CHECK("raw: raw read", raw_read("\"{{$trigger.raw}}\"") == 1);
	CHECK("raw: bracketed raw read",
	    raw_read("\"{{$trigger[\\\"raw\\\"]}}\"") == 1);
	CHECK("raw: inside raw_base64 read",
	    raw_read("\"x {{$trigger.raw_base64}}\"") == 1);
	CHECK("raw: whole trigger read", raw_read("\"{{$trigger}}\"") == 1);
	CHECK("raw: jq read", raw_read("\"{{$trigger.body | keys}}\"") == 1);
	CHECK("raw: $envelope read", raw_read("\"{{$envelope}}\"") == 1);
	CHECK("raw: one of two read",
	    raw_read("[\"{{$trigger.id}}\",\"{{$trigger.raw}}\"]") == 1);
	CHECK("reads: other member unread",
	    b_read("\"{{$trigger.body.a}}\"") == 0);
	CHECK("reads: member read", b_read("\"{{$trigger.body.b}}\"") == 1);
	CHECK("reads: inside member read",
	    b_read("\"{{$trigger.body.b.c}}\"") == 1);
	CHECK("reads: whole body read", b_read("\"{{$trigger.body}}\"") == 1);
	CHECK(
	    "reads: jq reads all", b_read("\"{{$trigger.body.a | .}}\"") == 1);
}

int
main(void)
{
	jv envelope;
	size_t i;

	envelope = json_parse(envelope_text, strlen(envelope_text));
	CHECK("envelope parses", jv_get_kind(envelope) == JV_KIND_OBJECT);
	if (jv_get_kind(envelope) != JV_KIND_OBJECT)
		UNIT_EXIT();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		test_render(envelope, &cases[i]);
	test_strict(envelope);
	test_env_path(envelope);
	test_compile_errors();
	test_reads_raw();
	jv_free(envelope);
	UNIT_EXIT();
}
