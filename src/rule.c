/*
 * Directus filter rules over an envelope, evaluated without jq.  A rule
 * is a JSON object whose keys are fields of the value at hand (nested
 * freely), operators such as "_eq" applied to that value, or "_and" and
 * "_or" over arrays of rules.  Every key must hold.  Literals compare as
 * the JSON values they are: numbers as numbers, big integers by their
 * digits, strings bytewise, and never one kind as another.  The whole
 * rule is checked when it is compiled, so a bad operator or operand is
 * reported before the first envelope.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <oniguruma.h>

#include "whook.h"

enum node_kind { NODE_ALL, NODE_ANY, NODE_FIELD, NODE_OP };

/* The operand an operator takes, checked at compile time. */
enum operand {
	ARG_ANY,
	ARG_ORDERED,
	ARG_ARRAY,
	ARG_STRING,
	ARG_BOOL,
	ARG_RANGE
};

struct node;

struct op {
	const char *name;
	enum operand arg;
	int negate;	/* the operator holds when its test does not */
	int missing_ok; /* the test also runs on a field the envelope lacks */
	/* Returns 1 or 0, or -1 when V is of a kind the test never takes. */
	int (*test)(const struct node *n, jv v);
};

struct node {
	enum node_kind kind;
	char *key;		/* NODE_FIELD: the field's name */
	const struct op *op;	/* NODE_OP */
	jv operand;		/* NODE_OP */
	OnigRegex re;		/* NODE_OP of _regex, or NULL */
	struct node **children; /* NODE_FIELD has exactly one */
	size_t nchildren;
};

struct rule {
	struct node *root;
};

/* The field path rule_match has reached, for the reason of a failure. */
struct trail {
	char path[256];
	size_t len;
	char *reason;
	size_t reasonlen;
};

static int
is_number(jv v)
{
	return jv_get_kind(v) == JV_KIND_NUMBER || json_is_bignum(v);
}

static int
is_string(jv v)
{
	return jv_get_kind(v) == JV_KIND_STRING && !json_is_bignum(v);
}

static size_t
string_len(jv v)
{
	return (size_t)jv_string_length_bytes(jv_copy(v));
}

/* Compares two decimal integers (an optional '-', then digits). */
static int
digits_cmp(const char *a, const char *b)
{
	int nega = *a == '-', negb = *b == '-', c;
	size_t la, lb;

	a += nega;
	b += negb;
	while (*a == '0')
		a++;
	while (*b == '0')
		b++;
	if (*a == '\0')
		nega = 0;
	if (*b == '\0')
		negb = 0;
	if (nega != negb)
		return nega ? -1 : 1;
	la = strlen(a);
	lb = strlen(b);
	if (la != lb)
		c = la < lb ? -1 : 1;
	else
		c = memcmp(a, b, la);
	c = (c > 0) - (c < 0);
	return nega ? -c : c;
}

/* Writes D's exact decimal digits, which glibc's printf prints in full.
 * Returns -1 when D is not a finite integer. */
static int
double_digits(double d, char *buf, size_t len)
{
	if (!isfinite(d) || floor(d) != d)
		return -1;
	snprintf(buf, len, "%.0f", d);
	return 0;
}

/*
 * Compares a big integer BIG with a double D that is not an integer
 * (a fraction, an infinity or NaN).  A finite fraction lies below 2^52
 * in magnitude, while a big integer lies beyond 2^53, so BIG's sign
 * decides.  Returns -1 for NaN, which is unordered.
 */
static int
big_cmp_fraction(const char *big, double d, int *cmp)
{
	if (isnan(d))
		return -1;
	if (isinf(d))
		*cmp = d > 0 ? -1 : 1;
	else
		*cmp = *big == '-' ? -1 : 1;
	return 0;
}

