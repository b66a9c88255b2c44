/*
 * whook-map's templates: a JSON value whose strings may hold
 * {{ expression }} placeholders.  A template is compiled once into a tree
 * in which constant parts stay jv values.  Each distinct expression that
 * is a plain path is resolved natively with path_get.  The others are
 * joined into one jq program, compiled once and run once per envelope,
 * because jq 1.6 spends 20-30 ms on every compile and a few µs on a run.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "whook.h"

enum node_kind {
	NODE_CONST, /* no placeholder: the value itself */
	NODE_VALUE, /* a string that is one placeholder: its value */
	NODE_TEXT,  /* placeholders inside text: a string */
	NODE_ARRAY,
	NODE_OBJECT
};

struct piece {
	jv literal; /* a literal string, or jv_invalid() for an expression */
	size_t expr;
};

struct node {
	enum node_kind kind;
	jv value;	      /* NODE_CONST */
	size_t expr;	      /* NODE_VALUE */
	struct piece *pieces; /* NODE_TEXT */
	size_t npieces;
	struct node *keys;  /* NODE_OBJECT: NODE_CONST or NODE_TEXT */
	struct node *items; /* elements, or the values of an object */
	size_t nitems;
};

struct expr {
	char *text;	   /* between the braces, blanks trimmed */
	struct path *path; /* NULL when jq evaluates it */
	size_t jq_index;
};

struct template
{
	struct node root;
	struct expr *exprs;
	size_t nexprs;
	size_t njq;
	struct jqprog *jq;
	jv *values; /* each expression's value during one render */
};

static int compile_node(struct template *t, struct node *node, jv value,
    int as_text, char *why, size_t whylen);

/*
 * Finds the next placeholder in S[FROM..N).  Braces and strings inside it
 * are matched, so a jq object such as {{ {a: {b: 1}} }} is one
 * placeholder.  Returns 1 with *open at "{{" and *end past "}}", 0 when
 * there is none, or -1 when a "{{" is never closed.
 */
static int
find_placeholder(
    const char *s, size_t n, size_t from, size_t *open, size_t *end)
{
	const char *p;
	size_t i, depth = 0;
	int in_string = 0;

	p = from < n ? memmem(s + from, n - from, "{{", 2) : NULL;
	if (p == NULL)
		return 0;
	*open = p - s;
	for (i = *open + 2; i < n; i++) {
		if (in_string) {
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				in_string = 0;
		} else if (s[i] == '"') {
			in_string = 1;
		} else if (s[i] == '{') {
			depth++;
		} else if (s[i] == '}' && depth > 0) {
			depth--;
		} else if (s[i] == '}' && i + 1 < n && s[i + 1] == '}') {
			*end = i + 2;
			return 1;
		}
	}
	return -1;
}

/* Returns whether EXPR names $envelope, which is a jq variable and not a
 * key of the envelope, so path_get cannot resolve it. */
static int
names_envelope(const char *expr)
{
	size_t n = strlen("$envelope");

	return strncmp(expr, "$envelope", n) == 0 &&
	       (expr[n] == '\0' || expr[n] == '.' || expr[n] == '[' ||
		   isspace((unsigned char)expr[n]));
}

/* Returns the index of the expression S[0..N) (blanks trimmed), adding it
 * unless the template already has it, or -1 with *why set. */
