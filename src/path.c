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

/* Returns whether P names $trigger.raw or $trigger.raw_base64, a value
 * inside one, or a value that contains one. */
int
path_reads_raw(const struct path *p)
{
	static const char *const raw[][2] = {
	    {"$trigger", "raw"}, {"$trigger", "raw_base64"}};
	size_t i, k;

	if (p->env)
		return 0;
	for (k = 0; k < 2; k++) {
		for (i = 0; i < p->nsteps && i < 2; i++)
			if (strcmp(p->steps[i].key, raw[k][i]) != 0)
				break;
		if (i == p->nsteps || i == 2)
			return 1;
	}
	return 0;
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