/* Compares the numbers A and B into *cmp.  Returns -1 when unordered. */
static int
number_cmp(jv a, jv b, int *cmp)
{
	const char *da = json_bignum_digits(a), *db = json_bignum_digits(b);
	char bufa[320], bufb[320];
	double x, y;

	if (da == NULL && db == NULL) {
		x = jv_number_value(a);
		y = jv_number_value(b);
		if (isnan(x) || isnan(y))
			return -1;
		*cmp = (x > y) - (x < y);
		return 0;
	}
	if (da == NULL &&
	    double_digits(jv_number_value(a), bufa, sizeof(bufa)) == 0)
		da = bufa;
	if (db == NULL &&
	    double_digits(jv_number_value(b), bufb, sizeof(bufb)) == 0)
		db = bufb;
	if (da != NULL && db != NULL) {
		*cmp = digits_cmp(da, db);
		return 0;
	}
	if (da != NULL)
		return big_cmp_fraction(da, jv_number_value(b), cmp);
	if (big_cmp_fraction(db, jv_number_value(a), cmp) == -1)
		return -1;
	*cmp = -*cmp;
	return 0;
}

static int
value_equal(jv a, jv b)
{
	int cmp;

	if (is_number(a) && is_number(b))
		return number_cmp(a, b, &cmp) == 0 && cmp == 0;
	if (is_number(a) || is_number(b))
		return 0;
	return jv_equal(jv_copy(a), jv_copy(b));
}

/* Orders A against B into *cmp, numbers as numbers and strings bytewise.
 * Returns -1 for any other pair, which no ordering operator passes. */
static int
value_order(jv a, jv b, int *cmp)
{
	size_t la, lb;
	int c;

	if (is_number(a) && is_number(b))
		return number_cmp(a, b, cmp);
	if (!is_string(a) || !is_string(b))
		return -1;
	la = string_len(a);
	lb = string_len(b);
	c = memcmp(jv_string_value(a), jv_string_value(b), la < lb ? la : lb);
	*cmp = c != 0 ? (c > 0) - (c < 0) : (la > lb) - (la < lb);
	return 0;
}

static int
test_eq(const struct node *n, jv v)
{
	return value_equal(v, n->operand);
}

static int
test_lt(const struct node *n, jv v)
{
	int cmp;

	return value_order(v, n->operand, &cmp) == -1 ? -1 : cmp < 0;
}

static int
test_lte(const struct node *n, jv v)
{
	int cmp;

	return value_order(v, n->operand, &cmp) == -1 ? -1 : cmp <= 0;
}

static int
test_gt(const struct node *n, jv v)
{
	int cmp;

	return value_order(v, n->operand, &cmp) == -1 ? -1 : cmp > 0;
}

static int
test_gte(const struct node *n, jv v)
{
	int cmp;

	return value_order(v, n->operand, &cmp) == -1 ? -1 : cmp >= 0;
}

/* Returns whether the array ARRAY has an element equal to V. */
static int
array_has(jv array, jv v)
{
	int i, len = jv_array_length(jv_copy(array)), found = 0;
	jv item;

	for (i = 0; i < len && !found; i++) {
		item = jv_array_get(jv_copy(array), i);
		found = value_equal(item, v);
		jv_free(item);
	}
	return found;
}

static int
test_in(const struct node *n, jv v)
{
	return array_has(n->operand, v);
}

static int
test_between(const struct node *n, jv v)
{
	jv lo = jv_array_get(jv_copy(n->operand), 0);
	jv hi = jv_array_get(jv_copy(n->operand), 1);
	int clo, chi, r = -1;

	if (value_order(v, lo, &clo) == 0 && value_order(v, hi, &chi) == 0)
		r = clo >= 0 && chi <= 0;
	jv_free(lo);
	jv_free(hi);
	return r;
}

static int
test_null(const struct node *n, jv v)
{
	(void)n;
	return !jv_is_valid(v) || jv_get_kind(v) == JV_KIND_NULL;
}

/* Empty: missing, null, "", [] or {}. */
static int
test_empty(const struct node *n, jv v)
{
	(void)n;
	switch (jv_get_kind(v)) {
	case JV_KIND_INVALID:
	case JV_KIND_NULL:
		return 1;
	case JV_KIND_STRING:
		return string_len(v) == 0;
	case JV_KIND_ARRAY:
		return jv_array_length(jv_copy(v)) == 0;
	case JV_KIND_OBJECT:
		return jv_object_length(jv_copy(v)) == 0;
	default:
		return 0;
	}
}