static long
add_expr(struct template *t, const char *s, size_t n, char *why, size_t whylen)
{
	struct expr *grown, *e;
	size_t i;

	while (n > 0 && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	if (n == 0 || memchr(s, '\0', n) != NULL) {
		snprintf(why, whylen, "%s placeholder \"{{%.*s}}\"",
		    n == 0 ? "empty" : "NUL byte in", (int)n, s);
		return -1;
	}
	for (i = 0; i < t->nexprs; i++)
		if (strlen(t->exprs[i].text) == n &&
		    memcmp(t->exprs[i].text, s, n) == 0)
			return (long)i;
	grown = realloc(t->exprs, (t->nexprs + 1) * sizeof(*grown));
	if (grown == NULL)
		goto nomem;
	t->exprs = grown;
	e = &t->exprs[t->nexprs];
	if ((e->text = strndup(s, n)) == NULL)
		goto nomem;
	e->path = names_envelope(e->text) ? NULL : path_compile(e->text);
	if (e->path == NULL)
		e->jq_index = t->njq++;
	return (long)t->nexprs++;
nomem:
	snprintf(why, whylen, "out of memory");
	return -1;
}

static int
add_piece(struct node *node, jv literal, size_t expr)
{
	struct piece *grown;

	grown = realloc(node->pieces, (node->npieces + 1) * sizeof(*grown));
	if (grown == NULL) {
		jv_free(literal);
		return -1;
	}
	node->pieces = grown;
	node->pieces[node->npieces].literal = literal;
	node->pieces[node->npieces].expr = expr;
	node->npieces++;
	return 0;
}

/* Splits S[0..N) into literal pieces and placeholders. */
static int
compile_pieces(struct template *t, struct node *node, const char *s, size_t n,
    char *why, size_t whylen)
{
	size_t from = 0, open, end;
	long expr;
	int found;

	while ((found = find_placeholder(s, n, from, &open, &end)) == 1) {
		expr = add_expr(t, s + open + 2, end - open - 4, why, whylen);
		if (expr == -1)
			return -1;
		if ((open > from &&
			add_piece(node, jv_string_sized(s + from, open - from),
			    0) == -1) ||
		    add_piece(node, jv_invalid(), expr) == -1)
			goto nomem;
		from = end;
	}
	if (found == -1) {
		snprintf(why, whylen, "unclosed \"{{\" in \"%.60s%s\"", s,
		    n > 60 ? "..." : "");
		return -1;
	}
	if (from < n &&
	    add_piece(node, jv_string_sized(s + from, n - from), 0) == -1)
		goto nomem;
	return 0;
nomem:
	snprintf(why, whylen, "out of memory");
	return -1;
}

/* Compiles the string VALUE.  AS_TEXT makes even a lone placeholder text,
 * as an object key must be. */
static int
compile_string(struct template *t, struct node *node, jv value, int as_text,
    char *why, size_t whylen)
{
	const char *s = jv_string_value(value);
	size_t n = jv_string_length_bytes(jv_copy(value)), open, end;
	int rc;

	if (find_placeholder(s, n, 0, &open, &end) == 0) {
		node->kind = NODE_CONST;
		node->value = value;
		return 0;
	}
	node->kind = NODE_TEXT;
	rc = compile_pieces(t, node, s, n, why, whylen);
	if (rc == 0 && !as_text && node->npieces == 1 &&
	    !jv_is_valid(node->pieces[0].literal)) {
		node->kind = NODE_VALUE;
		node->expr = node->pieces[0].expr;
	}
	jv_free(value);
	return rc;
}

static void
node_free(struct node *node)
{
	size_t i;

	if (node->kind == NODE_CONST)
		jv_free(node->value);
	for (i = 0; i < node->npieces; i++)
		jv_free(node->pieces[i].literal);
	free(node->pieces);
	for (i = 0; i < node->nitems; i++) {
		if (node->keys != NULL)
			node_free(&node->keys[i]);
		node_free(&node->items[i]);
	}
	free(node->keys);
	free(node->items);
	memset(node, 0, sizeof(*node));
}

/* Turns an array or object node whose children are all constant into one
 * constant, VALUE, so that rendering copies it whole. */
static void
fold_constant(struct node *node, jv value)
{
	size_t i;

	for (i = 0; i < node->nitems; i++)
		if (node->items[i].kind != NODE_CONST ||
		    (node->keys != NULL && node->keys[i].kind != NODE_CONST)) {
			jv_free(value);
			return;
		}
	node_free(node);
	node->kind = NODE_CONST;
	node->value = value;
}

static int
compile_array(
    struct template *t, struct node *node, jv value, char *why, size_t whylen)
{
	size_t i, n = jv_array_length(jv_copy(value));

	node->kind = NODE_ARRAY;
	node->items = calloc(n ? n : 1, sizeof(*node->items));
	if (node->items == NULL) {
		snprintf(why, whylen, "out of memory");
		jv_free(value);
		return -1;
	}
	for (i = 0; i < n; i++) {
		node->nitems++;
		if (compile_node(t, &node->items[i],
			jv_array_get(jv_copy(value), (int)i), 0, why,
			whylen) == -1) {
			jv_free(value);
			return -1;
		}
	}
	fold_constant(node, value);
	return 0;
}

static int
compile_object(
    struct template *t, struct node *node, jv value, char *why, size_t whylen)
{
	size_t i = 0, n = jv_object_length(jv_copy(value));
	int rc = 0;

	node->kind = NODE_OBJECT;
	node->keys = calloc(n ? n : 1, sizeof(*node->keys));
	node->items = calloc(n ? n : 1, sizeof(*node->items));
	if (node->keys == NULL || node->items == NULL) {
		snprintf(why, whylen, "out of memory");
		jv_free(value);
		return -1;
	}
	jv_object_foreach(value, key, item)
	{
		if (rc == 0) {
			node->nitems = ++i;
			rc = compile_node(
			    t, &node->keys[i - 1], key, 1, why, whylen);
		} else {
			jv_free(key);
		}
		if (rc == 0)
			rc = compile_node(
			    t, &node->items[i - 1], item, 0, why, whylen);
		else
			jv_free(item);
	}
	if (rc == 0)
		fold_constant(node, value);
	else
		jv_free(value);
	return rc;
}

/* Compiles VALUE (consumed) into NODE; returns 0, or -1 with *why set. */
static int
compile_node(struct template *t, struct node *node, jv value, int as_text,
    char *why, size_t whylen)
{
	switch (jv_get_kind(value)) {
	case JV_KIND_STRING:
		return compile_string(t, node, value, as_text, why, whylen);
	case JV_KIND_ARRAY:
		return compile_array(t, node, value, why, whylen);
	case JV_KIND_OBJECT:
		return compile_object(t, node, value, why, whylen);
	default:
		node->kind = NODE_CONST;
		node->value = value;
		return 0;
	}
}

/*
 * Returns the jq program that evaluates every jq placeholder at once: an
 * array with, for each, [first output], [] for no output, or {error: m}.
 * A newline ends each expression, so a trailing "# comment" in one does
 * not swallow the rest.
 */
static jv
jq_program_text(const struct template *t)
{
	jv text = jv_string("[");
	size_t i;

	for (i = 0; i < t->nexprs; i++) {
		if (t->exprs[i].path != NULL)
			continue;
		text = jv_string_append_str(
		    text, t->exprs[i].jq_index > 0 ? ",\n" : "\n");
		text = jv_string_append_str(text, "(try [first(");
		text = jv_string_append_str(text, t->exprs[i].text);
		text = jv_string_append_str(text, "\n)] catch {error: .})");
	}
	return jv_string_append_str(text, "\n]");
}

/* Names the jq placeholder that does not compile alone.  This runs only
 * when the joined program failed, so its compile cost is paid on a
 * failing start alone. */
static void
name_bad_jq(const struct template *t, char *why, size_t whylen)
{
	struct jqprog *p;
	char alone[512], *cut;
	size_t i;

	for (i = 0; i < t->nexprs; i++) {
		if (t->exprs[i].path != NULL)
			continue;
		p = jqprog_compile(t->exprs[i].text, alone, sizeof(alone));
		if (p == NULL) {
			/* jq counts lines of the wrapper, so they are cut. */
			cut = strstr(alone, " at <top-level>");
			if (cut != NULL)
				*cut = '\0';
			snprintf(
			    why, whylen, "{{%s}}: %s", t->exprs[i].text, alone);
			return;
		}
		jqprog_free(p);
	}
}

static int
compile_jq(struct template *t, char *why, size_t whylen)
{
	jv text;

	if (t->njq == 0)
		return 0;
	text = jq_program_text(t);
	t->jq = jqprog_compile(jv_string_value(text), why, whylen);
	jv_free(text);
	if (t->jq != NULL)
		return 0;
	name_bad_jq(t, why, whylen);
	return -1;
}

struct template *
template_compile(const char *text, size_t len, char *why, size_t whylen)
{
	struct template *t;
	jv value, msg;
	char *cut;

	value = json_parse(text, len);
	if (!jv_is_valid(value)) {
		msg = jv_invalid_get_msg(value);
		snprintf(why, whylen, "invalid JSON: %s",
		    jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg)
						       : "parse error");
		jv_free(msg);
		/* jq then quotes the whole template, which the user has. */
		cut = strstr(why, " (while parsing '");
		if (cut != NULL)
			*cut = '\0';
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		jv_free(value);
		goto nomem;
	}
	if (compile_node(t, &t->root, value, 0, why, whylen) == -1 ||
	    compile_jq(t, why, whylen) == -1) {
		template_free(t);
		return NULL;
	}
	t->values = calloc(t->nexprs + 1, sizeof(jv));
	if (t->values == NULL) {
		template_free(t);
		goto nomem;
	}
	return t;
nomem:
	snprintf(why, whylen, "out of memory");
	return NULL;
}

