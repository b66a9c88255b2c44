/*
 * Unit tests of items.c: how an HTTPie-style item is split, unescaped
 * and stored as a header, a query parameter or a JSON field.
 */
#include <stdlib.h>
#include <unistd.h>

#include "whook.h"
#include "unit.h"

static char why[1024];

/* Returns the fields of one-item ITEM as compact JSON, or "(error)". */
static char *
fields_of(const char *item)
{
	static char text[1024];
	struct items it;
	jv dump;

	items_init(&it);
	if (items_add(&it, item, why, sizeof(why)) != 0) {
		items_free(&it);
		return "(error)";
	}
	dump = json_dump(jv_copy(it.fields));
	snprintf(text, sizeof(text), "%s", jv_string_value(dump));
	jv_free(dump);
	items_free(&it);
	return text;
}

static int
status_of(const char *item)
{
	struct items it;
	int status;

	items_init(&it);
	status = items_add(&it, item, why, sizeof(why));
	items_free(&it);
	return status;
}

static void
test_fields(void)
{
	CHECK_STR("string field", fields_of("a=b"), "{\"a\":\"b\"}");
	CHECK_STR("string keeps colon", fields_of("url=http://x"),
	    "{\"url\":\"http://x\"}");
	CHECK_STR("number field", fields_of("n:=1500"), "{\"n\":1500}");
	CHECK_STR("json object field", fields_of("o:={\"k\":[1,true]}"),
	    "{\"o\":{\"k\":[1,true]}}");
	CHECK_STR("big integer exact", fields_of("id:=12345678901234567890"),
	    "{\"id\":12345678901234567890}");
	CHECK_STR("negative big integer", fields_of("n:=-9223372036854775809"),
	    "{\"n\":-9223372036854775809}");
	CHECK_STR("empty string field", fields_of("a="), "{\"a\":\"\"}");
	CHECK_STR("empty key", fields_of("=v"), "{\"\":\"v\"}");
	CHECK_STR(
	    "escaped equals in key", fields_of("a\\=b=c"), "{\"a=b\":\"c\"}");
	CHECK_STR(
	    "escaped colon in key", fields_of("a\\:b=c"), "{\"a:b\":\"c\"}");
	CHECK_STR(
	    "escaped backslash", fields_of("a\\\\=c"), "{\"a\\\\\":\"c\"}");
	CHECK_STR(
	    "other backslash kept", fields_of("a\\n=c"), "{\"a\\\\n\":\"c\"}");
	CHECK_STR(
	    "escaped at is a string", fields_of("a=\\@f"), "{\"a\":\"@f\"}");
	CHECK_STR("escape in value", fields_of("a=x\\=y"), "{\"a\":\"x=y\"}");
}

static void
test_separators(void)
{
	struct items it;

	CHECK("header before equals",
	    fields_of("H:a=b") != NULL &&
		strcmp(fields_of("H:a=b"), "null") == 0);
	items_init(&it);
	CHECK("first separator wins",
	    items_add(&it, "H:a=b", why, sizeof(why)) == 0);
	CHECK_STR(
	    "header name", it.nheaders == 1 ? it.headers[0].name : NULL, "H");
	CHECK_STR("header value keeps equals",
	    it.nheaders == 1 ? it.headers[0].value : NULL, "a=b");
	items_free(&it);
	CHECK_STR("longest at one place", fields_of("a:=1"), "{\"a\":1}");
	CHECK_STR("equals before colon", fields_of("a=b:c"), "{\"a\":\"b:c\"}");
	CHECK("no separator is usage", status_of("plain") == EX_USAGE);
	CHECK("usage names the item", strstr(why, "\"plain\"") != NULL);
	CHECK("escaped only is usage", status_of("a\\=b") == EX_USAGE);
	CHECK("invalid json is usage", status_of("a:=nope") == EX_USAGE);
	CHECK("two json values is usage", status_of("a:=1 2") == EX_USAGE);
}

