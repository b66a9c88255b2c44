/*
 * jq programs over an envelope.  The program runs with . bound to
 * $trigger, the request, as adnanh/webhook users expect, and with
 * $trigger, $last, $env and $envelope bound as variables.  jq 1.6 spends
 * 20-30 ms compiling its builtins, so a program is compiled once per
 * process and only when an option names one.
 */
#include <stdlib.h>
#include <string.h>

#include <jq.h>

#include "whook.h"

struct jqprog {
	jq_state *jq;
	char message[512];
};

static void
jqprog_on_error(void *data, jv msg)
{
	struct jqprog *p = data;

	/* jq 1.6 ends with a "jq: N compile errors" summary: the first
	 * message is the one that names the error. */
	if (p->message[0] != '\0') {
		jv_free(msg);
		return;
	}
	if (jv_get_kind(msg) == JV_KIND_STRING)
		snprintf(
		    p->message, sizeof(p->message), "%s", jv_string_value(msg));
	else
		snprintf(p->message, sizeof(p->message), "invalid program");
	/* The lines after the first repeat the program text. */
	p->message[strcspn(p->message, "\n")] = '\0';
	jv_free(msg);
}

/* Ends the input of jq's input and inputs builtins: a whook program has
 * no further inputs to give them, and jq 1.6 calls a null callback when
 * none is set. */
static jv
jqprog_no_input(jq_state *jq, void *data)
{
	(void)jq;
	(void)data;
	return jv_invalid();
}

/*
 * Copies a jq runtime error message into WHY with the inside of each
 * quoted part replaced by "...".  jq 1.6 quotes the value it failed on,
 * as in Cannot parse 'VALUE' as JSON, and that value may be a header
 * such as a shared secret.
 */
void
jqprog_error_text(const char *msg, char *why, size_t whylen)
{
	size_t n = 0;
	char quote;

	while (*msg != '\0' && n + 6 < whylen) {
		if (*msg != '\'' && *msg != '"') {
			why[n++] = *msg++;
			continue;
		}
		quote = *msg++;
		why[n++] = quote;
		memcpy(why + n, "...", 3);
		n += 3;
		while (*msg != '\0' && *msg != quote)
			msg += *msg == '\\' && msg[1] != '\0' ? 2 : 1;
		if (*msg == quote) {
			why[n++] = quote;
			msg++;
		}
	}
	why[n] = '\0';
}

struct jqprog *
jqprog_compile(const char *program, char *why, size_t whylen)
{
	static const char prologue[] =
	    ". as $envelope | .[\"$trigger\"] as "
	    "$trigger | .[\"$last\"] as $last | $ENV as $env | $trigger | (";
	struct jqprog *p;
	char *text;
	size_t n;

	p = calloc(1, sizeof(*p));
	n = sizeof(prologue) + strlen(program) + 3;
	text = malloc(n);
	if (p == NULL || text == NULL || (p->jq = jq_init()) == NULL) {
		snprintf(why, whylen, "out of memory");
		free(text);
		free(p);
		return NULL;
	}
	/* The newline ends a trailing "# comment" in the program. */
	snprintf(text, n, "%s%s\n)", prologue, program);
	jq_set_error_cb(p->jq, jqprog_on_error, p);
	jq_set_input_cb(p->jq, jqprog_no_input, NULL);
	if (!jq_compile(p->jq, text)) {
		snprintf(why, whylen, "%s",
		    p->message[0] != '\0' ? p->message : "compilation failed");
		free(text);
		jqprog_free(p);
		return NULL;
	}
	free(text);
	return p;
}

/* Runs P over ENVELOPE (borrowed) and stores its first output in *result.
 * Returns 0, 1 when the program gave no output, or -1 with *why set. */
int
jqprog_first(
    struct jqprog *p, jv envelope, jv *result, char *why, size_t whylen)
{
	jv value, msg;

	jq_start(p->jq, jv_copy(envelope), 0);
	value = jq_next(p->jq);
	if (jv_is_valid(value)) {
		*result = value;
		return 0;
	}
	if (!jv_invalid_has_msg(jv_copy(value))) {
		jv_free(value);
		return 1;
	}
	msg = jv_invalid_get_msg(value);
	if (jv_get_kind(msg) == JV_KIND_STRING) {
		jqprog_error_text(jv_string_value(msg), why, whylen);
	} else {
		snprintf(why, whylen,
		    "error raised with a non-string value (%s)",
		    jv_kind_name(jv_get_kind(msg)));
	}
	jv_free(msg);
	return -1;
}

void
jqprog_free(struct jqprog *p)
{
	if (p == NULL)
		return;
	jq_teardown(&p->jq);
	free(p);
}