size_t
template_jq_count(const struct template *t)
{
	return t->njq;
}

/* Stores the value of jq element ITEM (consumed) for expression E, or
 * returns -1 with *why naming the placeholder whose evaluation failed. */
static int
store_jq_value(struct template *t, size_t e, jv item, char *why, size_t whylen)
{
	char error[512];
	jv msg = jv_null();

	if (jv_get_kind(item) == JV_KIND_ARRAY) {
		t->values[e] = jv_array_length(jv_copy(item)) > 0
				   ? jv_array_get(jv_copy(item), 0)
				   : jv_invalid();
		jv_free(item);
		return 0;
	}
	if (jv_get_kind(item) == JV_KIND_OBJECT)
		msg = jv_object_get(item, jv_string("error"));
	else
		jv_free(item);
	/* jq quotes the value it failed on, which may be a secret header. */
	if (jv_get_kind(msg) == JV_KIND_STRING)
		jqprog_error_text(jv_string_value(msg), error, sizeof(error));
	else if (jv_is_valid(msg))
		snprintf(error, sizeof(error),
		    "error raised with a non-string value (%s)",
		    jv_kind_name(jv_get_kind(msg)));
	else
		snprintf(error, sizeof(error), "evaluation failed");
	jv_free(msg);
	snprintf(why, whylen, "{{%s}}: jq: %s", t->exprs[e].text, error);
	return -1;
}