static int
fold(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Compares N bytes, ASCII letters folded to lower case when FOLDED. */
static int
bytes_equal(const char *a, const char *b, size_t n, int folded)
{
	size_t i;

	if (!folded)
		return memcmp(a, b, n) == 0;
	for (i = 0; i < n; i++)
		if (fold((unsigned char)a[i]) != fold((unsigned char)b[i]))
			return 0;
	return 1;
}

/* The place of the operand in a string value. */
enum where { AT_START, AT_END, ANYWHERE };

static int
text_match(const struct node *n, jv v, enum where where, int folded)
{
	const char *s, *p;
	size_t len, plen, i;

	if (!is_string(v))
		return -1;
	s = jv_string_value(v);
	len = string_len(v);
	p = jv_string_value(n->operand);
	plen = string_len(n->operand);
	if (plen > len)
		return 0;
	if (where == AT_START)
		return bytes_equal(s, p, plen, folded);
	if (where == AT_END)
		return bytes_equal(s + len - plen, p, plen, folded);
	for (i = 0; i + plen <= len; i++)
		if (bytes_equal(s + i, p, plen, folded))
			return 1;
	return 0;
}

/* Tests for a substring of a string, or an element of an array. */
static int
test_contains(const struct node *n, jv v)
{
	if (jv_get_kind(v) == JV_KIND_ARRAY)
		return array_has(v, n->operand);
	if (!is_string(n->operand))
		return -1;
	return text_match(n, v, ANYWHERE, 0);
}

static int
test_icontains(const struct node *n, jv v)
{
	return text_match(n, v, ANYWHERE, 1);
}

static int
test_starts(const struct node *n, jv v)
{
	return text_match(n, v, AT_START, 0);
}

static int
test_istarts(const struct node *n, jv v)
{
	return text_match(n, v, AT_START, 1);
}

static int
test_ends(const struct node *n, jv v)
{
	return text_match(n, v, AT_END, 0);
}

static int
test_iends(const struct node *n, jv v)
{
	return text_match(n, v, AT_END, 1);
}

/* The subject is bounded by its length, so a NUL byte inside a JSON
 * string does not end it early. */
static int
test_regex(const struct node *n, jv v)
{
	const OnigUChar *s;
	int r;

	if (!is_string(v))
		return -1;
	s = (const OnigUChar *)jv_string_value(v);
	r = onig_search(n->re, s, s + string_len(v), s, s + string_len(v), NULL,
	    ONIG_OPTION_NONE);
	if (r >= 0)
		return 1;
	return r == ONIG_MISMATCH ? 0 : -1;
}

static const struct op ops[] = {
    {"_eq", ARG_ANY, 0, 0, test_eq},
    {"_neq", ARG_ANY, 1, 0, test_eq},
    {"_lt", ARG_ORDERED, 0, 0, test_lt},
    {"_lte", ARG_ORDERED, 0, 0, test_lte},
    {"_gt", ARG_ORDERED, 0, 0, test_gt},
    {"_gte", ARG_ORDERED, 0, 0, test_gte},
    {"_in", ARG_ARRAY, 0, 0, test_in},
    {"_nin", ARG_ARRAY, 1, 0, test_in},
    {"_between", ARG_RANGE, 0, 0, test_between},
    {"_nbetween", ARG_RANGE, 1, 0, test_between},
    {"_null", ARG_BOOL, 0, 1, test_null},
    {"_nnull", ARG_BOOL, 1, 1, test_null},
    {"_empty", ARG_BOOL, 0, 1, test_empty},
    {"_nempty", ARG_BOOL, 1, 1, test_empty},
    {"_contains", ARG_ANY, 0, 0, test_contains},
    {"_ncontains", ARG_ANY, 1, 0, test_contains},
    {"_icontains", ARG_STRING, 0, 0, test_icontains},
    {"_nicontains", ARG_STRING, 1, 0, test_icontains},
    {"_starts_with", ARG_STRING, 0, 0, test_starts},
    {"_nstarts_with", ARG_STRING, 1, 0, test_starts},
    {"_istarts_with", ARG_STRING, 0, 0, test_istarts},
    {"_nistarts_with", ARG_STRING, 1, 0, test_istarts},
    {"_ends_with", ARG_STRING, 0, 0, test_ends},
    {"_nends_with", ARG_STRING, 1, 0, test_ends},
    {"_iends_with", ARG_STRING, 0, 0, test_iends},
    {"_niends_with", ARG_STRING, 1, 0, test_iends},
    {"_regex", ARG_STRING, 0, 0, test_regex},
};

static const struct op *
op_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(ops[i].name, name) == 0)
			return &ops[i];
	return NULL;
}

