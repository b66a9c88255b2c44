/*
 * Tests of signature.c: fixed vectors for every scheme, the failure
 * reasons, signing, random header bytes, and the signature cases of the
 * request corpus ($WHOOK_CORPUS, by default the corpus folder beside the
 * repository) when it exists.  Each expected digest was computed with
 * python3's hmac module, the GitHub one also with `openssl dgst -sha256
 * -hmac`.  The GitHub and Standard Webhooks vectors are the ones those
 * senders publish.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "whook.h"
#include "unit.h"

#define REASON_MAX 512

/* Builds a trigger with raw BODY and the header NAME, VALUE pairs that
 * follow, up to a NULL name. */
static jv
trigger_new(const char *body, ...)
{
	jv headers = jv_object(), trigger = jv_object();
	const char *name, *value;
	va_list ap;

	va_start(ap, body);
	while ((name = va_arg(ap, const char *)) != NULL) {
		value = va_arg(ap, const char *);
		headers =
		    jv_object_set(headers, jv_string(name), jv_string(value));
	}
	va_end(ap);
	trigger = jv_object_set(trigger, jv_string("headers"), headers);
	return jv_object_set(trigger, jv_string("raw"), jv_string(body));
}

static struct sigscheme *
scheme(const char *spec)
{
	char why[256];
	struct sigscheme *s = signature_scheme(spec, why, sizeof(why));

	if (s == NULL)
		printf("# %s: %s\n", spec, why);
	return s;
}

/* Verifies TRIGGER (consumed) under SPEC with one secret.  Returns the
 * result and leaves the reason in REASON. */
static int
verify1(const char *spec, jv trigger, const char *secret, long long now,
    long long tolerance, char *reason)
{
	struct sigscheme *s = scheme(spec);
	struct secret sec = {(char *)secret, strlen(secret)};
	int rc;

	if (s == NULL) {
		jv_free(trigger);
		snprintf(reason, REASON_MAX, "no scheme");
		return -1;
	}
	rc = signature_verify(
	    s, trigger, &sec, 1, now, tolerance, reason, REASON_MAX);
	jv_free(trigger);
	signature_scheme_free(s);
	return rc;
}

static int
starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

#define GH_SECRET "It's a Secret to Everybody"
#define GH_SIG                                                                 \
	"757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

static void
test_github(void)
{
	char r[REASON_MAX];
	int rc;

	rc = verify1("github",
	    trigger_new(
		"Hello, World!", "x-hub-signature-256", "sha256=" GH_SIG, NULL),
	    GH_SECRET, 0, 0, r);
	CHECK("github docs vector passes", rc == 0);
	CHECK_STR("github pass leaves empty reason", r, "");

	rc = verify1("github",
	    trigger_new("Hello, World!", "x-hub-signature-256",
		"sha256=757107EA0EB2509FC211221CCE984B8A"
		"37570B6D7586C22C46F4379C8B043E17",
		NULL),
	    GH_SECRET, 0, 0, r);
	CHECK("github uppercase hex passes", rc == 0);

	rc = verify1("github",
	    trigger_new(
		"Hello, World?", "x-hub-signature-256", "sha256=" GH_SIG, NULL),
	    GH_SECRET, 0, 0, r);
	CHECK("github tampered body fails", rc == 1);
	CHECK_STR("github tampered body is mismatch", r, "mismatch");

	rc = verify1("github",
	    trigger_new("Hello, World!", "x-hub-signature-256",
		"sha256=757107ea0eb2509fc211221cce984b8a"
		"37570b6d7586c22c46f4379c8b043e18",
		NULL),
	    GH_SECRET, 0, 0, r);
	CHECK_STR("github last digit changed mismatch", r, "mismatch");

	rc = verify1("github",
	    trigger_new(
		"Hello, World!", "x-hub-signature-256", "sha256=" GH_SIG, NULL),
	    "wrong", 0, 0, r);
	CHECK_STR("github wrong secret is mismatch", r, "mismatch");

	rc = verify1("github",
	    trigger_new("Hello, World!", "x-hub-signature",
		"sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59", NULL),
	    GH_SECRET, 0, 0, r);
	CHECK("github sha1 header alone fails", rc == 1);
	CHECK_STR("github sha1 alone is missing header", r,
	    "missing header X-Hub-Signature-256");

	rc = verify1("github",
	    trigger_new("Hello, World!", "x-hub-signature-256", GH_SIG, NULL),
	    GH_SECRET, 0, 0, r);
	CHECK("github without sha256= is bad format", starts(r, "bad format"));

	rc = verify1("github",
	    trigger_new("Hello, World!", "x-hub-signature-256",
		"sha256=757107ea", NULL),
	    GH_SECRET, 0, 0, r);
	CHECK("github short digest is bad format", starts(r, "bad format"));

	rc = verify1("github",
	    trigger_new("Hello, World!", "x-hub-signature-256",
		"sha256=zz7107ea0eb2509fc211221cce984b8a"
		"37570b6d7586c22c46f4379c8b043e17",
		NULL),
	    GH_SECRET, 0, 0, r);
	CHECK("github bad hex is bad format", starts(r, "bad format"));
	CHECK("github reasons hold no digest", strstr(r, "757107") == NULL);
}

static void
test_github_secrets(void)
{
	struct secret secrets[2] = {
	    {"old secret", 10}, {GH_SECRET, sizeof(GH_SECRET) - 1}};
	struct sigscheme *s = scheme("github");
	char r[REASON_MAX];
	jv t;

	t = trigger_new(
	    "Hello, World!", "x-hub-signature-256", "sha256=" GH_SIG, NULL);
	CHECK("github second of two secrets passes",
	    signature_verify(s, t, secrets, 2, 0, 0, r, sizeof(r)) == 0);
	CHECK("github first of two secrets alone fails",
	    signature_verify(s, t, secrets, 1, 0, 0, r, sizeof(r)) == 1);
	CHECK("github no secret fails",
	    signature_verify(s, t, secrets, 0, 0, 0, r, sizeof(r)) == 1);
	jv_free(t);
	signature_scheme_free(s);
}

#define ST_SECRET "whsec_unit_c2VjcmV0"
#define ST_BODY "{\"id\":\"evt_unit_1\",\"amount\":2000}"
#define ST_SIG                                                                 \
	"aa059fa213614852591c0b6447fb307b8ba3c73599425aa8eb593313a25f0bb2"
