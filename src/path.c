/*
 * Plain paths into an envelope, resolved without jq: $trigger.body.id,
 * $last.items[0].sku, $trigger.body.keys.0, $trigger.headers["x-id"],
 * $env.NAME.  A name that is all digits indexes an array and names a key
 * of an object.  Anything else is not a plain path and goes to jq.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "whook.h"

/* A step of a path.  Its name is also kept as a jv string, so a lookup
 * copies it instead of making and checking a new one.  libjq's reference
 * counts are not atomic, so a path is used by one thread only. */
struct step {
	char *key; /* the name, or its digits for a bracketed number */
	jv name;
	long index; /* for a name of digits or a bracketed number */
	int numeric;
};

struct path {
	int env; /* $env.NAME: the one step is the variable's name */
	size_t nsteps;
	struct step steps[];
};

static int
is_name_char(int c)
{
	return isalnum(c) || c == '_' || c == '-' || c == '$';
}

static int
add_step(struct path **p, size_t *cap, const char *s, size_t n, int quoted)
{
	struct step *st;
	struct path *grown;
	size_t i;

	if (n == 0 && !quoted)
		return -1;
	if ((*p)->nsteps == *cap) {
		*cap *= 2;
		grown = realloc(*p, sizeof(**p) + *cap * sizeof(struct step));
		if (grown == NULL)
			return -1;
		*p = grown;
	}
	st = &(*p)->steps[(*p)->nsteps];
	st->key = strndup(s, n);
	if (st->key == NULL)
		return -1;
	st->name = jv_string_sized(st->key, (int)n);
	st->numeric = !quoted && n > 0;
	for (i = 0; i < n && st->numeric; i++)
		if (!isdigit((unsigned char)s[i]) &&
		    !(i == 0 && s[i] == '-' && n > 1))
			st->numeric = 0;
	st->index = st->numeric ? strtol(s, NULL, 10) : 0;
	(*p)->nsteps++;
	return 0;
}

/* Parses a bracket at *s ("[0]", "[-1]", "[\"key\"]"); returns 0 and moves
 * *s past it, or -1. */
static int
parse_bracket(struct path **p, size_t *cap, const char **s)
{
	const char *q = *s + 1, *start;
	char quote;

	if (*q == '"' || *q == '\'') {
		quote = *q++;
		start = q;
		while (*q != '\0' && *q != quote && *q != '\\')
			q++;
		if (*q != quote || q[1] != ']')
			return -1;
		if (add_step(p, cap, start, q - start, 1) == -1)
			return -1;
		*s = q + 2;
		return 0;
	}
	start = q;
	if (*q == '-')
		q++;
	while (isdigit((unsigned char)*q))
		q++;
	if (*q != ']' || q == start || (q == start + 1 && *start == '-'))
		return -1;
	if (add_step(p, cap, start, q - start, 0) == -1)
		return -1;
	*s = q + 1;
	return 0;
}

/* Compiles EXPR (surrounding blanks allowed); returns NULL when it is not
 * a plain path. */
struct path *
path_compile(const char *expr)
{
	struct path *p;
	size_t cap = 4, n;
	const char *s = expr, *start;

	while (isspace((unsigned char)*s))
		s++;
	if (*s == '\0' || *s == '.' || *s == '[')
		return NULL;
	p = calloc(1, sizeof(*p) + cap * sizeof(struct step));
	if (p == NULL)
		return NULL;
	while (*s != '\0' && !isspace((unsigned char)*s)) {
		if (*s == '[') {
			if (parse_bracket(&p, &cap, &s) == -1)
				goto fail;
			continue;
		}
		if (p->nsteps > 0 && *s++ != '.')
			goto fail;
		start = s;
		while (is_name_char((unsigned char)*s))
			s++;
		n = s - start;
		if (n == 0 || (p->nsteps > 0 && start[0] == '$') ||
		    add_step(&p, &cap, start, n, 0) == -1)
			goto fail;
	}
	while (isspace((unsigned char)*s))
		s++;
	if (*s != '\0' || p->nsteps == 0)
		goto fail;
	if (strcmp(p->steps[0].key, "$env") == 0) {
		if (p->nsteps != 2 || p->steps[1].key == NULL)
			goto fail;
		p->env = 1;
	}
	return p;
fail:
	path_free(p);
	return NULL;
}

static jv
step_get(jv value, const struct step *st)
{
	long i = st->index;
	int len;

	switch (jv_get_kind(value)) {
	case JV_KIND_OBJECT:
		return jv_object_get(value, jv_copy(st->name));
	case JV_KIND_ARRAY:
		if (!st->numeric)
			break;
		len = jv_array_length(jv_copy(value));
		if (i < 0)
			i += len;
		if (i < 0 || i >= len)
			break;
		return jv_array_get(value, (int)i);
	default:
		break;
	}
	jv_free(value);
	return jv_invalid();
}