static void
node_free(struct node *n)
{
	size_t i;

	if (n == NULL)
		return;
	for (i = 0; i < n->nchildren; i++)
		node_free(n->children[i]);
	free(n->children);
	free(n->key);
	if (n->kind == NODE_OP)
		jv_free(n->operand);
	if (n->re != NULL)
		onig_free(n->re);
	free(n);
}

static struct node *
node_new(enum node_kind kind)
{
	struct node *n = calloc(1, sizeof(*n));

	if (n != NULL)
		n->kind = kind;
	return n;
}

/* Adds CHILD to N; frees CHILD and returns -1 when memory runs out. */
static int
node_add(struct node *n, struct node *child)
{
	struct node **grown;

	grown = realloc(n->children, (n->nchildren + 1) * sizeof(*grown));
	if (grown == NULL) {
		node_free(child);
		return -1;
	}
	n->children = grown;
	n->children[n->nchildren++] = child;
	return 0;
}

static int
operand_valid(const struct op *op, jv v)
{
	jv lo, hi;
	int ok;

	switch (op->arg) {
	case ARG_ANY:
		return 1;
	case ARG_ORDERED:
		return is_number(v) || is_string(v);
	case ARG_ARRAY:
		return jv_get_kind(v) == JV_KIND_ARRAY;
	case ARG_STRING:
		return is_string(v);
	case ARG_BOOL:
		return jv_get_kind(v) == JV_KIND_TRUE ||
		       jv_get_kind(v) == JV_KIND_FALSE;
	case ARG_RANGE:
		if (jv_get_kind(v) != JV_KIND_ARRAY ||
		    jv_array_length(jv_copy(v)) != 2)
			return 0;
		lo = jv_array_get(jv_copy(v), 0);
		hi = jv_array_get(jv_copy(v), 1);
		ok = (is_number(lo) && is_number(hi)) ||
		     (is_string(lo) && is_string(hi));
		jv_free(lo);
		jv_free(hi);
		return ok;
	}
	return 0;
}

static const char *
operand_expected(enum operand arg)
{
	switch (arg) {
	case ARG_ORDERED:
		return "a number or a string";
	case ARG_ARRAY:
		return "an array";
	case ARG_STRING:
		return "a string";
	case ARG_BOOL:
		return "true or false";
	case ARG_RANGE:
		return "an array of two numbers or of two strings";
	default:
		return "a JSON value";
	}
}

/*
 * Compiles the POSIX extended regular expression of a _regex node with
 * Oniguruma, jq's own regex library.  It is used rather than regcomp(3)
 * because libonig exports regcomp and regexec too, with other flag
 * values, and a program linked with libjq gets those in place of the C
 * library's.  The pattern is not printed: it may test a secret header.
 */