#define ST_SIG2                                                                \
	"81d685e22b9414fc9d54b8fde4615c72b22cda752c001bd153af20a353d445a2"

static int
stripe(const char *header, const char *body, long long now, long long tolerance,
    char *r)
{
	return verify1("stripe",
	    trigger_new(body, "stripe-signature", header, NULL), ST_SECRET, now,
	    tolerance, r);
}

static void
test_stripe(void)
{
	char r[REASON_MAX];

	CHECK("stripe vector passes", stripe("t=1700000000,v1=" ST_SIG, ST_BODY,
					  1700000100, 300, r) == 0);
	CHECK("stripe v0 and spaces ignored",
	    stripe(" t=1700000000 , v0=" ST_SIG2 ", v1=" ST_SIG, ST_BODY,
		1700000100, 300, r) == 0);
	CHECK("stripe second v1 passes",
	    stripe("t=1700000000,v1=" ST_SIG2 ",v1=" ST_SIG, ST_BODY,
		1700000100, 300, r) == 0);
	CHECK("stripe first v1 passes",
	    stripe("t=1700000000,v1=" ST_SIG ",v1=" ST_SIG2, ST_BODY,
		1700000100, 300, r) == 0);
	CHECK("stripe key is not decoded",
	    stripe("t=1700000000,v1=" ST_SIG2, ST_BODY, 1700000100, 300, r) ==
		1);
	CHECK_STR("stripe other key is mismatch", r, "mismatch");

	CHECK("stripe 301 s old fails", stripe("t=1700000000,v1=" ST_SIG,
					    ST_BODY, 1700000301, 300, r) == 1);
	CHECK("stripe old is stale", starts(r, "stale timestamp"));
	CHECK("stripe 300 s old passes", stripe("t=1700000000,v1=" ST_SIG,
					     ST_BODY, 1700000300, 300, r) == 0);
	CHECK("stripe future fails", stripe("t=1700000000,v1=" ST_SIG, ST_BODY,
					 1699999000, 300, r) == 1);
	CHECK("stripe future is stale", starts(r, "stale timestamp"));
	CHECK("stripe tolerance 0 skips clock",
	    stripe("t=1700000000,v1=" ST_SIG, ST_BODY, 1800000000, 0, r) == 0);
	CHECK("stripe tampered body fails",
	    stripe("t=1700000000,v1=" ST_SIG,
		"{\"id\":\"evt_unit_1\",\"amount\":2001}", 1700000100, 300,
		r) == 1);
	CHECK_STR("stripe tampered is mismatch", r, "mismatch");
	CHECK("stripe changed t fails", stripe("t=1700000001,v1=" ST_SIG,
					    ST_BODY, 1700000100, 300, r) == 1);
	CHECK_STR("stripe changed t is mismatch", r, "mismatch");
}

static void
test_stripe_format(void)
{
	char r[REASON_MAX];

	stripe("v1=" ST_SIG, ST_BODY, 1700000100, 300, r);
	CHECK("stripe without t is bad format", starts(r, "bad format"));
	stripe("t=1700000000,v0=" ST_SIG, ST_BODY, 1700000100, 300, r);
	CHECK("stripe only v0 is bad format", starts(r, "bad format"));
	stripe("t=17000x0000,v1=" ST_SIG, ST_BODY, 1700000100, 300, r);
	CHECK("stripe letter in t is bad format", starts(r, "bad format"));
	stripe("t=,v1=" ST_SIG, ST_BODY, 1700000100, 300, r);
	CHECK("stripe empty t is bad format", starts(r, "bad format"));
	stripe("t=-1700000000,v1=" ST_SIG, ST_BODY, 1700000100, 300, r);
	CHECK("stripe negative t is bad format", starts(r, "bad format"));
	stripe("t=99999999999999999999,v1=" ST_SIG, ST_BODY, 1, 300, r);
	CHECK("stripe huge t is bad format", starts(r, "bad format"));
	stripe("t=1700000000,t=1700000000,v1=" ST_SIG, ST_BODY, 1700000100, 300,
	    r);
	CHECK("stripe two t is bad format", starts(r, "bad format"));
	stripe(
	    "t=1700000000,v1=" ST_SIG ",garbage", ST_BODY, 1700000100, 300, r);
	CHECK("stripe entry without = is bad", starts(r, "bad format"));
	stripe("t=1700000000,v1=" ST_SIG ", garbage ", ST_BODY, 1700000100, 300,
	    r);
	CHECK("stripe blank after entry is bad", starts(r, "bad format"));
	stripe("t=1700000000,v1=abc", ST_BODY, 1700000100, 300, r);
	CHECK("stripe short v1 is bad format", starts(r, "bad format"));
	{
		char many[17 * 68 + 16] = "t=1700000000";
		int i;

		for (i = 0; i < 17; i++)
			strcat(many, ",v1=" ST_SIG);
		stripe(many, ST_BODY, 1700000100, 300, r);
		CHECK_STR("stripe 17 v1 entries are too many", r,
		    "bad format: more than 16 signatures");
		many[strlen(many) - strlen(",v1=" ST_SIG)] = '\0';
		CHECK("stripe 16 v1 entries pass",
		    stripe(many, ST_BODY, 1700000100, 300, r) == 0);
	}
	stripe("", ST_BODY, 1700000100, 300, r);
	CHECK("stripe empty header is bad format", starts(r, "bad format"));
	verify1("stripe", trigger_new(ST_BODY, NULL), ST_SECRET, 0, 0, r);
	CHECK_STR(
	    "stripe without header", r, "missing header Stripe-Signature");
}

#define SL_SECRET "slack_unit_secret"
#define SL_BODY "token=abc&text=hello+world"
#define SL_SIG                                                                 \
	"v0=010db522183d2c0775b729680dda5931298d12a6d5970689784158498d4760a2"