/* Runs the jq program once and stores the value of each jq placeholder. */
static int
resolve_jq(struct template *t, jv envelope, char *why, size_t whylen)
{
	jv out;
	size_t i;
	int rc;

	rc = jqprog_first(t->jq, envelope, &out, why, whylen);
	if (rc == 1)
		snprintf(why, whylen, "jq: the template gave no output");
	if (rc != 0)
		return -1;
	if (jv_get_kind(out) != JV_KIND_ARRAY ||
	    (size_t)jv_array_length(jv_copy(out)) != t->njq) {
		/* An expression that closes the wrapper's brackets adds
		 * elements. */
		snprintf(why, whylen,
		    "jq: a placeholder is not one "
		    "expression");
		jv_free(out);
		return -1;
	}
	for (i = 0; i < t->nexprs && rc == 0; i++)
		if (t->exprs[i].path == NULL)
			rc = store_jq_value(t, i,
			    jv_array_get(
				jv_copy(out), (int)t->exprs[i].jq_index),
			    why, whylen);
	jv_free(out);
	return rc;
}

static int
resolve(struct template *t, jv envelope, int strict, char *why, size_t whylen)
{
	size_t i;

	for (i = 0; i < t->nexprs; i++)
		t->values[i] = t->exprs[i].path != NULL
				   ? path_get(t->exprs[i].path, envelope)
				   : jv_invalid();
	if (t->jq != NULL && resolve_jq(t, envelope, why, whylen) == -1)
		return -1;
	for (i = 0; i < t->nexprs && strict; i++)
		if (!jv_is_valid(t->values[i])) {
			snprintf(
			    why, whylen, "{{%s}}: no value", t->exprs[i].text);
			return -1;
		}
	return 0;
}

static jv
render_node(const struct template *t, const struct node *node)
{
	jv out, text;
	size_t i;

	switch (node->kind) {
	case NODE_CONST:
		return jv_copy(node->value);
	case NODE_VALUE:
		out = t->values[node->expr];
		return jv_is_valid(out) ? jv_copy(out) : jv_null();
	case NODE_TEXT:
		out = jv_string("");
		for (i = 0; i < node->npieces; i++) {
			const struct piece *pc = &node->pieces[i];

			text = jv_is_valid(pc->literal)
				   ? jv_copy(pc->literal)
				   : json_text(jv_copy(t->values[pc->expr]));
			out = jv_string_concat(out, text);
		}
		return out;
	case NODE_ARRAY:
		out = jv_array();
		for (i = 0; i < node->nitems; i++)
			out = jv_array_append(
			    out, render_node(t, &node->items[i]));
		return out;
	default:
		out = jv_object();
		for (i = 0; i < node->nitems; i++)
			out = jv_object_set(out, render_node(t, &node->keys[i]),
			    render_node(t, &node->items[i]));
		return out;
	}
}

/* Renders T against ENVELOPE (borrowed).  Returns 0 with *result, or -1
 * with *why naming the placeholder. */
int
template_render(struct template *t, jv envelope, int strict, jv *result,
    char *why, size_t whylen)
{
	size_t i;
	int rc;

	rc = resolve(t, envelope, strict, why, whylen);
	if (rc == 0)
		*result = render_node(t, &t->root);
	for (i = 0; i < t->nexprs; i++) {
		jv_free(t->values[i]);
		t->values[i] = jv_invalid();
	}
	return rc;
}

/* Returns the paths that rendering T reads, or NULL for the whole
 * envelope, which a jq placeholder reads. */
struct reads *
template_reads(const struct template *t)
{
	struct reads *r = reads_new();
	size_t i;

	for (i = 0; i < t->nexprs && r != NULL; i++)
		if (t->exprs[i].path == NULL ||
		    reads_add(r, t->exprs[i].path) == -1) {
			reads_free(r);
			r = NULL;
		}
	return r;
}

void
template_free(struct template *t)
{
	size_t i;

	if (t == NULL)
		return;
	node_free(&t->root);
	for (i = 0; i < t->nexprs; i++) {
		free(t->exprs[i].text);
		path_free(t->exprs[i].path);
	}
	free(t->exprs);
	jqprog_free(t->jq);
	free(t->values);
	free(t);
}
