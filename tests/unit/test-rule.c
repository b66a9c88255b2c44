/*
 * Unit tests of rule.c: each operator on its own, literal kinds that must
 * never coerce, big integers, missing fields, nesting of _and and _or,
 * compile-time errors, and reasons that name the path but no value.
 */
#include <stdlib.h>
#include <string.h>

#include "whook.h"
#include "unit.h"

static const char envelope_text[] =
    "{\"$trigger\": {\"method\": \"POST\", \"path\": \"/hooks/lead\","
    " \"headers\": {\"x-webhook-secret\": \"s3cr3t-Token-Value\","
    " \"content-type\": \"application/json\"},"
    " \"body\": {\"n\": 2000, \"s\": \"2000\", \"f\": 1.5, \"zero\": 0,"
    " \"nul\": null, \"t\": true, \"empty\": \"\", \"none\": [],"
    " \"obj\": {}, \"tags\": [\"a\", \"b\", 3],"
    " \"big\": 9007199254740993, \"neg\": -9007199254740993,"
    " \"huge\": 123456789012345678901234567890,"
    " \"email\": \"Rafa.Lopes@Example.test\","
    " \"items\": [{\"sku\": \"A-1\"}, {\"sku\": \"B-2\"}],"
    " \"date\": \"2026-12-04T06:12:16Z\"}},"
    " \"$last\": null}";

static jv envelope;

/* Returns 1 when RULE holds, 0 when it fails, -1 when it does not
 * compile; *why gets the compile error or the failure's reason. */
static int
eval(const char *rule, char *why, size_t whylen)
{
	struct rule *r;
	jv value = json_parse(rule, strlen(rule));
	int m;

	if (!jv_is_valid(value)) {
		jv_free(value);
		snprintf(why, whylen, "invalid JSON in test");
		return -1;
	}
	r = rule_compile(value, why, whylen);
	if (r == NULL)
		return -1;
	m = rule_match(r, envelope, why, whylen);
	rule_free(r);
	return m;
}

static int
holds(const char *rule)
{
	char why[512];

	return eval(rule, why, sizeof(why));
}

/* Wraps OPS, the operators of one field of the body, in a whole rule. */
static int
body(const char *field, const char *ops)
{
	char rule[1024];

	snprintf(rule, sizeof(rule), "{\"$trigger\": {\"body\": {\"%s\": %s}}}",
	    field, ops);
	return holds(rule);
}

static void
test_equality(void)
{
	CHECK("eq number", body("n", "{\"_eq\": 2000}") == 1);
	CHECK("eq number as float", body("n", "{\"_eq\": 2000.0}") == 1);
	CHECK("eq string never number", body("n", "{\"_eq\": \"2000\"}") == 0);
	CHECK("eq number never string", body("s", "{\"_eq\": 2000}") == 0);
	CHECK("eq string", body("s", "{\"_eq\": \"2000\"}") == 1);
	CHECK("eq true never 1", body("t", "{\"_eq\": 1}") == 0);
	CHECK("eq true", body("t", "{\"_eq\": true}") == 1);
	CHECK("eq null", body("nul", "{\"_eq\": null}") == 1);
	CHECK("eq zero never false", body("zero", "{\"_eq\": false}") == 0);
	CHECK("eq array", body("tags", "{\"_eq\": [\"a\", \"b\", 3]}") == 1);
	CHECK("neq kinds differ", body("n", "{\"_neq\": \"2000\"}") == 1);
	CHECK("neq same value", body("n", "{\"_neq\": 2000}") == 0);
	CHECK("eq header case sensitive",
	    holds("{\"$trigger\": {\"headers\": "
		  "{\"x-webhook-secret\": {\"_eq\": "
		  "\"s3cr3t-token-value\"}}}}") == 0);
	CHECK("eq header", holds("{\"$trigger\": {\"headers\": "
				 "{\"x-webhook-secret\": {\"_eq\": "
				 "\"s3cr3t-Token-Value\"}}}}") == 1);
}