static void
test_slack(void)
{
	char r[REASON_MAX];

	CHECK("slack vector passes",
	    verify1("slack",
		trigger_new(SL_BODY, "x-slack-request-timestamp", "1700000000",
		    "x-slack-signature", SL_SIG, NULL),
		SL_SECRET, 1700000010, 300, r) == 0);
	CHECK("slack stale fails",
	    verify1("slack",
		trigger_new(SL_BODY, "x-slack-request-timestamp", "1700000000",
		    "x-slack-signature", SL_SIG, NULL),
		SL_SECRET, 1700000400, 300, r) == 1);
	CHECK("slack stale reason", starts(r, "stale timestamp"));
	verify1("slack",
	    trigger_new(SL_BODY, "x-slack-signature", SL_SIG, NULL), SL_SECRET,
	    1700000010, 300, r);
	CHECK_STR("slack without timestamp", r,
	    "missing header X-Slack-Request-Timestamp");
	verify1("slack",
	    trigger_new(
		SL_BODY, "x-slack-request-timestamp", "1700000000", NULL),
	    SL_SECRET, 1700000010, 300, r);
	CHECK_STR(
	    "slack without signature", r, "missing header X-Slack-Signature");
	verify1("slack",
	    trigger_new(SL_BODY, "x-slack-request-timestamp", "1700000001",
		"x-slack-signature", SL_SIG, NULL),
	    SL_SECRET, 1700000010, 300, r);
	CHECK_STR("slack changed timestamp mismatch", r, "mismatch");
	verify1("slack",
	    trigger_new(SL_BODY, "x-slack-request-timestamp", "1700000000",
		"x-slack-signature", SL_SIG + 3, NULL),
	    SL_SECRET, 1700000010, 300, r);
	CHECK("slack without v0= is bad format", starts(r, "bad format"));
}

#define SH_SECRET "shpss_unit_secret"
#define SH_BODY "{\"id\":7301234567890123456,\"note\":\"a\\/b\"}"
#define SH_SIG "JD2Yb9mquFzve/dLPKYyuEuVW3v26XnBt7yUN+q3wk8="

static void
test_shopify(void)
{
	char r[REASON_MAX];

	CHECK("shopify vector passes",
	    verify1("shopify",
		trigger_new(SH_BODY, "x-shopify-hmac-sha256", SH_SIG, NULL),
		SH_SECRET, 0, 0, r) == 0);
	CHECK("shopify unpadded passes",
	    verify1("shopify",
		trigger_new(SH_BODY, "x-shopify-hmac-sha256",
		    "JD2Yb9mquFzve/dLPKYyuEuVW3v26XnBt7yUN+q3wk8", NULL),
		SH_SECRET, 0, 0, r) == 0);
	verify1("shopify",
	    trigger_new(SH_BODY, "x-shopify-hmac-sha256",
		"243d986fd9aab85cef7bf74b3ca632b84b955b7bf6e979c1b7bc9437eab7c2"
		"4f",
		NULL),
	    SH_SECRET, 0, 0, r);
	CHECK("shopify hex digest is bad format", starts(r, "bad format"));
	verify1("shopify",
	    trigger_new(SH_BODY, "x-shopify-hmac-sha256",
		"JD2Yb9mquFzve/dLPKYyuEuVW3v2*XnBt7yUN+q3wk8=", NULL),
	    SH_SECRET, 0, 0, r);
	CHECK("shopify bad base64 is bad format", starts(r, "bad format"));
	verify1("shopify",
	    trigger_new(SH_BODY, "x-shopify-hmac-sha256",
		"JD2Yb9mquFzve/dLPKYyuEuVW3v26XnBt7yUN+q3wk8===", NULL),
	    SH_SECRET, 0, 0, r);
	CHECK("shopify three = is bad format", starts(r, "bad format"));
	verify1("shopify", trigger_new(SH_BODY, NULL), SH_SECRET, 0, 0, r);
	CHECK_STR("shopify without header", r,
	    "missing header X-Shopify-Hmac-Sha256");
}

#define SW_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SW_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SW_BODY "{\"test\": 2432232314}"
#define SW_SIG "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static int
stdwh(const char *id, const char *list, const char *secret, long long now,
    char *r)
{
	return verify1("standard-webhooks",
	    trigger_new(SW_BODY, "webhook-id", id, "webhook-timestamp",
		"1614265330", "webhook-signature", list, NULL),
	    secret, now, 300, r);
}

static void
test_stdwh(void)
{
	char r[REASON_MAX];

	CHECK("stdwh spec vector passes",
	    stdwh(SW_ID, "v1," SW_SIG, SW_SECRET, 1614265330, r) == 0);
	CHECK("stdwh secret without prefix",
	    stdwh(SW_ID, "v1," SW_SIG, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		1614265330, r) == 0);
	CHECK("stdwh valid v1 last in list",
	    stdwh(SW_ID,
		"v1,AAAAAAAAAAAA"
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=  v1a,bm90IGNoZWNrZWQ= "
		"v1," SW_SIG,
		SW_SECRET, 1614265330, r) == 0);
	CHECK("stdwh v2 entry does not count",
	    stdwh(SW_ID, "v2," SW_SIG, SW_SECRET, 1614265330, r) == 1);
	CHECK("stdwh only v2 is bad format", starts(r, "bad format"));
	CHECK("stdwh wrong id fails",
	    stdwh("msg_other", "v1," SW_SIG, SW_SECRET, 1614265330, r) == 1);
	CHECK_STR("stdwh wrong id is mismatch", r, "mismatch");
	CHECK("stdwh stale fails",
	    stdwh(SW_ID, "v1," SW_SIG, SW_SECRET, 1614265631, r) == 1);
	CHECK("stdwh stale reason", starts(r, "stale timestamp"));
	stdwh(SW_ID, "v1," SW_SIG, "whsec_not*base64", 1614265330, r);
	CHECK("stdwh bad secret reason", starts(r, "bad secret"));
	CHECK("stdwh reason hides secret", strstr(r, "not*base64") == NULL);
	stdwh(SW_ID, "v1", SW_SECRET, 1614265330, r);
	CHECK("stdwh entry without comma", starts(r, "bad format"));
	stdwh(SW_ID, "v1,g0hM9SsE", SW_SECRET, 1614265330, r);
	CHECK("stdwh short v1 is bad format", starts(r, "bad format"));
	stdwh("", "v1," SW_SIG, SW_SECRET, 1614265330, r);
	CHECK("stdwh empty id is bad format", starts(r, "bad format"));
}

