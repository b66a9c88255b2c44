/*
 * whook-listen's helpers that need no socket: content-type parsing, ULID
 * ids and times, and how a request path resolves to a flow.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "whook.h"

static void
test_media_type(void)
{
	char type[64];

	CHECK("media type plain",
	    trigger_media_type("application/json", type, sizeof(type)) == 0);
	CHECK_STR("media type value", type, "application/json");
	trigger_media_type(
	    "  Application/JSON; Charset=\"UTF-8\"", type, sizeof(type));
	CHECK_STR("media type lowercased", type, "application/json");
	trigger_media_type("text/plain;charset=utf-8", type, sizeof(type));
	CHECK_STR("media type before ;", type, "text/plain");
	CHECK("media type empty",
	    trigger_media_type("; a=b", type, sizeof(type)) == -1);
	CHECK("media type too long",
	    trigger_media_type("application/json-with-a-long-name", type, 8) ==
		-1);
}

static void
test_param(void)
{
	char v[64];

	CHECK("param quoted found",
	    trigger_param("multipart/form-data; boundary=\"a b;c\"", "boundary",
		v, sizeof(v)) == 1);
	CHECK_STR("param quoted value", v, "a b;c");
	CHECK(
	    "param case-insensitive", trigger_param("text/plain; Charset=UTF-8",
					  "charset", v, sizeof(v)) == 1);
	CHECK_STR("param token value", v, "UTF-8");
	trigger_param("a/b; x=\"q\\\"d\"; y=2", "y", v, sizeof(v));
	CHECK_STR("param after escaped quote", v, "2");
	trigger_param("a/b; x=\"q\\\"d\"", "x", v, sizeof(v));
	CHECK_STR("param escape removed", v, "q\"d");
	CHECK(
	    "param absent", trigger_param("a/b; x=1", "y", v, sizeof(v)) == 0);
	CHECK("param without parameters",
	    trigger_param("a/b", "x", v, sizeof(v)) == 0);
	CHECK("param too long", trigger_param("a/b; x=123456", "x", v, 4) == 0);
}

static void
test_ulid(void)
{
	static const unsigned char zero[10],
	    ones[10] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	char id[TRIGGER_ID_LEN + 1], other[TRIGGER_ID_LEN + 1];

	/* The time part of the example in the ULID specification. */
	trigger_ulid(id, 1469918176385ULL, zero);
	CHECK("ulid length", strlen(id) == TRIGGER_ID_LEN);
	CHECK("ulid time part", strncmp(id, "01ARYZ6S41", 10) == 0);
	CHECK_STR("ulid zero random", id + 10, "0000000000000000");
	trigger_ulid(id, 0, ones);
	CHECK_STR("ulid all ones random", id, "0000000000ZZZZZZZZZZZZZZZZ");
	trigger_ulid(id, 0xffffffffffffULL, zero);
	CHECK("ulid max time", strncmp(id, "7ZZZZZZZZZ", 10) == 0);
	trigger_ulid(id, 1000, zero);
	trigger_ulid(other, 1001, zero);
	CHECK("ulid time-ordered", strcmp(id, other) < 0);
	CHECK("new id made", trigger_new_id(id) == 0);
	CHECK("new id made twice", trigger_new_id(other) == 0);
	CHECK("new ids differ", strcmp(id, other) != 0);
	CHECK("new id crockford",
	    strspn(id, "0123456789ABCDEFGHJKMNPQRSTVWXYZ") == TRIGGER_ID_LEN);
}

static void
test_id_valid(void)
{
	char id[TRIGGER_ID_LEN + 1];

	CHECK("new id made for check", trigger_new_id(id) == 0);
	CHECK("id valid new", trigger_id_valid(id));
	CHECK("id valid max", trigger_id_valid("7ZZZZZZZZZZZZZZZZZZZZZZZZZ"));
	CHECK("id invalid first 8",
	    !trigger_id_valid("8ZZZZZZZZZZZZZZZZZZZZZZZZZ"));
	CHECK("id invalid short", !trigger_id_valid("01ARYZ6S41"));
	CHECK("id invalid long",
	    !trigger_id_valid("01ARYZ6S410000000000000000A"));
	CHECK("id invalid lowercase",
	    !trigger_id_valid("01aryz6s410000000000000000"));
	CHECK("id invalid letter I",
	    !trigger_id_valid("01ARYZ6S41000000000000000I"));
	CHECK("id invalid empty", !trigger_id_valid(""));
}

static void
test_time(void)
{
	char t[40];

	trigger_time(t, sizeof(t), 1764828736LL, 123456789L);
	CHECK_STR("time rfc 3339 ms", t, "2025-12-04T06:12:16.123Z");
	trigger_time(t, sizeof(t), 0, 0);
	CHECK_STR("time epoch", t, "1970-01-01T00:00:00.000Z");
}

static void
make_flow(const char *path, mode_t mode)
{
	FILE *f = fopen(path, "w");

	if (f != NULL) {
		fputs("#!/bin/sh\ncat\n", f);
		fclose(f);
	}
	chmod(path, mode);
}