static void
test_bignum(void)
{
	CHECK("big eq big", body("big", "{\"_eq\": 9007199254740993}") == 1);
	CHECK("big neq neighbour",
	    body("big", "{\"_eq\": 9007199254740992}") == 0);
	CHECK("big gt 2^53", body("big", "{\"_gt\": 9007199254740992}") == 1);
	CHECK("big lt next", body("big", "{\"_lt\": 9007199254740994}") == 1);
	CHECK("big gt small", body("big", "{\"_gt\": 5}") == 1);
	CHECK("big gt fraction", body("big", "{\"_gt\": 1.5}") == 1);
	CHECK("big lt 1e300", body("big", "{\"_lt\": 1e300}") == 1);
	CHECK("negative big lt fraction", body("neg", "{\"_lt\": -1.5}") == 1);
	CHECK("negative big order",
	    body("neg", "{\"_lt\": -9007199254740992}") == 1);
	CHECK("huge eq digits",
	    body("huge", "{\"_eq\": 123456789012345678901234567890}") == 1);
	CHECK("huge neq last digit",
	    body("huge", "{\"_eq\": 123456789012345678901234567891}") == 0);
	CHECK("huge in",
	    body("huge", "{\"_in\": [1, 123456789012345678901234567890]}") ==
		1);
	CHECK("big never string",
	    body("big", "{\"_eq\": \"9007199254740993\"}") == 0);
	CHECK("big not a string for starts_with",
	    body("big", "{\"_starts_with\": \"9007\"}") == 0);
	CHECK("small never big", body("n", "{\"_eq\": 9007199254740993}") == 0);
	CHECK("between bigs",
	    body("big", "{\"_between\": "
			"[9007199254740992, 9007199254740994]}") == 1);
}

static void
test_order(void)
{
	CHECK("gt", body("n", "{\"_gt\": 1999}") == 1);
	CHECK("gt equal", body("n", "{\"_gt\": 2000}") == 0);
	CHECK("gte equal", body("n", "{\"_gte\": 2000}") == 1);
	CHECK("lt", body("f", "{\"_lt\": 2}") == 1);
	CHECK("lte equal", body("f", "{\"_lte\": 1.5}") == 1);
	CHECK("lt string never number", body("s", "{\"_lt\": 3000}") == 0);
	CHECK("gt number never string", body("n", "{\"_gt\": \"1\"}") == 0);
	CHECK("gt string bytewise",
	    body("date", "{\"_gt\": \"2026-12-01\"}") == 1);
	CHECK("lt string bytewise", body("s", "{\"_lt\": \"3\"}") == 1);
	CHECK("between", body("n", "{\"_between\": [1000, 2000]}") == 1);
	CHECK("between outside", body("n", "{\"_between\": [1, 10]}") == 0);
	CHECK("nbetween", body("n", "{\"_nbetween\": [1, 10]}") == 1);
	CHECK("nbetween inside", body("n", "{\"_nbetween\": [1, 3000]}") == 0);
	CHECK("between strings",
	    body("date", "{\"_between\": "
			 "[\"2026-01-01\", \"2027-01-01\"]}") == 1);
}