static void
test_stdwh_svix(void)
{
	char r[REASON_MAX];
	jv t;

	t = trigger_new(SW_BODY, "svix-id", SW_ID, "svix-timestamp",
	    "1614265330", "svix-signature", "v1," SW_SIG, NULL);
	CHECK("stdwh svix headers pass",
	    verify1("standard-webhooks", t, SW_SECRET, 1614265330, 300, r) ==
		0);
	t = trigger_new(SW_BODY, "webhook-id", SW_ID, "webhook-timestamp",
	    "1614265330", NULL);
	verify1("standard-webhooks", t, SW_SECRET, 1614265330, 300, r);
	CHECK_STR(
	    "stdwh without signature", r, "missing header webhook-signature");
	t = trigger_new(SW_BODY, "webhook-timestamp", "1614265330",
	    "webhook-signature", "v1," SW_SIG, NULL);
	verify1("standard-webhooks", t, SW_SECRET, 1614265330, 300, r);
	CHECK_STR("stdwh without id", r, "missing header webhook-id");
}

/* The body of a trigger may come as raw_base64 when it is not UTF-8. */
static void
test_raw_base64(void)
{
	char r[REASON_MAX];
	jv t;

	t = trigger_new("", "x-hub-signature-256", "sha256=" GH_SIG, NULL);
	t = jv_object_delete(t, jv_string("raw"));
	t = jv_object_set(
	    t, jv_string("raw_base64"), jv_string("SGVsbG8sIFdvcmxkIQ=="));
	CHECK("raw_base64 body passes",
	    verify1("github", jv_copy(t), GH_SECRET, 0, 0, r) == 0);
	t = jv_object_set(t, jv_string("raw_base64"), jv_string("SGVsbG8*"));
	verify1("github", jv_copy(t), GH_SECRET, 0, 0, r);
	CHECK("raw_base64 invalid is bad format", starts(r, "bad format"));
	t = jv_object_delete(t, jv_string("raw_base64"));
	verify1("github", jv_copy(t), GH_SECRET, 0, 0, r);
	CHECK_STR("trigger without raw is bad format", r,
	    "bad format: $trigger has no raw or raw_base64 body");
	t = jv_object_set(t, jv_string("raw"), jv_null());
	verify1("github", t, GH_SECRET, 0, 0, r);
	CHECK("raw null is bad format", starts(r, "bad format"));
	t = trigger_new("", "x-hub-signature-256",
	    "sha256=5d5d139563c95b5967"
	    "b9bd9a8c9b233a9dedb45072794cd232dc1b74832607d0",
	    NULL);
	CHECK(
	    "empty raw body passes", verify1("github", t, "key", 0, 0, r) == 0);
	verify1("github", jv_string("not a trigger"), GH_SECRET, 0, 0, r);
	CHECK("trigger not object is bad format", starts(r, "bad format"));
	t = jv_object_set(trigger_new("Hello, World!", NULL),
	    jv_string("headers"), jv_string("x-hub-signature-256"));
	verify1("github", t, GH_SECRET, 0, 0, r);
	CHECK("headers not object is missing", starts(r, "missing header"));
	t = trigger_new("Hello, World!", NULL);
	t = jv_object_set(t, jv_string("headers"),
	    jv_object_set(
		jv_object(), jv_string("x-hub-signature-256"), jv_number(1)));
	verify1("github", t, GH_SECRET, 0, 0, r);
	CHECK("header number is bad format", starts(r, "bad format"));
}

static void
test_hmac(void)
{
	char r[REASON_MAX];

	CHECK("hmac-sha1 hex passes",
	    verify1("hmac-sha1:X-Signature",
		trigger_new("payload bytes", "x-signature",
		    "6D07BA467E8CA3A753A5A8D57624A25C7F0407A2", NULL),
		"generic_secret", 0, 0, r) == 0);
	CHECK("hmac-sha256 prefix passes",
	    verify1("hmac-sha256:X-Sig:sha256=:hex",
		trigger_new("payload bytes", "x-sig",
		    "sha256=834d18842178fdea4a02681da3531c"
		    "556802627835f63413a9818b679fdd0d71",
		    NULL),
		"generic_secret", 0, 0, r) == 0);
	CHECK("hmac-sha512 base64 prefix passes",
	    verify1("hmac-sha512:X-Sig:v1=:base64",
		trigger_new("payload bytes", "x-sig",
		    "v1=e2WIZhRu9PXsM7lOSQ04J7lkqaWb4XGEUUh"
		    "2kssuwo7abWG96+bPltrJl/SPpqiEfpvbvNK4KMLkndv2ArxT8Q==",
		    NULL),
		"generic_secret", 0, 0, r) == 0);
	CHECK("hmac-sha512 base64 no prefix",
	    verify1("hmac-sha512:X-Sig:base64",
		trigger_new("payload bytes", "x-sig",
		    "e2WIZhRu9PXsM7lOSQ04J7lkqaWb4XGEUUh"
		    "2kssuwo7abWG96+bPltrJl/SPpqiEfpvbvNK4KMLkndv2ArxT8Q==",
		    NULL),
		"generic_secret", 0, 0, r) == 0);
	verify1("hmac-sha256:X-Sig:sha256=",
	    trigger_new("payload bytes", "x-sig",
		"834d18842178fdea4a02681da3531c556802627835f63413a9818b6"
		"79fdd0d71",
		NULL),
	    "generic_secret", 0, 0, r);
	CHECK("hmac missing prefix is bad format", starts(r, "bad format"));
	verify1("hmac-sha1:X-Signature", trigger_new("payload bytes", NULL),
	    "generic_secret", 0, 0, r);
	CHECK_STR(
	    "hmac missing header names it", r, "missing header X-Signature");
}

static void
test_scheme_specs(void)
{
	static const char *bad[] = {"gitlab", "hmac-md5:X-Sig", "hmac-sha256",
	    "hmac-sha256:", "hmac-sha256:X Sig", "hmac-sha256::hex",
	    "twilio:", "github:extra", "", "hmac-sha2560000:X"};
	char why[256];
	struct sigscheme *s;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		s = signature_scheme(bad[i], why, sizeof(why));
		CHECK("scheme spec is rejected", s == NULL);
		CHECK("scheme rejection has reason", why[0] != '\0');
		signature_scheme_free(s);
	}
	s = signature_scheme("hmac-sha256:X-Sig:hex:hex", why, sizeof(why));
	CHECK("scheme prefix hex before encoding", s != NULL);
	signature_scheme_free(s);
}

#define TW_URL "https://mycompany.com/myapp.php?foo=1&bar=2"