static void
test_headers(void)
{
	struct items it;
	const struct items_header *h;

	items_init(&it);
	CHECK(
	    "header item", items_add(&it, "X-A:  one ", why, sizeof(why)) == 0);
	CHECK(
	    "empty header", items_add(&it, "X-Empty:", why, sizeof(why)) == 0);
	CHECK("header line",
	    items_add_header_line(&it, "X-B: two", why, sizeof(why)) == 0);
	h = items_header(&it, "x-a");
	CHECK_STR("value trimmed", h != NULL ? h->value : NULL, "one");
	CHECK("literal not secret", h != NULL && !h->secret);
	h = items_header(&it, "X-EMPTY");
	CHECK_STR("empty value", h != NULL ? h->value : NULL, "");
	h = items_header(&it, "X-B");
	CHECK_STR("header line value", h != NULL ? h->value : NULL, "two");
	CHECK("absent header", items_header(&it, "X-C") == NULL);
	CHECK("set header keeps at",
	    items_set_header(&it, "X-D", "@x", 0, why, sizeof(why)) == 0);
	h = items_header(&it, "X-D");
	CHECK_STR("set header value", h != NULL ? h->value : NULL, "@x");
	items_free(&it);
	CHECK("free empties", it.nheaders == 0 && it.headers == NULL);

	CHECK("space in name", status_of("Bad Name:x") == EX_USAGE);
	CHECK("empty name", status_of(":x") == EX_USAGE);
	items_init(&it);
	CHECK("line break in value",
	    items_add_header_line(&it, "X-A: a\r\nX-B: b", why, sizeof(why)) ==
		EX_USAGE);
	CHECK("-H without colon",
	    items_add_header_line(&it, "X-A", why, sizeof(why)) == EX_USAGE);
	CHECK("rejected header not stored", it.nheaders == 0);
	items_free(&it);
}

static void
test_query(void)
{
	struct items it;

	items_init(&it);
	CHECK("query item", items_add(&it, "q==a b", why, sizeof(why)) == 0);
	CHECK("second query item",
	    items_add(&it, "x&y==1=2", why, sizeof(why)) == 0);
	CHECK(
	    "empty query value", items_add(&it, "e==", why, sizeof(why)) == 0);
	CHECK_STR("query encoded", it.query, "q=a%20b&x%26y=1%3D2&e=");
	CHECK("query is no field", jv_get_kind(it.fields) == JV_KIND_NULL);
	items_free(&it);
}

/* Writes TEXT to a new temporary file; returns its path. */
static char *
temp_file(const char *text, size_t len)
{
	static char paths[4][64];
	static int next;
	char *path = paths[next++ % 4];
	int fd;

	snprintf(path, 64, "/tmp/test-items.XXXXXX");
	fd = mkstemp(path);
	if (fd == -1 || write(fd, text, len) != (ssize_t)len)
		abort();
	close(fd);
	return path;
}

static void
test_files(void)
{
	char item[256], *data;
	char *json = temp_file("{\"n\": 9007199254740993}\n", 24);
	char *text = temp_file("two\nlines\n", 10);
	char *secret = temp_file("s3cret\r\n", 8);
	char *binary = temp_file("a\0b", 3);
	struct items it;
	size_t len;

	snprintf(item, sizeof(item), "j:=@%s", json);
	CHECK_STR("json from file", fields_of(item),
	    "{\"j\":{\"n\":9007199254740993}}");
	snprintf(item, sizeof(item), "t=@%s", text);
	CHECK_STR(
	    "string from file", fields_of(item), "{\"t\":\"two\\nlines\\n\"}");
	snprintf(item, sizeof(item), "t=@%s", binary);
	CHECK("binary string file", status_of(item) == EX_DATAERR);
	snprintf(item, sizeof(item), "j:=@%s", text);
	CHECK("invalid json file", status_of(item) == EX_DATAERR);
	CHECK("missing file", status_of("t=@/nonexistent/x") == EX_NOINPUT);

	items_init(&it);
	snprintf(item, sizeof(item), "X-Secret:@%s", secret);
	CHECK("header from file", items_add(&it, item, why, sizeof(why)) == 0);
	CHECK_STR("file value without line end",
	    it.nheaders == 1 ? it.headers[0].value : NULL, "s3cret");
	CHECK("file value is secret", it.nheaders == 1 && it.headers[0].secret);
	snprintf(item, sizeof(item), "X-Bin: @%s", binary);
	CHECK("NUL in header file",
	    items_add_header_line(&it, item, why, sizeof(why)) == EX_DATAERR);
	CHECK("missing header file", items_add(&it, "X-A:@/nonexistent/x", why,
					 sizeof(why)) == EX_NOINPUT);
	items_free(&it);

	CHECK("read file",
	    items_read_file(binary, &data, &len, why, sizeof(why)) == 0);
	CHECK("read file bytes", len == 3 && memcmp(data, "a\0b", 3) == 0);
	free(data);
	unlink(json);
	unlink(text);
	unlink(secret);
	unlink(binary);
}

int
main(void)
{
	test_fields();
	test_separators();
	test_headers();
	test_query();
	test_files();
	UNIT_EXIT();
}