static void
test_sets(void)
{
	CHECK("in", body("n", "{\"_in\": [1, 2000]}") == 1);
	CHECK("in no coercion", body("n", "{\"_in\": [\"2000\"]}") == 0);
	CHECK("nin", body("n", "{\"_nin\": [\"2000\", 1]}") == 1);
	CHECK("nin member", body("n", "{\"_nin\": [2000]}") == 0);
	CHECK("contains substring",
	    body("email", "{\"_contains\": \"Lopes@\"}") == 1);
	CHECK("contains case sensitive",
	    body("email", "{\"_contains\": \"lopes\"}") == 0);
	CHECK("icontains", body("email", "{\"_icontains\": \"LOPES\"}") == 1);
	CHECK("nicontains", body("email", "{\"_nicontains\": \"lopes\"}") == 0);
	CHECK("contains member", body("tags", "{\"_contains\": \"b\"}") == 1);
	CHECK(
	    "contains member number", body("tags", "{\"_contains\": 3}") == 1);
	CHECK("contains member no coercion",
	    body("tags", "{\"_contains\": \"3\"}") == 0);
	CHECK("contains not substring of member",
	    body("tags", "{\"_contains\": \"\"}") == 0);
	CHECK("ncontains", body("tags", "{\"_ncontains\": \"c\"}") == 1);
	CHECK("ncontains member", body("tags", "{\"_ncontains\": \"a\"}") == 0);
	CHECK("contains on number", body("n", "{\"_contains\": \"2\"}") == 0);
	CHECK("ncontains on number", body("n", "{\"_ncontains\": \"2\"}") == 0);
}

static void
test_strings(void)
{
	CHECK(
	    "starts_with", body("email", "{\"_starts_with\": \"Rafa\"}") == 1);
	CHECK("starts_with case",
	    body("email", "{\"_starts_with\": \"rafa\"}") == 0);
	CHECK("istarts_with",
	    body("email", "{\"_istarts_with\": \"rAFA\"}") == 1);
	CHECK("nstarts_with", body("email", "{\"_nstarts_with\": \"x\"}") == 1);
	CHECK("nistarts_with",
	    body("email", "{\"_nistarts_with\": \"RAFA\"}") == 0);
	CHECK("ends_with", body("email", "{\"_ends_with\": \".test\"}") == 1);
	CHECK("iends_with",
	    body("email", "{\"_iends_with\": \"EXAMPLE.TEST\"}") == 1);
	CHECK("nends_with", body("email", "{\"_nends_with\": \".test\"}") == 0);
	CHECK(
	    "niends_with", body("email", "{\"_niends_with\": \".org\"}") == 1);
	CHECK("ends_with longer operand",
	    body("s", "{\"_ends_with\": \"12000\"}") == 0);
	CHECK("starts_with on number",
	    body("n", "{\"_starts_with\": \"2\"}") == 0);
	CHECK("regex",
	    body("email", "{\"_regex\": \"^[A-Za-z.]+@example\\\\.test$\"}") ==
		0);
	CHECK("regex ere",
	    body("email",
		"{\"_regex\": \"^[A-Za-z.]+@[A-Za-z]+\\\\.test$\"}") == 1);
	CHECK("regex on number", body("n", "{\"_regex\": \"2\"}") == 0);
	CHECK("regex case sensitive",
	    body("email", "{\"_regex\": \"^rafa\"}") == 0);
	CHECK("regex alternation interval",
	    body("s", "{\"_regex\": \"^(1|2)0{3}$\"}") == 1);
	CHECK("regex unanchored", body("email", "{\"_regex\": \"Lop\"}") == 1);
}