static jv
twilio_trigger(const char *digits)
{
	jv body = jv_object(), t;

	body = jv_object_set(body, jv_string("To"), jv_string("+18005551212"));
	body = jv_object_set(
	    body, jv_string("CallSid"), jv_string("CA1234567890ABCDE"));
	body =
	    jv_object_set(body, jv_string("From"), jv_string("+14158675309"));
	body = jv_object_set(body, jv_string("Digits"), jv_string(digits));
	body =
	    jv_object_set(body, jv_string("Caller"), jv_string("+14158675309"));
	t = trigger_new("", "x-twilio-signature",
	    "RSOYDt4T1cUTdK1PDd93/VVr8B8=", "content-type",
	    "application/x-www-form-urlencoded; charset=utf-8", NULL);
	return jv_object_set(t, jv_string("body"), body);
}

static void
test_twilio(void)
{
	char r[REASON_MAX];
	jv t;

	CHECK("twilio vector passes",
	    verify1("twilio:" TW_URL, twilio_trigger("1234"), "12345", 0, 0,
		r) == 0);
	CHECK("twilio changed field fails",
	    verify1("twilio:" TW_URL, twilio_trigger("1235"), "12345", 0, 0,
		r) == 1);
	CHECK_STR("twilio changed field mismatch", r, "mismatch");
	CHECK("twilio other url fails",
	    verify1("twilio:http://127.0.0.1/", twilio_trigger("1234"), "12345",
		0, 0, r) == 1);
	t = twilio_trigger("1234");
	t = jv_object_set(t, jv_string("body"), jv_string("text"));
	verify1("twilio:" TW_URL, t, "12345", 0, 0, r);
	CHECK("twilio text body is bad format", starts(r, "bad format"));
	t = twilio_trigger("1234");
	t = jv_object_set(t, jv_string("body"),
	    jv_object_set(jv_object(), jv_string("K"), jv_array()));
	verify1("twilio:" TW_URL, t, "12345", 0, 0, r);
	CHECK("twilio array field is bad format", starts(r, "bad format"));
	t = twilio_trigger("1234");
	t = jv_object_set(t, jv_string("headers"),
	    jv_object_set(jv_object(), jv_string("content-type"),
		jv_string("application/json")));
	verify1("twilio:" TW_URL, t, "12345", 0, 0, r);
	CHECK("twilio json object is bad format", starts(r, "bad format"));
	t = trigger_new(
	    "", "x-twilio-signature", "zYQTYrRWXE7LtzbG4PfP7/bkkGo=", NULL);
	CHECK("twilio empty body signs url",
	    verify1("twilio:" TW_URL, t, "12345", 0, 0, r) == 0);
}

/* Signs with SPEC and checks that one header is WANT, then puts the
 * headers in a trigger and verifies them. */