static int
regex_compile(struct node *n, char *why, size_t whylen)
{
	OnigUChar text[ONIG_MAX_ERROR_MESSAGE_LEN];
	OnigErrorInfo info;
	const OnigUChar *p = (const OnigUChar *)jv_string_value(n->operand);
	int err;

	err = onig_new(&n->re, p, p + string_len(n->operand), ONIG_OPTION_NONE,
	    ONIG_ENCODING_UTF8, ONIG_SYNTAX_POSIX_EXTENDED, &info);
	if (err != ONIG_NORMAL) {
		n->re = NULL;
		onig_error_code_to_str(text, err, &info);
		snprintf(why, whylen, "_regex: invalid regular expression: %s",
		    (const char *)text);
		return -1;
	}
	return 0;
}

/* Compiles the operator NAME with OPERAND (consumed). */
static struct node *
compile_op(const char *name, jv operand, char *why, size_t whylen)
{
	const struct op *op = op_find(name);
	struct node *n;

	if (op == NULL || !operand_valid(op, operand)) {
		if (op == NULL)
			snprintf(why, whylen, "unknown operator \"%s\"", name);
		else
			snprintf(why, whylen, "%s takes %s", name,
			    operand_expected(op->arg));
		jv_free(operand);
		return NULL;
	}
	n = node_new(NODE_OP);
	if (n == NULL) {
		snprintf(why, whylen, "out of memory");
		jv_free(operand);
		return NULL;
	}
	n->op = op;
	n->operand = operand;
	if (op->test == test_regex && regex_compile(n, why, whylen) == -1) {
		node_free(n);
		return NULL;
	}
	return n;
}

static struct node *compile_object(jv obj, char *why, size_t whylen);

/* Compiles "_and" or "_or": an array of rule objects (consumed). */
static struct node *
compile_logic(const char *name, jv rules, char *why, size_t whylen)
{
	struct node *n, *child;
	int i, len;

	if (jv_get_kind(rules) != JV_KIND_ARRAY) {
		snprintf(why, whylen, "%s takes an array of rules", name);
		jv_free(rules);
		return NULL;
	}
	n = node_new(strcmp(name, "_or") == 0 ? NODE_ANY : NODE_ALL);
	len = jv_array_length(jv_copy(rules));
	for (i = 0; n != NULL && i < len; i++) {
		child = compile_object(
		    jv_array_get(jv_copy(rules), i), why, whylen);
		if (child == NULL || node_add(n, child) == -1) {
			node_free(n);
			n = NULL;
		}
	}
	if (n == NULL && why[0] == '\0')
		snprintf(why, whylen, "out of memory");
	jv_free(rules);
	return n;
}

/* Compiles the field KEY whose rule is SUB (consumed). */
static struct node *
compile_field(const char *key, jv sub, char *why, size_t whylen)
{
	struct node *n, *child;

	if (jv_get_kind(sub) != JV_KIND_OBJECT) {
		snprintf(why, whylen,
		    "field \"%s\": expected an object of "
		    "operators or fields",
		    key);
		jv_free(sub);
		return NULL;
	}
	child = compile_object(sub, why, whylen);
	if (child == NULL)
		return NULL;
	n = node_new(NODE_FIELD);
	if (n == NULL || (n->key = strdup(key)) == NULL ||
	    node_add(n, child) == -1) {
		snprintf(why, whylen, "out of memory");
		if (n == NULL || n->key == NULL)
			node_free(child);
		node_free(n);
		return NULL;
	}
	return n;
}

static struct node *
compile_key(const char *key, jv value, char *why, size_t whylen)
{
	if (strcmp(key, "_and") == 0 || strcmp(key, "_or") == 0)
		return compile_logic(key, value, why, whylen);
	if (key[0] == '_')
		return compile_op(key, value, why, whylen);
	return compile_field(key, value, why, whylen);
}