static void
test_resolve(void)
{
	char dir[] = "/tmp/whook-test-http.XXXXXX", p[512], out[512];

	CHECK("resolve temp dir", mkdtemp(dir) != NULL);
	snprintf(p, sizeof(p), "%s/hooks", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/hooks/github", dir);
	make_flow(p, 0755);
	snprintf(p, sizeof(p), "%s/deploy prod", dir);
	make_flow(p, 0755);
	snprintf(p, sizeof(p), "%s/plain", dir);
	make_flow(p, 0644);
	snprintf(p, sizeof(p), "%s/.hidden", dir);
	make_flow(p, 0755);

	CHECK("resolve nested",
	    flow_resolve(dir, "/hooks/github", out, sizeof(out)) == 0);
	snprintf(p, sizeof(p), "%s/hooks/github", dir);
	CHECK_STR("resolve nested path", out, p);
	CHECK("resolve decoded component",
	    flow_resolve(dir, "/deploy%20prod", out, sizeof(out)) == 0);
	CHECK("resolve encoded slash",
	    flow_resolve(dir, "/hooks%2Fgithub", out, sizeof(out)) == -1);
	CHECK("resolve encoded nul",
	    flow_resolve(dir, "/hooks/git%00hub", out, sizeof(out)) == -1);
	CHECK("resolve dot dot", flow_resolve(dir, "/hooks/../hooks/github",
				     out, sizeof(out)) == -1);
	CHECK("resolve encoded dot dot",
	    flow_resolve(dir, "/hooks/%2e%2e/hooks/github", out, sizeof(out)) ==
		-1);
	CHECK("resolve dot",
	    flow_resolve(dir, "/./hooks/github", out, sizeof(out)) == -1);
	CHECK("resolve hidden",
	    flow_resolve(dir, "/.hidden", out, sizeof(out)) == -1);
	CHECK("resolve empty component",
	    flow_resolve(dir, "/hooks//github", out, sizeof(out)) == -1);
	CHECK("resolve trailing slash",
	    flow_resolve(dir, "/hooks/github/", out, sizeof(out)) == -1);
	CHECK("resolve root", flow_resolve(dir, "/", out, sizeof(out)) == -1);
	CHECK("resolve folder",
	    flow_resolve(dir, "/hooks", out, sizeof(out)) == -1);
	CHECK("resolve not executable",
	    flow_resolve(dir, "/plain", out, sizeof(out)) == -1);
	CHECK("resolve missing",
	    flow_resolve(dir, "/nothing", out, sizeof(out)) == -1);
	CHECK("resolve relative",
	    flow_resolve(dir, "hooks/github", out, sizeof(out)) == -1);
	CHECK("resolve too long",
	    flow_resolve(dir, "/hooks/github", out, strlen(dir) + 4) == -1);

	snprintf(p, sizeof(p), "rm -rf '%s'", dir);
	CHECK("resolve cleanup", system(p) == 0);
}

static int
status_of(const char *output, int exit, int signaled)
{
	struct flow_result r = {.exit = exit, .signaled = signaled};
	char *body;
	size_t len;
	const char *ctype;
	int status;

	r.output = (char *)output;
	r.len = strlen(output);
	status = flow_status(&r, "01ID", RESPOND_STATUS, &body, &len, &ctype);
	free(body);
	return status;
}

static void
test_status(void)
{
	struct flow_result r = {0};
	char out[] = "not json\n"
		     "{\"$trigger\":{\"id\":\"other\"},\"$last\":1}\n"
		     "{\"$trigger\":{\"id\":\"01ID\"},\"$last\":{\"n\":2}}\n";
	char *body = NULL;
	size_t len = 0;
	const char *ctype = NULL;

	CHECK("status exit 0", status_of("", 0, 0) == 200);
	CHECK("status exit 1", status_of("", 1, 0) == 403);
	CHECK("status exit 64", status_of("", 64, 0) == 500);
	CHECK("status exit 65", status_of("", 65, 0) == 422);
	CHECK("status exit 69", status_of("", 69, 0) == 503);
	CHECK("status exit 75", status_of("", 75, 0) == 503);
	CHECK("status exit 3", status_of("", 3, 0) == 500);
	CHECK("status signal", status_of("", 137, 1) == 500);
	CHECK("status from error",
	    status_of("{\"$trigger\":{\"id\":"
		      "\"01ID\"},\"$error\":{\"status\":401}}\n",
		1, 0) == 401);
	CHECK("status error of other id",
	    status_of("{\"$trigger\":{\"id\":"
		      "\"x\"},\"$error\":{\"status\":401}}\n",
		0, 0) == 200);
	CHECK("status error out of range",
	    status_of("{\"$trigger\":{\"id\":"
		      "\"01ID\"},\"$error\":{\"status\":7}}",
		65, 0) == 422);

	r.output = out;
	r.len = strlen(out);
	CHECK("respond last status",
	    flow_status(&r, "01ID", RESPOND_LAST, &body, &len, &ctype) == 200);
	CHECK_STR("respond last body", body, "{\"n\":2}");
	CHECK_STR("respond last type", ctype, "application/json");
	free(body);
	flow_status(&r, "01ID", RESPOND_OUTPUT, &body, &len, &ctype);
	CHECK_STR("respond output line", body,
	    "{\"$trigger\":{\"id\":\"01ID\"},\"$last\":{\"n\":2}}");
	free(body);
	flow_status(&r, "nomatch", RESPOND_OUTPUT, &body, &len, &ctype);
	CHECK_STR("respond output first line", body, "not json");
	CHECK_STR("respond output text type", ctype, "text/plain");
	free(body);
}

int
main(void)
{
	test_media_type();
	test_param();
	test_ulid();
	test_id_valid();
	test_time();
	test_resolve();
	test_status();
	UNIT_EXIT();
}