static void
sign_check(const char *spec, const char *secret, const char *body, long long ts,
    const char *id, const char *want)
{
	struct sigscheme *s = scheme(spec);
	struct secret sec = {(char *)secret, strlen(secret)};
	char *h[5], why[256], r[REASON_MAX], *colon;
	jv headers = jv_object(), t;
	int i, rc;

	rc = signature_sign(
	    s, &sec, body, strlen(body), ts, id, h, why, sizeof(why));
	CHECK("sign returns 0", rc == 0);
	if (rc != 0)
		return;
	for (i = 0; h[i] != NULL; i++)
		if (strstr(h[i], want) != NULL)
			break;
	CHECK_STR("sign header is expected", h[i], want);
	for (i = 0; h[i] != NULL; i++) {
		colon = strchr(h[i], ':');
		*colon = '\0';
		for (char *p = h[i]; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
		headers = jv_object_set(
		    headers, jv_string(h[i]), jv_string(colon + 2));
		free(h[i]);
	}
	t = trigger_new(body, NULL);
	t = jv_object_set(t, jv_string("headers"), headers);
	rc = signature_verify(s, t, &sec, 1, ts, 300, r, sizeof(r));
	CHECK("signed headers verify", rc == 0);
	jv_free(t);
	signature_scheme_free(s);
}

static void
test_sign(void)
{
	sign_check("github", GH_SECRET, "Hello, World!", 0, NULL,
	    "X-Hub-Signature-256: sha256=" GH_SIG);
	sign_check("stripe", ST_SECRET, ST_BODY, 1700000000, NULL,
	    "Stripe-Signature: t=1700000000,v1=" ST_SIG);
	sign_check("slack", SL_SECRET, SL_BODY, 1700000000, NULL,
	    "X-Slack-Signature: " SL_SIG);
	sign_check("slack", SL_SECRET, SL_BODY, 1700000000, NULL,
	    "X-Slack-Request-Timestamp: 1700000000");
	sign_check("shopify", SH_SECRET, SH_BODY, 0, NULL,
	    "X-Shopify-Hmac-Sha256: " SH_SIG);
	sign_check("standard-webhooks", SW_SECRET, SW_BODY, 1614265330, SW_ID,
	    "webhook-signature: v1," SW_SIG);
	sign_check("standard-webhooks", SW_SECRET, SW_BODY, 1614265330, SW_ID,
	    "webhook-id: " SW_ID);
	sign_check("hmac-sha1:X-Signature", "generic_secret", "payload bytes",
	    0, NULL, "X-Signature: 6d07ba467e8ca3a753a5a8d57624a25c7f0407a2");
	sign_check("hmac-sha512:X-Sig:v1=:base64", "generic_secret",
	    "payload bytes", 0, NULL,
	    "X-Sig: v1=e2WIZhRu9PXsM7lOSQ04J7lkqaWb"
	    "4XGEUUh2kssuwo7abWG96+bPltrJl/SPpqiEfpvbvNK4KMLkndv2ArxT8Q==");
}

static void
test_sign_generated_id(void)
{
	struct sigscheme *s = scheme("standard-webhooks");
	struct secret sec = {SW_SECRET, sizeof(SW_SECRET) - 1};
	char *h[5], *first = NULL, why[256];
	int i, round;

	for (round = 0; round < 2; round++) {
		CHECK("sign with generated id",
		    signature_sign(s, &sec, SW_BODY, strlen(SW_BODY),
			1614265330, NULL, h, why, sizeof(why)) == 0);
		CHECK("generated id has msg_ prefix",
		    starts(h[0], "webhook-id: msg_"));
		CHECK("generated id has 32 hex digits",
		    strlen(h[0]) == strlen("webhook-id: msg_") + 32);
		CHECK("sign gives a third header", h[2] != NULL);
		CHECK("sign gives no fourth header", h[3] == NULL);
		if (round == 0)
			first = strdup(h[0]);
		else
			CHECK("generated ids differ", strcmp(first, h[0]) != 0);
		for (i = 0; h[i] != NULL; i++)
			free(h[i]);
	}
	free(first);
	signature_scheme_free(s);
}

static void
test_sign_errors(void)
{
	struct sigscheme *s = scheme("twilio:" TW_URL);
	struct secret sec = {"12345", 5};
	char *h[5], why[256];

	CHECK("sign twilio is unsupported",
	    signature_sign(s, &sec, "", 0, 0, NULL, h, why, sizeof(why)) == -1);
	CHECK("sign failure leaves no header", h[0] == NULL);
	signature_scheme_free(s);
	s = scheme("stripe");
	CHECK("sign negative timestamp fails",
	    signature_sign(s, &sec, "", 0, -1, NULL, h, why, sizeof(why)) ==
		-1);
	signature_scheme_free(s);
	s = scheme("standard-webhooks");
	sec.data = "whsec_***";
	sec.len = 9;
	CHECK("sign bad stdwh secret fails",
	    signature_sign(s, &sec, "", 0, 1, "msg_1", h, why, sizeof(why)) ==
		-1);
	CHECK("sign error hides secret", strstr(why, "***") == NULL);
	signature_scheme_free(s);
}

/* Fills BUF with LEN random bytes, NUL excluded, from rand() so that a
 * failing seed repeats. */
static void
random_text(char *buf, size_t len, const char *alphabet)
{
	size_t i, n = alphabet != NULL ? strlen(alphabet) : 0;

	for (i = 0; i < len; i++)
		buf[i] = alphabet != NULL ? alphabet[rand() % n]
					  : (char)(1 + rand() % 255);
	buf[len] = '\0';
}

static void
test_fuzz(void)
{
	static const char *specs[] = {"github", "stripe", "slack", "shopify",
	    "standard-webhooks", "hmac-sha1:X-Sig",
	    "hmac-sha512:X-Sig:p=:"
	    "base64",
	    "twilio:https://example.test/"};
	static const char *names[] = {"x-hub-signature-256", "stripe-signature",
	    "x-slack-signature", "x-slack-request-timestamp",
	    "x-shopify-hmac-sha256", "webhook-id", "webhook-timestamp",
	    "webhook-signature", "x-sig", "x-twilio-signature"};
	static const char *alpha = "tv01=,. +/ABCabc9sha256=whsec_";
	struct secret sec = {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 38};
	char value[300], r[REASON_MAX];
	int i, k, failed = 0, reasoned = 1;
	struct sigscheme *s;
	jv t;
	size_t j;

	srand(1);
	for (i = 0; i < 8; i++) {
		s = scheme(specs[i]);
		for (k = 0; k < 600; k++) {
			t = trigger_new("body", NULL);
			for (j = 0; j < sizeof(names) / sizeof(names[0]); j++) {
				random_text(
				    value, rand() % 200, k % 2 ? alpha : NULL);
				t = jv_object_set(t, jv_string("headers"),
				    jv_object_set(jv_object_get(jv_copy(t),
						      jv_string("headers")),
					jv_string(names[j]), jv_string(value)));
			}
			failed += signature_verify(s, t, &sec, 1, 1700000000,
				      300, r, sizeof(r)) == 1;
			reasoned &= r[0] != '\0';
			jv_free(t);
		}
		signature_scheme_free(s);
	}
	CHECK("random headers all fail", failed == 8 * 600);
	CHECK("random headers all have reasons", reasoned);
}

/* Changes one to three bytes of valid headers, so that the parsers
 * meet text close to what they accept. */
static void
test_fuzz_mutations(void)
{
	static const struct {
		const char *spec, *name, *value, *secret;
	} valid[] = {
	    {"stripe", "stripe-signature",
		"t=1700000000,v1=" ST_SIG ",v1=" ST_SIG2, ST_SECRET},
	    {"standard-webhooks", "webhook-signature",
		"v1," SW_SIG " v1a,bm90IGNoZWNrZWQ= v1," SW_SIG, SW_SECRET},
	    {"github", "x-hub-signature-256", "sha256=" GH_SIG, GH_SECRET},
	};
	static const char *alpha = "tv01=,. +/-Aaz\"\\";
	char value[300], r[REASON_MAX];
	int i, k, m, answered = 1, reasoned = 1;
	struct sigscheme *s;
	struct secret sec;
	jv t;

	srand(2);
	for (i = 0; i < 3; i++) {
		s = scheme(valid[i].spec);
		sec.data = (char *)valid[i].secret;
		sec.len = strlen(sec.data);
		for (k = 0; k < 2000; k++) {
			snprintf(value, sizeof(value), "%s", valid[i].value);
			for (m = 0; m < 1 + rand() % 3; m++)
				value[rand() % strlen(value)] =
				    alpha[rand() % strlen(alpha)];
			t = trigger_new(ST_BODY, valid[i].name, value,
			    "webhook-id", "msg_1", "webhook-timestamp",
			    "1700000000", NULL);
			m = signature_verify(
			    s, t, &sec, 1, 1700000000, 300, r, sizeof(r));
			answered &= m == 0 || m == 1;
			reasoned &= m == 0 || r[0] != '\0';
			jv_free(t);
		}
		signature_scheme_free(s);
	}
	CHECK("mutated headers return 0 or 1", answered);
	CHECK("mutated failures have reasons", reasoned);
}

/* The corpus: each signature case's request.http and case.json. */

struct corpus_request {
	char *data; /* the whole file */
	size_t len;
	jv headers;
	const char *body;
	size_t bodylen;
};

static char *
file_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc(n + 1);
	if (buf != NULL && fread(buf, 1, n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	if (buf != NULL) {
		buf[n] = '\0';
		*len = n;
	}
	return buf;
}

/* Splits the header block ("Name: value" lines after the request line)
 * into lowercased names and trimmed values. */
static jv
corpus_headers(char *block)
{
	char *line, *save = NULL, *colon, *p, *end;
	jv headers = jv_object();

	line = strtok_r(block, "\r\n", &save);
	while ((line = strtok_r(NULL, "\r\n", &save)) != NULL) {
		colon = strchr(line, ':');
		if (colon == NULL)
			continue;
		*colon = '\0';
		for (p = line; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
		for (p = colon + 1; *p == ' ' || *p == '\t'; p++)
			;
		end = p + strlen(p);
		while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		headers = jv_object_set(headers, jv_string(line), jv_string(p));
	}
	return headers;
}

static int
corpus_request_read(const char *dir, struct corpus_request *rq)
{
	char path[2048], *sep;
	jv length;

	snprintf(path, sizeof(path), "%s/request.http", dir);
	rq->data = file_read(path, &rq->len);
	if (rq->data == NULL)
		return -1;
	sep = strstr(rq->data, "\r\n\r\n");
	if (sep == NULL)
		return -1;
	rq->body = sep + 4;
	rq->bodylen = rq->len - (rq->body - rq->data);
	sep[2] = '\0';
	rq->headers = corpus_headers(rq->data);
	length =
	    jv_object_get(jv_copy(rq->headers), jv_string("content-length"));
	if (jv_get_kind(length) == JV_KIND_STRING &&
	    strtoul(jv_string_value(length), NULL, 10) < rq->bodylen)
		rq->bodylen = strtoul(jv_string_value(length), NULL, 10);
	jv_free(length);
	return 0;
}

static int
hexval(int c)
{
	if (c >= 'a')
		return c - 'a' + 10;
	if (c >= 'A')
		return c - 'A' + 10;
	return c - '0';
}

/* Decodes application/x-www-form-urlencoded text into an object, as
 * whook-listen puts a form in $trigger.body. */
static jv
form_decode(const char *text, size_t len)
{
	jv form = jv_object(), key = jv_invalid(), cur = jv_string("");
	size_t i;
	char c;

	for (i = 0; i <= len; i++) {
		c = i < len ? text[i] : '&';
		if (c == '&') {
			if (jv_is_valid(key))
				form = jv_object_set(form, key, cur);
			else
				jv_free(cur);
			key = jv_invalid();
			cur = jv_string("");
			continue;
		}
		if (c == '=' && !jv_is_valid(key)) {
			key = cur;
			cur = jv_string("");
			continue;
		}
		if (c == '%' && i + 2 < len) {
			c = (char)(hexval(text[i + 1]) * 16 +
				   hexval(text[i + 2]));
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		cur = jv_string_append_buf(cur, &c, 1);
	}
	jv_free(cur);
	jv_free(key);
	return form;
}

/* Builds the trigger whook-listen would write: raw when the body is
 * UTF-8, else raw_base64. */
static jv
corpus_trigger(const struct corpus_request *rq, const char *body, size_t len)
{
	jv t = jv_object();
	unsigned char *b64;

	t = jv_object_set(t, jv_string("headers"), jv_copy(rq->headers));
	if (utf8_valid(body, len)) {
		t = jv_object_set(
		    t, jv_string("raw"), jv_string_sized(body, (int)len));
	} else {
		b64 = malloc(4 * (len + 2) / 3 + 1);
		EVP_EncodeBlock(b64, (const unsigned char *)body, (int)len);
		t = jv_object_set(
		    t, jv_string("raw_base64"), jv_string((char *)b64));
		free(b64);
	}
	return jv_object_set(t, jv_string("body"), form_decode(body, len));
}

/* The facts of one case from case.json. */
struct corpus_case {
	const char *name;
	char spec[512];
	const char *sigheader; /* removed to test a missing header */
	int timestamped;
	long long now, tolerance;
	int pass;
	struct secret good[2], bad[2];
	size_t ngood, nbad;
	jv json;
};

static size_t
corpus_secrets(jv sig, const char *key, struct secret *out)
{
	jv list = jv_object_get(jv_copy(sig), jv_string(key));
	size_t n = 0;
	int i;

	if (jv_get_kind(list) == JV_KIND_STRING)
		list = jv_array_append(jv_array(), list);
	for (i = 0; jv_get_kind(list) == JV_KIND_ARRAY && n < 2 &&
		    i < jv_array_length(jv_copy(list));
	     i++) {
		jv one = jv_array_get(jv_copy(list), i);

		/* The case's json keeps the string alive. */
		out[n].data = (char *)jv_string_value(one);
		out[n].len = strlen(out[n].data);
		n++;
		jv_free(one);
	}
	jv_free(list);
	return n;
}

static long long
number_of(jv object, const char *key, long long fallback)
{
	jv v = jv_object_get(jv_copy(object), jv_string(key));
	long long n = fallback;

	if (jv_get_kind(v) == JV_KIND_NUMBER)
		n = (long long)jv_number_value(v);
	jv_free(v);
	return n;
}

/* Maps the case's scheme name onto a scheme spec and the header that
 * carries the signature. */
static int
corpus_scheme(struct corpus_case *c, jv sig)
{
	static const struct {
		const char *name, *spec, *header;
		int timestamped;
	} map[] = {
	    {"github-sha256", "github", "x-hub-signature-256", 0},
	    {"stripe", "stripe", "stripe-signature", 1},
	    {"slack", "slack", "x-slack-signature", 1},
	    {"shopify", "shopify", "x-shopify-hmac-sha256", 0},
	    {"standard-webhooks", "standard-webhooks", "webhook-signature", 1},
	    {"twilio", "twilio:", "x-twilio-signature", 0},
	};
	jv name = jv_object_get(jv_copy(sig), jv_string("scheme"));
	jv url = jv_object_get(jv_copy(sig), jv_string("url"));
	size_t i;
	int found = -1;

	for (i = 0; jv_get_kind(name) == JV_KIND_STRING &&
		    i < sizeof(map) / sizeof(map[0]);
	     i++)
		if (strcmp(jv_string_value(name), map[i].name) == 0) {
			snprintf(c->spec, sizeof(c->spec), "%s%s", map[i].spec,
			    jv_get_kind(url) == JV_KIND_STRING
				? jv_string_value(url)
				: "");
			c->sigheader = map[i].header;
			c->timestamped = map[i].timestamped;
			found = 0;
		}
	jv_free(name);
	jv_free(url);
	return found;
}

static int
corpus_case_read(const char *dir, struct corpus_case *c)
{
	char path[2048], *text;
	size_t len;
	jv sig, result;

	snprintf(path, sizeof(path), "%s/case.json", dir);
	text = file_read(path, &len);
	if (text == NULL)
		return -1;
	c->json = json_parse(text, len);
	free(text);
	if (jv_get_kind(c->json) != JV_KIND_OBJECT)
		return -1;
	sig = jv_object_get(jv_copy(c->json), jv_string("signature"));
	if (jv_get_kind(sig) != JV_KIND_OBJECT || corpus_scheme(c, sig) == -1) {
		jv_free(sig);
		return -1;
	}
	c->now = number_of(c->json, "now", 0);
	c->tolerance = number_of(sig, "tolerance", 300);
	c->ngood = corpus_secrets(sig, "secret", c->good);
	if (c->ngood == 0)
		c->ngood = corpus_secrets(sig, "secrets_pass", c->good);
	c->nbad = corpus_secrets(sig, "secrets_fail", c->bad);
	result = jv_object_get(sig, jv_string("result"));
	c->pass = jv_get_kind(result) == JV_KIND_STRING &&
		  strcmp(jv_string_value(result), "pass") == 0;
	jv_free(result);
	return 0;
}

static int
corpus_verify(const struct corpus_case *c, jv trigger,
    const struct secret *secrets, size_t n, long long now, char *r)
{
	struct sigscheme *s = scheme(c->spec);
	int rc = signature_verify(
	    s, trigger, secrets, n, now, c->tolerance, r, REASON_MAX);

	jv_free(trigger);
	signature_scheme_free(s);
	return rc;
}

static void
check_case(const char *label, const char *what, int cond)
{
	char name[256];

	snprintf(name, sizeof(name), "corpus %s %s", label, what);
	CHECK(name, cond);
}

/* Tampers with a passing case four ways, each with its own reason. */
static void
corpus_tamper(const struct corpus_case *c, const struct corpus_request *rq,
    const char *label)
{
	/* Base64 after whsec_, so that Standard Webhooks can use it too. */
	struct secret wrong = {"whsec_d3Jvbmcgc2VjcmV0", 22};
	char r[REASON_MAX], *body;
	jv t;

	body = malloc(rq->bodylen + 1);
	memcpy(body, rq->body, rq->bodylen);
	body[rq->bodylen / 2] ^= 0x01;
	t = corpus_trigger(rq, body, rq->bodylen);
	free(body);
	corpus_verify(c, t, c->good, c->ngood, c->now, r);
	check_case(
	    label, "tampered byte is mismatch", strcmp(r, "mismatch") == 0);

	t = corpus_trigger(rq, rq->body, rq->bodylen);
	corpus_verify(c, t, &wrong, 1, c->now, r);
	check_case(
	    label, "wrong secret is mismatch", strcmp(r, "mismatch") == 0);

	t = corpus_trigger(rq, rq->body, rq->bodylen);
	t = jv_object_set(t, jv_string("headers"),
	    jv_object_delete(jv_copy(rq->headers), jv_string(c->sigheader)));
	corpus_verify(c, t, c->good, c->ngood, c->now, r);
	check_case(
	    label, "removed header is missing", starts(r, "missing header"));

	if (!c->timestamped)
		return;
	t = corpus_trigger(rq, rq->body, rq->bodylen);
	corpus_verify(c, t, c->good, c->ngood, c->now + c->tolerance + 1, r);
	check_case(label, "later clock is stale", starts(r, "stale timestamp"));
}

static void
corpus_run(const char *dir, const char *label, const char *reason)
{
	struct corpus_case c;
	struct corpus_request rq;
	char r[REASON_MAX];
	size_t i;
	int rc;

	memset(&c, 0, sizeof(c));
	memset(&rq, 0, sizeof(rq));
	rq.headers = jv_null();
	c.json = jv_null();
	if (corpus_request_read(dir, &rq) == -1 ||
	    corpus_case_read(dir, &c) == -1) {
		check_case(label, "is readable", 0);
		goto out;
	}
	rc = corpus_verify(&c, corpus_trigger(&rq, rq.body, rq.bodylen), c.good,
	    c.ngood, c.now, r);
	check_case(label, c.pass ? "passes" : "fails", rc == !c.pass);
	if (reason != NULL)
		check_case(label, "failure reason", starts(r, reason));
	for (i = 0; i < c.ngood; i++) {
		rc = corpus_verify(&c, corpus_trigger(&rq, rq.body, rq.bodylen),
		    &c.good[i], 1, c.now, r);
		check_case(label, "each secret alone", rc == !c.pass);
	}
	for (i = 0; i < c.nbad; i++) {
		rc = corpus_verify(&c, corpus_trigger(&rq, rq.body, rq.bodylen),
		    &c.bad[i], 1, c.now, r);
		check_case(label, "unrelated secret fails", rc == 1);
	}
	if (c.pass)
		corpus_tamper(&c, &rq, label);
out:
	jv_free(c.json);
	jv_free(rq.headers);
	free(rq.data);
}

/* Each case with the reason a failing one must give. */
static void
test_corpus(void)
{
	static const struct {
		const char *name, *reason;
	} cases[] = {
	    {"050-github-official-vector", NULL},
	    {"051-github-pretty-json-raw", NULL},
	    {"053-github-sha1-only-downgrade", "missing header"},
	    {"054-github-non-utf8-body", NULL},
	    {"055-stripe-valid", NULL},
	    {"056-stripe-rotated-two-v1", NULL},
	    {"057-stripe-old-timestamp", "stale timestamp"},
	    {"059-stripe-tampered-body", "mismatch"},
	    {"060-slack-official-vector", NULL},
	    {"061-slack-url-verification", NULL},
	    {"062-slack-interactive-form", NULL},
	    {"064-shopify-valid", NULL},
	    {"066-stdwh-official-vector", NULL},
	    {"067-stdwh-multi-signature", NULL},
	    {"068-stdwh-old-timestamp", "stale timestamp"},
	    {"072-twilio-signature", NULL},
	};
	const char *root = getenv("WHOOK_CORPUS");
	char dir[1024];
	size_t i;

	if (root == NULL)
		root = "../shared/corpus";
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(dir, sizeof(dir), "%s/%s", root, cases[i].name);
		if (access(dir, R_OK) == 0)
			corpus_run(dir, cases[i].name, cases[i].reason);
	}
}

int
main(void)
{
	test_github();
	test_github_secrets();
	test_stripe();
	test_stripe_format();
	test_slack();
	test_shopify();
	test_stdwh();
	test_stdwh_svix();
	test_raw_base64();
	test_hmac();
	test_scheme_specs();
	test_twilio();
	test_sign();
	test_sign_generated_id();
	test_sign_errors();
	test_fuzz();
	test_fuzz_mutations();
	test_corpus();
	UNIT_EXIT();
}