/* Returns the value at P in ENVELOPE, or jv_invalid() when it is missing
 * (a JSON null that is present is returned as null). */
jv
path_get(const struct path *p, jv envelope)
{
	const char *value;
	jv v = jv_copy(envelope);
	size_t i;

	if (p->env) {
		jv_free(v);
		value = getenv(p->steps[1].key);
		return value == NULL ? jv_invalid() : jv_string(value);
	}
	for (i = 0; i < p->nsteps && jv_is_valid(v); i++)
		v = step_get(v, &p->steps[i]);
	return v;
}

/* Returns whether P names the value at the place AT, N steps, a value
 * inside it, or a value that contains it. */
int
path_reaches(const struct path *p, const struct place *at, size_t n)
{
	const struct step *st;
	const char *name;
	size_t i;

	if (p->env)
		return 0;
	for (i = 0; i < p->nsteps && i < n; i++) {
		st = &p->steps[i];
		if (at[i].key == NULL) {
			/* step_get takes an index from the end too. */
			if (!st->numeric ||
			    (st->index >= 0 && st->index != at[i].index))
				return 0;
		} else {
			/* The name, as step_get looks it up: libjq made any
			 * invalid UTF-8 of the key U+FFFD. */
			name = jv_string_value(st->name);
			if (strlen(name) != at[i].len ||
			    memcmp(name, at[i].key, at[i].len) != 0)
				return 0;
		}
	}
	return 1;
}

/* Returns a copy of P, or NULL without memory. */
static struct path *
path_copy(const struct path *p)
{
	struct path *c =
	    calloc(1, sizeof(*c) + p->nsteps * sizeof(struct step));
	size_t i;

	if (c == NULL)
		return NULL;
	c->env = p->env;
	for (i = 0; i < p->nsteps; i++) {
		c->steps[i] = p->steps[i];
		c->steps[i].key = strdup(p->steps[i].key);
		if (c->steps[i].key == NULL) {
			path_free(c);
			return NULL;
		}
		c->steps[i].name = jv_string(c->steps[i].key);
		c->nsteps++;
	}
	return c;
}

void
path_free(struct path *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->nsteps; i++) {
		free(p->steps[i].key);
		jv_free(p->steps[i].name);
	}
	free(p);
}

struct reads {
	struct path **paths;
	size_t n, cap;
};

struct reads *
reads_new(void)
{
	return calloc(1, sizeof(struct reads));
}

/* Adds a copy of P to R; returns 0, or -1 without memory. */
int
reads_add(struct reads *r, const struct path *p)
{
	struct path **grown, *c;
	size_t cap;

	if (r->n == r->cap) {
		cap = r->cap ? 2 * r->cap : 4;
		grown = realloc(r->paths, cap * sizeof(*grown));
		if (grown == NULL)
			return -1;
		r->paths = grown;
		r->cap = cap;
	}
	c = path_copy(p);
	if (c == NULL)
		return -1;
	r->paths[r->n++] = c;
	return 0;
}

/* Adds the plain path EXPR to R; returns 0, or -1. */
int
reads_add_text(struct reads *r, const char *expr)
{
	struct path *p = path_compile(expr);
	int rc = p != NULL ? reads_add(r, p) : -1;

	path_free(p);
	return rc;
}

/* Returns A with the paths of B added, or NULL, for all of the envelope,
 * when either is NULL or memory runs out.  Consumes A. */
struct reads *
reads_merge(struct reads *a, const struct reads *b)
{
	size_t i;

	if (a == NULL || b == NULL) {
		reads_free(a);
		return NULL;
	}
	for (i = 0; i < b->n; i++)
		if (reads_add(a, b->paths[i]) == -1) {
			reads_free(a);
			return NULL;
		}
	return a;
}

/* Returns whether a stage with the reads R may read the value at AT. */
int
reads_reach(const struct reads *r, const struct place *at, size_t n)
{
	size_t i;

	if (r == NULL)
		return 1;
	for (i = 0; i < r->n; i++)
		if (path_reaches(r->paths[i], at, n))
			return 1;
	return 0;
}

int
reads_raw(const struct reads *r)
{
	static const struct place raw[] = {{"$trigger", 8, 0}, {"raw", 3, 0}};
	static const struct place raw64[] = {
	    {"$trigger", 8, 0}, {"raw_base64", 10, 0}};

	return reads_reach(r, raw, 2) || reads_reach(r, raw64, 2);
}

void
reads_free(struct reads *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->n; i++)
		path_free(r->paths[i]);
	free(r->paths);
	free(r);
}