/* Compiles a rule object (consumed) into the AND of its keys. */
static struct node *
compile_object(jv obj, char *why, size_t whylen)
{
	struct node *n, *child;
	jv key;
	int it;

	if (jv_get_kind(obj) != JV_KIND_OBJECT) {
		snprintf(why, whylen, "a rule must be a JSON object");
		jv_free(obj);
		return NULL;
	}
	n = node_new(NODE_ALL);
	for (it = jv_object_iter(obj);
	     n != NULL && jv_object_iter_valid(obj, it);
	     it = jv_object_iter_next(obj, it)) {
		key = jv_object_iter_key(obj, it);
		child = compile_key(jv_string_value(key),
		    jv_object_iter_value(obj, it), why, whylen);
		jv_free(key);
		if (child == NULL || node_add(n, child) == -1) {
			node_free(n);
			n = NULL;
		}
	}
	if (n == NULL && why[0] == '\0')
		snprintf(why, whylen, "out of memory");
	jv_free(obj);
	return n;
}

struct rule *
rule_compile(jv rule, char *why, size_t whylen)
{
	struct rule *r;
	struct node *root;

	why[0] = '\0';
	root = compile_object(rule, why, whylen);
	if (root == NULL)
		return NULL;
	r = malloc(sizeof(*r));
	if (r == NULL) {
		snprintf(why, whylen, "out of memory");
		node_free(root);
		return NULL;
	}
	r->root = root;
	return r;
}

/* Returns the field KEY of V (borrowed): an object's member, or an
 * array's element when KEY is all digits; jv_invalid() when missing. */
static jv
field_get(jv v, const char *key)
{
	char *end;
	long i;

	if (jv_get_kind(v) == JV_KIND_OBJECT)
		return jv_object_get(jv_copy(v), jv_string(key));
	if (jv_get_kind(v) != JV_KIND_ARRAY || key[0] < '0' || key[0] > '9')
		return jv_invalid();
	i = strtol(key, &end, 10);
	if (*end != '\0' || i >= jv_array_length(jv_copy(v)))
		return jv_invalid();
	return jv_array_get(jv_copy(v), (int)i);
}

static void
trail_fail(struct trail *t, const char *what, const char *detail)
{
	snprintf(t->reason, t->reasonlen, "%s: %s failed%s",
	    t->len > 0 ? t->path : "envelope", what, detail);
}

static int
match_op(const struct node *n, jv v, struct trail *t)
{
	int negate = n->op->negate, r;

	if (!jv_is_valid(v) && !n->op->missing_ok) {
		trail_fail(t, n->op->name, ": field missing");
		return 0;
	}
	/* "_null": false is "_nnull": true, and so on. */
	if (n->op->arg == ARG_BOOL && jv_get_kind(n->operand) == JV_KIND_FALSE)
		negate = !negate;
	r = n->op->test(n, v);
	if (r != -1 && negate)
		r = !r;
	if (r != 1)
		trail_fail(t, n->op->name, "");
	return r == 1;
}

static int match_node(const struct node *n, jv v, struct trail *t);

static int
match_field(const struct node *n, jv v, struct trail *t)
{
	size_t len = t->len;
	jv sub = field_get(v, n->key);
	int r;

	snprintf(t->path + len, sizeof(t->path) - len, "%s%s",
	    len > 0 ? "." : "", n->key);
	t->len = strlen(t->path);
	r = match_node(n->children[0], sub, t);
	t->len = len;
	t->path[len] = '\0';
	jv_free(sub);
	return r;
}

static int
match_node(const struct node *n, jv v, struct trail *t)
{
	size_t i;

	switch (n->kind) {
	case NODE_ALL:
		for (i = 0; i < n->nchildren; i++)
			if (!match_node(n->children[i], v, t))
				return 0;
		return 1;
	case NODE_ANY:
		for (i = 0; i < n->nchildren; i++)
			if (match_node(n->children[i], v, t))
				return 1;
		trail_fail(t, "_or", "");
		return 0;
	case NODE_FIELD:
		return match_field(n, v, t);
	case NODE_OP:
		return match_op(n, v, t);
	}
	return 0;
}

int
rule_match(const struct rule *r, jv envelope, char *reason, size_t reasonlen)
{
	struct trail t = {.reason = reason, .reasonlen = reasonlen};

	reason[0] = '\0';
	return match_node(r->root, envelope, &t);
}

void
rule_free(struct rule *r)
{
	if (r == NULL)
		return;
	node_free(r->root);
	free(r);
}
