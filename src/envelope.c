/*
 * The envelope's fixed keys: $trigger.id, which every log line names, and
 * $error, which a step sets when it rejects or fails an envelope.
 */
#include <string.h>

#include "whook.h"

void
envelope_id(jv envelope, char *buf, size_t len)
{
	jv trigger, id = jv_invalid();

	snprintf(buf, len, "-");
	if (jv_get_kind(envelope) != JV_KIND_OBJECT)
		return;
	trigger = jv_object_get(jv_copy(envelope), jv_string("$trigger"));
	if (jv_get_kind(trigger) == JV_KIND_OBJECT)
		id = jv_object_get(jv_copy(trigger), jv_string("id"));
	if (jv_get_kind(id) == JV_KIND_STRING)
		snprintf(buf, len, "%s", jv_string_value(id));
	jv_free(id);
	jv_free(trigger);
}

/* Maps an exit status onto the HTTP status of the table in whook(7). */
int
envelope_status_of_exit(int code)
{
	switch (code) {
	case 0:
		return 200;
	case 1:
		return 403;
	case EX_DATAERR:
		return 422;
	case EX_UNAVAILABLE:
	case EX_TEMPFAIL:
		return 503;
	default:
		return 500;
	}
}

jv
envelope_set_error(
    jv envelope, int status, const char *step, const char *reason)
{
	jv error = jv_object();

	error = jv_object_set(error, jv_string("status"), jv_number(status));
	error = jv_object_set(error, jv_string("step"), jv_string(step));
	error = jv_object_set(error, jv_string("reason"), jv_string(reason));
	return jv_object_set(envelope, jv_string("$error"), error);
}

int
envelope_has_error(jv envelope)
{
	jv error;
	int has;

	if (jv_get_kind(envelope) != JV_KIND_OBJECT)
		return 0;
	error = jv_object_get(jv_copy(envelope), jv_string("$error"));
	has = jv_is_valid(error) && jv_get_kind(error) != JV_KIND_NULL;
	jv_free(error);
	return has;
}