static void
test_missing(void)
{
	CHECK("missing eq", body("nope", "{\"_eq\": null}") == 0);
	CHECK("missing neq", body("nope", "{\"_neq\": 1}") == 0);
	CHECK("missing nin", body("nope", "{\"_nin\": [1]}") == 0);
	CHECK(
	    "missing ncontains", body("nope", "{\"_ncontains\": \"x\"}") == 0);
	CHECK("missing nstarts_with",
	    body("nope", "{\"_nstarts_with\": \"x\"}") == 0);
	CHECK("missing null", body("nope", "{\"_null\": true}") == 1);
	CHECK("missing nnull", body("nope", "{\"_nnull\": true}") == 0);
	CHECK("missing empty", body("nope", "{\"_empty\": true}") == 1);
	CHECK("missing nempty", body("nope", "{\"_nempty\": true}") == 0);
	CHECK(
	    "missing parent", holds("{\"$trigger\": {\"nope\": "
				    "{\"deeper\": {\"_null\": true}}}}") == 1);
	CHECK("missing parent eq", holds("{\"$trigger\": {\"nope\": "
					 "{\"deeper\": {\"_eq\": 1}}}}") == 0);
	CHECK("null null", body("nul", "{\"_null\": true}") == 1);
	CHECK("null false", body("nul", "{\"_null\": false}") == 0);
	CHECK("nnull value", body("n", "{\"_nnull\": true}") == 1);
	CHECK("nnull false", body("n", "{\"_nnull\": false}") == 0);
	CHECK("zero is not null", body("zero", "{\"_null\": true}") == 0);
	CHECK("empty string", body("empty", "{\"_empty\": true}") == 1);
	CHECK("empty array", body("none", "{\"_empty\": true}") == 1);
	CHECK("empty object", body("obj", "{\"_empty\": true}") == 1);
	CHECK("empty zero", body("zero", "{\"_empty\": true}") == 0);
	CHECK("nempty string", body("s", "{\"_nempty\": true}") == 1);
	CHECK("nempty empty", body("empty", "{\"_nempty\": true}") == 0);
}

static void
test_logic(void)
{
	CHECK("and of keys",
	    holds(
		"{\"$trigger\": {\"method\": "
		"{\"_eq\": \"POST\"}, \"body\": {\"n\": {\"_eq\": 2000}}}}") ==
		1);
	CHECK("and of keys one fails",
	    holds(
		"{\"$trigger\": {\"method\": "
		"{\"_eq\": \"POST\"}, \"body\": {\"n\": {\"_eq\": 1}}}}") == 0);
	CHECK("two operators one field",
	    body("n", "{\"_gt\": 1, \"_lt\": 10}") == 0);
	CHECK("two operators both hold",
	    body("n", "{\"_gt\": 1, \"_lt\": 3000}") == 1);
	CHECK("or one holds",
	    holds("{\"_or\": ["
		  "{\"$trigger\": {\"method\": {\"_eq\": \"GET\"}}},"
		  "{\"$trigger\": {\"method\": {\"_eq\": \"POST\"}}}]}") == 1);
	CHECK("or none holds",
	    holds("{\"_or\": ["
		  "{\"$trigger\": {\"method\": {\"_eq\": \"GET\"}}},"
		  "{\"$trigger\": {\"method\": {\"_eq\": \"PUT\"}}}]}") == 0);
	CHECK("and all hold",
	    holds(
		"{\"_and\": ["
		"{\"$trigger\": {\"method\": {\"_eq\": \"POST\"}}},"
		"{\"$trigger\": {\"body\": {\"t\": {\"_eq\": true}}}}]}") == 1);
	CHECK("and inside or",
	    holds("{\"_or\": [{\"_and\": ["
		  "{\"$trigger\": {\"method\": {\"_eq\": \"GET\"}}}]},"
		  "{\"_and\": [{\"$trigger\": {\"body\": {\"n\": {\"_gte\": "
		  "2000}}}},"
		  "{\"$trigger\": {\"path\": {\"_starts_with\": "
		  "\"/hooks/\"}}}]}]}") == 1);
	CHECK("or inside field",
	    body("n", "{\"_or\": [{\"_eq\": 1}, {\"_eq\": 2000}]}") == 1);
	CHECK("empty and holds", holds("{\"_and\": []}") == 1);
	CHECK("empty or fails", holds("{\"_or\": []}") == 0);
	CHECK("empty rule holds", holds("{}") == 1);
	CHECK("array index",
	    holds("{\"$trigger\": {\"body\": {\"items\": "
		  "{\"1\": {\"sku\": {\"_eq\": \"B-2\"}}}}}}") == 1);
	CHECK("array index out of range",
	    holds("{\"$trigger\": {\"body\": "
		  "{\"items\": {\"7\": {\"sku\": {\"_null\": true}}}}}}") == 1);
	CHECK("last is null", holds("{\"$last\": {\"_null\": true}}") == 1);
}

