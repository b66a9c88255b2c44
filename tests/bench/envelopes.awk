# Writes n envelopes of the shape whook-listen logs, one per line, for the
# batch runs of tests/bench/run.  Each body is the payment event that
# post.lua sends (about 1.5 KB with its filler field), and raw is the
# exact text of that body.  Variables: n, and secret_file, the file whose
# first line is the value of the X-Webhook-Secret header.

BEGIN {
	if ((getline secret <secret_file) <= 0) {
		print "envelopes.awk: " secret_file ": missing or empty" >"/dev/stderr"
		exit 1
	}
	filler = sprintf("%1400s", "")
	gsub(/ /, "x", filler)
	for (i = 1; i <= n; i++) {
		body = sprintf("{\"id\":\"ch_batch_%d\",\"amount\":%d," \
		    "\"currency\":\"usd\",\"customer\":\"cus_%d\"," \
		    "\"filler\":\"%s\"}", i, 1000 + i % 9000, i % 1000, filler)
		raw = body
		gsub(/"/, "\\\"", raw)
		printf "{\"$trigger\":{\"id\":\"01BENCH%019d\"," \
		    "\"received_at\":\"2026-12-04T06:12:16.123Z\"," \
		    "\"method\":\"POST\",\"path\":\"/transactions\"," \
		    "\"query\":{},\"headers\":{\"content-type\":" \
		    "\"application/json\",\"x-webhook-secret\":\"%s\"}," \
		    "\"body\":%s,\"raw\":\"%s\"}}\n", i, secret, body, raw
	}
}