static void
test_errors(void)
{
	char why[512];

	CHECK("unknown operator",
	    eval("{\"a\": {\"_eqq\": 1}}", why, sizeof(why)) == -1);
	CHECK_STR("unknown operator message", why, "unknown operator \"_eqq\"");
	CHECK("in needs array",
	    eval("{\"a\": {\"_in\": 1}}", why, sizeof(why)) == -1);
	CHECK_STR("in needs array message", why, "_in takes an array");
	CHECK("between needs two",
	    eval("{\"a\": {\"_between\": [1]}}", why, sizeof(why)) == -1);
	CHECK("between mixed kinds", eval("{\"a\": {\"_between\": "
					  "[1, \"2\"]}}",
					 why, sizeof(why)) == -1);
	CHECK("lt needs scalar",
	    eval("{\"a\": {\"_lt\": [1]}}", why, sizeof(why)) == -1);
	CHECK("null needs boolean",
	    eval("{\"a\": {\"_null\": 1}}", why, sizeof(why)) == -1);
	CHECK("starts_with needs string", eval("{\"a\": "
					       "{\"_starts_with\": 1}}",
					      why, sizeof(why)) == -1);
	CHECK("regex invalid",
	    eval("{\"a\": {\"_regex\": \"(\"}}", why, sizeof(why)) == -1);
	CHECK("regex message hides pattern", strstr(why, "\"(\"") == NULL);
	CHECK(
	    "and needs array", eval("{\"_and\": {}}", why, sizeof(why)) == -1);
	CHECK("or element not object",
	    eval("{\"_or\": [1]}", why, sizeof(why)) == -1);
	CHECK("field not object",
	    eval("{\"a\": \"POST\"}", why, sizeof(why)) == -1);
	CHECK("rule not object", eval("[1]", why, sizeof(why)) == -1);
	CHECK("nested unknown operator", eval("{\"_or\": [{\"a\": "
					      "{\"b\": {\"_like\": 1}}}]}",
					     why, sizeof(why)) == -1);
	CHECK_STR("nested unknown operator message", why,
	    "unknown operator \"_like\"");
}

static void
test_reasons(void)
{
	char why[512];

	CHECK("header rule fails",
	    eval("{\"$trigger\": {\"headers\": "
		 "{\"x-webhook-secret\": {\"_eq\": \"guess\"}}}}",
		why, sizeof(why)) == 0);
	CHECK_STR("reason names path and operator", why,
	    "$trigger.headers.x-webhook-secret: _eq failed");
	CHECK("reason hides header value",
	    strstr(why, "s3cr3t") == NULL && strstr(why, "guess") == NULL);
	CHECK("missing field fails", eval("{\"$trigger\": {\"body\": "
					  "{\"nope\": {\"_gt\": 1}}}}",
					 why, sizeof(why)) == 0);
	CHECK_STR("reason says missing", why,
	    "$trigger.body.nope: _gt failed: field missing");
	CHECK("or fails", eval("{\"$trigger\": {\"_or\": [{\"method\": "
			       "{\"_eq\": \"GET\"}}]}}",
			      why, sizeof(why)) == 0);
	CHECK_STR("reason names or", why, "$trigger: _or failed");
	CHECK("top operator fails",
	    eval("{\"_null\": true}", why, sizeof(why)) == 0);
	CHECK_STR("reason names envelope", why, "envelope: _null failed");
}

int
main(void)
{
	envelope = json_parse(envelope_text, strlen(envelope_text));
	CHECK("envelope parses", jv_get_kind(envelope) == JV_KIND_OBJECT);
	if (jv_get_kind(envelope) != JV_KIND_OBJECT)
		UNIT_EXIT();
	test_equality();
	test_bignum();
	test_order();
	test_sets();
	test_strings();
	test_missing();
	test_logic();
	test_errors();
	test_reasons();
	jv_free(envelope);
	UNIT_EXIT();
}
